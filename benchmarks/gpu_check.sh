#!/usr/bin/env bash
# The prepared GPU run (issue 17; docs/performance.md, "The prepared GPU run").
#
# On a GPU machine without network, from the repository root, with the wheels
# of `make gpu-wheels` in wheels/ (git-ignored: carry it):
#
#     OUT=/path/to/output bash benchmarks/gpu_check.sh
#
# Steps, each time-limited, each recorded (a failed step does not stop the next):
#   machine  nvidia-smi, nvcc, CPU, memory, the Python that is there
#   install  a venv that sees the machine's own packages (numpy 2.5, scipy, xarray, ...)
#            through a .pth file, the carried wheels installed with --no-index --no-deps,
#            this project installed editable with --no-deps (it pins numpy < 2.4;
#            Brian2 2.10.1 itself asks numpy >= 2.0 only); `pip check` logged
#   imports  scripts/gpu_check_imports.py: versions, imports, unmet requirements,
#            Brian2 on numpy, the embedded digits, NVML
#   tests    pytest -k cuda (the `cuda`-marked tests and the cuda code generation tests),
#            in parallel with
#   build    every configuration of the speed step built in parallel
#            (benchmarks/gpu_speed.py --prebuild-only), then
#   speed    benchmarks/gpu_speed.py: cuda against cpp_dense pinned to one core, same
#            seed and data, at N = 400 / 6400 / 1600 (Diehl & Cook) and N = 400 (ASP,
#            SpikeDyn), with NVML energy per training and per inference digit
# Without an NVIDIA GPU (no nvidia-smi, or it lists none) build and speed are skipped
# with that reason; the tests still run (the end-to-end one skips itself).
#
# Exit status: 0 when no step failed or timed out, else 1; 2 without OUT.
#
# $OUT receives at most 8 files: summary.md (every step, its status and time, the
# machine, the tables), gpu_speed.json, gpu_speed.md, gpu_speed.png, gpu_energy.png
# and logs.tar.gz (every log), rewritten after every step.
#
# Settings (environment variables):
#   GPU_CHECK_BUDGET   seconds for the whole script (default 480; the device tool
#                      allows 600 per call: leave room for the transfers)
#   GPU_CHECK_STEPS    steps to run (default "machine install imports tests build speed")
#   GPU_CHECK_RUNS     gpu_speed.py --runs (default
#                      "diehl-cook:400,6400 asp:400 spikedyn:400 diehl-cook:1600", in order)
#   GPU_CHECK_DEVICES  gpu_speed.py --devices (default "cpp_dense cuda")
#   GPU_CHECK_TRAIN, GPU_CHECK_TEST   digits per run (default 200, 200)
#   GPU_CHECK_BUILD_LIMIT  seconds for the parallel builds and the tests (default 240)
#   GPU_CHECK_JOBS     builds at a time (default 4; each runs make -j<cores>)
#   GPU_CHECK_RUN_LIMIT    seconds one timed run may take (default 180)
#   GPU_CHECK_TESTS    pytest's -k expression (default "cuda")
#   GPU_CHECK_WHEELS   folder of the wheels (default wheels)
#   GPU_CHECK_WORK     venv, builds and logs (default .spikedyn_build/gpu-check: git-ignored,
#                      so kept between two calls on a machine still warm)
#   GPU_CHECK_PYTHON   the Python to build on (default python3)
#   GPU_CHECK_WITHOUT_GPU=1  run build and speed without a GPU (a dry run of those steps,
#                      with GPU_CHECK_DEVICES=cpp_dense)
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
if [ -z "${OUT:-}" ]; then
    echo "gpu_check.sh: set OUT to the folder that receives the results" >&2
    exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

BUDGET=${GPU_CHECK_BUDGET:-480}
STEPS=" ${GPU_CHECK_STEPS:-machine install imports tests build speed} "
RUNS=${GPU_CHECK_RUNS:-diehl-cook:400,6400 asp:400 spikedyn:400 diehl-cook:1600}
DEVICES=${GPU_CHECK_DEVICES:-cpp_dense cuda}
TRAIN=${GPU_CHECK_TRAIN:-200}
TEST=${GPU_CHECK_TEST:-200}
BUILD_LIMIT=${GPU_CHECK_BUILD_LIMIT:-240}
RUN_LIMIT=${GPU_CHECK_RUN_LIMIT:-180}
JOBS=${GPU_CHECK_JOBS:-4}
TESTS=${GPU_CHECK_TESTS:-cuda}
WHEELS=${GPU_CHECK_WHEELS:-wheels}
WORK=${GPU_CHECK_WORK:-$REPO/.spikedyn_build/gpu-check}
PYTHON=${GPU_CHECK_PYTHON:-python3}
VENV=$WORK/venv
VPY=$VENV/bin/python
LOGS=$WORK/logs
RECORD=$WORK/steps.tsv
START=$(date +%s)
DEADLINE=$((START + BUDGET))
RESERVE=15   # seconds kept for the summary and the archive

mkdir -p "$WORK" "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.xml "$RECORD" "$WORK/prebuild.json"
rm -rf "$LOGS/speed"
export PYTHONUNBUFFERED=1

now() { date +%s; }
left() { echo $((DEADLINE - $(now) - RESERVE)); }
wanted() { [[ "$STEPS" == *" $1 "* ]]; }

# record NAME STATUS SECONDS LIMIT NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RECORD"; }

# step NAME LIMIT COMMAND...: run under `timeout` (its whole process group), log to
# $LOGS/NAME.log, record ok / FAILED / TIMEOUT; a step is skipped when the budget is out.
step() {
    local name=$1 limit=$2
    shift 2
    local room
    room=$(left)
    if [ "$room" -lt 10 ]; then
        record "$name" skipped 0 "$limit" "budget spent"
        echo "== $name: skipped (budget spent)"
        return 1
    fi
    [ "$limit" -gt "$room" ] && limit=$room
    echo "== $name (at most ${limit} s) $(date -u +%H:%M:%S)"
    local begin rc status
    begin=$(now)
    # bash -c: a step may be a function of this script (exported below).
    timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status=TIMEOUT ;;
        *) status="FAILED (exit $rc)" ;;
    esac
    record "$name" "$status" $(($(now) - begin)) "$limit" "$name.log"
    echo "   $name: $status in $(($(now) - begin)) s"
    tail -n 3 "$LOGS/$name.log" | sed 's/^/   | /'
    pack
    return $rc
}

skip() { record "$1" skipped 0 - "$2"; echo "== $1: skipped ($2)"; }

gpu_reason() {
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        echo "no NVIDIA GPU: nvidia-smi not found"
    elif ! nvidia-smi -L 2>/dev/null | grep -q GPU; then
        echo "no NVIDIA GPU: nvidia-smi -L lists none"
    fi
}

# ------------------------------------------------------------------ steps
machine() {
    # First the lines summary.md quotes, then the details.
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit \
        --format=csv,noheader 2>&1 | head -4 | tr '\n' ' ')"
    echo "cuda (driver): $(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)"
    echo "nvcc: $(nvcc --version 2>&1 | tail -1)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
    echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "python: $(command -v "$PYTHON"), $("$PYTHON" -V 2>&1)"
    echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo 'no .git (a copied working tree)')"
    echo
    git -C "$REPO" status --short 2>/dev/null | head -50
    echo "# nvidia-smi"
    nvidia-smi 2>&1 || echo "(nvidia-smi: not found or failed)"
    nvidia-smi -q 2>/dev/null | head -80
    echo "# nvcc"
    nvcc --version 2>&1 || echo "(nvcc not found)"
    echo "# CPU"
    lscpu 2>/dev/null
    echo "# memory and disk"
    free -g 2>/dev/null
    df -h "$REPO" /tmp 2>/dev/null
    echo "# python"
    "$PYTHON" -VV
    "$PYTHON" -m pip list 2>/dev/null | grep -i -E \
        '^(numpy|scipy|xarray|matplotlib|pandas|scikit-learn|jinja2|sympy|cython|setuptools|pytest|pluggy|hypothesis|nvidia-ml-py|nvidia-curand|tqdm|psutil|packaging|pyparsing) '
    echo "# wheels ($WHEELS)"
    ls -l "$WHEELS" 2>&1
}

install() {
    set -e
    local wheels stamp
    wheels=$(cd "$WHEELS" && ls ./*.whl)
    [ -n "$wheels" ] || { echo "no wheels in $WHEELS (make gpu-wheels, and carry the folder)"; return 1; }
    stamp="$("$PYTHON" -VV) $(cd "$WHEELS" && ls -l ./*.whl | md5sum)"
    if [ -x "$VPY" ] && [ "$(cat "$VENV/.gpu_check_stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "venv $VENV is up to date (same Python, same wheels): reused"
    else
        rm -rf "$VENV"
        # A venv of the machine's Python; without ensurepip, pip of that Python installs into it.
        if "$PYTHON" -m venv "$VENV"; then
            PIP=("$VPY" -m pip)
        else
            echo "python -m venv failed (no ensurepip?): a venv without pip, filled by $PYTHON's pip"
            rm -rf "$VENV"
            "$PYTHON" -m venv --without-pip "$VENV"
            PIP=("$PYTHON" -m pip --python "$VPY")
        fi
        # The machine's own packages (numpy, scipy, xarray, ...) stay visible, behind the venv's.
        local site
        site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        # addsitedir, not a plain path: the .pth files there run too (setuptools' distutils
        # shim, which Brian2 imports on Python 3.12; namespace packages such as nvidia.*).
        "$PYTHON" -c 'import site; print("\n".join(f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()))' >"$site/_gpu_check_machine.pth"
        echo "machine packages seen through $site/_gpu_check_machine.pth:"
        cat "$site/_gpu_check_machine.pth"
        "${PIP[@]}" install --no-index --no-deps --no-compile --disable-pip-version-check \
            --find-links "$WHEELS" "$WHEELS"/*.whl
        echo "$stamp" >"$VENV/.gpu_check_stamp"
    fi
    if [ -z "${PIP+x}" ]; then
        if "$VPY" -m pip --version >/dev/null 2>&1; then PIP=("$VPY" -m pip); else PIP=("$PYTHON" -m pip --python "$VPY"); fi
    fi
    # This project, editable, without its dependencies: setup.py pins numpy < 2.4 (the
    # machine has 2.5) and the rest came from the wheels or the machine.
    # --use-pep517: setuptools' editable hook in this environment (setup.py develop would
    # call pip again, with build isolation, which needs an index).
    "${PIP[@]}" install --no-index --no-deps --no-build-isolation --use-pep517 \
        --disable-pip-version-check -e "$REPO"
    set +e
    echo "# pip check (informational: what a resolver would object to)"
    "${PIP[@]}" check
    echo "# pip list"
    "${PIP[@]}" list --disable-pip-version-check 2>/dev/null
    return 0
}

pack() {
    summary >"$OUT/summary.md" 2>&1
    local builds=()
    [ -d "$WORK/builds" ] && mapfile -t builds < <(cd "$WORK" && find builds -maxdepth 2 -name make.log)
    tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs steps.tsv "${builds[@]}" 2>/dev/null
}

summary() {
    echo "# GPU check: $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(now) - START)) s of a ${BUDGET} s budget"
    echo
    echo "Steps: $(echo $STEPS); runs: ${RUNS}; devices: ${DEVICES}; ${TRAIN} training / ${TEST} test digits."
    echo
    echo "| step | status | seconds | limit | log (logs.tar.gz) |"
    echo "|---|---|---:|---:|---|"
    [ -f "$RECORD" ] && sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$RECORD"
    echo
    if [ -f "$LOGS/machine.log" ]; then
        echo "## Machine"
        echo
        echo '```'
        sed -n '1,/^$/p' "$LOGS/machine.log" | grep -E "^(date|gpu|cuda \(driver\)|nvcc|cpu|memory|python|commit):"
        echo '```'
        echo
    fi
    if [ -f "$LOGS/imports.log" ]; then
        echo "## Imports and numpy"
        echo
        echo '```'
        grep -E "^(ok |FAILED|python |all imports|SOME |requirements not met|  [A-Za-z0-9_.-]+ needs |  none$)" \
            "$LOGS/imports.log" | head -60
        echo '```'
        echo
    fi
    if [ -f "$LOGS/install.log" ]; then
        echo "## pip check (installed with --no-deps)"
        echo
        echo '```'
        sed -n '/^# pip check/,/^# pip list/p' "$LOGS/install.log" | grep -v '^# pip list' | head -30
        echo '```'
        echo
    fi
    if [ -f "$LOGS/tests.log" ]; then
        echo "## Tests (pytest -k $TESTS)"
        echo
        echo '```'
        grep -E "^tests/.* (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)|^(FAILED|ERROR|SKIPPED|XFAIL|XPASS) |^=+ .*(passed|failed|skipped|error|no tests).* =+$" \
            "$LOGS/tests.log" | tail -60
        echo '```'
        echo
    fi
    if [ -f "$OUT/gpu_speed.md" ]; then
        cat "$OUT/gpu_speed.md"
        echo
    elif [ -f "$LOGS/build.log" ]; then
        echo "## Builds"
        echo
        grep -E "^\|" "$LOGS/build.log"
        echo
    fi
    local failed
    failed=$(awk -F'\t' '$2 != "ok" {print "- " $1 ": " $2 " (" $5 ")"}' "$RECORD" 2>/dev/null)
    echo "## Not ok"
    echo
    echo "${failed:-none}"
}

finish() {
    pack
    echo "== done in $(($(now) - START)) s: $OUT"
    ls -l "$OUT"
}
trap finish EXIT
trap 'exit 143' TERM INT
export REPO OUT WHEELS WORK PYTHON VENV VPY LOGS
export -f machine install

# ------------------------------------------------------------------ run
echo "gpu_check: output $OUT, work $WORK, budget ${BUDGET} s, steps${STEPS}"
NO_GPU=$(gpu_reason)
if [ -n "$NO_GPU" ] && [ "${GPU_CHECK_WITHOUT_GPU:-0}" = 1 ]; then
    # A dry run of the build and speed steps on a CPU machine (GPU_CHECK_DEVICES=cpp_dense).
    echo "gpu_check: $NO_GPU, but GPU_CHECK_WITHOUT_GPU=1: build and speed run anyway"
    NO_GPU=""
fi
[ -n "$NO_GPU" ] && echo "gpu_check: $NO_GPU: the build and speed steps will be skipped"

if wanted machine; then step machine 30 machine; fi
if wanted install; then step install 180 install; fi
if [ ! -x "$VPY" ]; then
    echo "gpu_check: no venv at $VENV (install failed or was not run): nothing more can run"
    for name in imports tests build speed; do wanted "$name" && skip "$name" "no venv"; done
    exit 1
fi
if wanted imports; then step imports 90 "$VPY" -P scripts/gpu_check_imports.py; fi

SPEED=("$VPY" benchmarks/gpu_speed.py --runs $RUNS --devices $DEVICES --jobs "$JOBS"
       --train-samples "$TRAIN" --test-samples "$TEST" --seed 0 --build-dir "$WORK/builds")

# The tests and the builds share the machine; the timed runs start when both are done.
window=$BUILD_LIMIT
room=$(($(left) - 120))   # leave the speed step two minutes at least
[ "$room" -lt "$window" ] && window=$room
[ "$window" -lt 30 ] && window=30
pids=()
if wanted tests; then
    (
        export SPIKEDYN_TEST_BUILD_DIR=$WORK/test-builds PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
        mkdir -p "$SPIKEDYN_TEST_BUILD_DIR"
        step tests "$window" "$VPY" -m pytest tests -k "$TESTS" -m "cuda or not slow" \
            --continue-on-collection-errors -p no:cacheprovider -v -rfEsxX \
            --junitxml="$LOGS/tests.xml" -o junit_family=xunit2
    ) &
    pids+=($!)
fi
if wanted build; then
    if [ -n "$NO_GPU" ]; then
        skip build "$NO_GPU"
    else
        (step build "$window" "${SPEED[@]}" --prebuild-only --timeout $((window - 15)) \
            --json "$WORK/prebuild.json" --log-dir "$LOGS/speed") &
        pids+=($!)
    fi
fi
for pid in "${pids[@]}"; do wait "$pid"; done

if wanted speed; then
    if [ -n "$NO_GPU" ]; then
        skip speed "$NO_GPU"
    else
        budget=$(($(left) - 5))
        builds=()
        [ -f "$WORK/prebuild.json" ] && builds=(--builds-from "$WORK/prebuild.json")
        step speed $((budget + 5)) "${SPEED[@]}" "${builds[@]}" --budget "$budget" \
            --timeout "$RUN_LIMIT" \
            --json "$OUT/gpu_speed.json" --markdown "$OUT/gpu_speed.md" --figures "$OUT" \
            --log-dir "$LOGS/speed"
    fi
fi
# Exit status 1 when a step failed or ran out of time (skipped steps do not count).
! awk -F'\t' '$2 ~ /^(FAILED|TIMEOUT)/ {bad = 1} END {exit !bad}' "$RECORD"

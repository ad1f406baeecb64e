#!/usr/bin/env python
"""ms and GPU energy per digit on cuda against cpp_dense on one core, for several N.

For every run (``--runs NETWORK:N[,N...]``, default ``diehl-cook:400,1600,6400``)
and device (``--devices``, default ``cpp_dense cuda``) this script runs
``benchmarks/device_comparison.py``'s ``compare`` in a fresh process
(``genn`` in the Python of ``make genn-venv``, ``--genn-python``; GeNN's CUDA
backend unless ``--genn-cpu``) on the same seed and data: a fresh network
(published constants) trains on ``--train-samples`` digits, its neurons are
labelled with the responses to the second half of them, and it is tested on
``--test-samples`` digits. The reference device (``--reference``, default
``cpp_dense``) runs pinned to one core (``--pin-core``); every compiled stream
is wrapped in `spikedyn_brian.power.EnergyMeter` (NVML's energy counter of the
GPU, RAPL where readable). It prints the machine (CPU model, GPU model,
driver, CUDA driver and nvcc versions, package versions), then Markdown tables:

* speed: build seconds (code generation + compilation; with ``--prebuild``
  every configuration is built first, in parallel, so the timed runs only
  check their cached build), ms per training / test digit
  (``StreamResult.simulation_seconds / n``: wall clock around the compiled
  program, its start and the CUDA context included), the training speed-up
  against the reference at the same network and N, the fixed seconds of a
  stream and the marginal ms per training digit without them (from the
  labelling and test streams' different lengths, `timing_summary`) with the
  speed-up on those, spikes and presentation slots per training digit and the
  accuracy (proportion weighting) with its difference to the reference in
  points;
* energy: GPU joules per training digit (learning on) and per inference digit
  (the labelling and test streams, learning off), measured and above the
  GPU's idle power (NVML, measured before the runs for ``--idle-seconds``).

``--json FILE`` writes everything (rewritten after every run), ``--markdown
FILE`` the tables, ``--figures DIR`` ``gpu_speed.png`` (ms per digit against N)
and ``gpu_energy.png`` (J per digit per family). A run that fails is shown
with its error and the others go on; ``--budget SECONDS`` bounds the whole
script (runs that would start after it are listed as skipped); ``--log-dir``
keeps each run's output. One benchmark at a time: wall-clock figures.

On the GPU machine the prepared run `benchmarks/gpu_check.sh` calls it
(docs/performance.md, "The prepared GPU run")::

    python benchmarks/gpu_speed.py --runs diehl-cook:400,6400 asp:400 spikedyn:400 \\
        diehl-cook:1600 --train-samples 200 --test-samples 200 --build-dir BUILDS \\
        --prebuild --json results/gpu_speed.json --figures results

Issue 17's target: at N = 6400 a training digit >= 20x faster on cuda than on
cpp_dense on one core.
"""

import argparse
import concurrent.futures
import importlib.metadata
import inspect
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from spikedyn_brian.devices.registry import SPECS

REPOSITORY = Path(__file__).resolve().parent.parent
BENCHMARKS = REPOSITORY / "benchmarks"
DEFAULT_GENN_PYTHON = REPOSITORY / ".venv-genn" / "bin" / "python"
PACKAGES = ("numpy", "scipy", "brian2", "brian2cuda", "nvidia-ml-py", "spikedyn-brian")


# ------------------------------------------------------------------ machine
def _command_output(command, timeout=30):
    """stdout of ``command`` stripped, or None when it cannot run."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info():
    """GPU model, memory, driver and CUDA driver version (NVML, else nvidia-smi), or why not."""
    try:
        import pynvml

        pynvml.nvmlInit()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
            gpus.append(f"{name.decode() if isinstance(name, bytes) else name} "
                        f"({memory:.0f} GiB)")
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        return {"gpus": gpus, "driver": driver.decode() if isinstance(driver, bytes) else driver,
                "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}", "source": "NVML"}
    except Exception as error:  # no pynvml, no driver, no GPU: try nvidia-smi
        reason = f"NVML: {error!r}"
    listing = _command_output(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"])
    if not listing:
        why = "nvidia-smi not found" if shutil.which("nvidia-smi") is None else \
            "nvidia-smi lists no GPU"
        return {"gpus": [], "none": f"{why}; {reason}"}
    rows = [[part.strip() for part in line.split(",")] for line in listing.splitlines()]
    header = _command_output(["nvidia-smi"]) or ""
    cuda = header.split("CUDA Version:")[1].split()[0] if "CUDA Version:" in header else None
    return {"gpus": [f"{row[0]} ({row[1]})" for row in rows], "driver": rows[0][2],
            "cuda_driver": cuda, "source": "nvidia-smi"}


def machine_info():
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "host": platform.node(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "gpu": gpu_info()}
    nvcc = _command_output(["nvcc", "--version"])
    info["nvcc"] = nvcc.splitlines()[-1] if nvcc else "nvcc not found"
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    info["packages"] = versions
    return info


def machine_lines(info):
    gpu = info["gpu"]
    gpus = ", ".join(gpu["gpus"]) or f"none ({gpu.get('none', '')})"
    lines = [f"date: {info['date']}",
             f"CPU: {info['cpu']} ({info['cpu_count']} logical CPUs)",
             f"GPU: {gpus}"]
    if gpu["gpus"]:
        lines.append(f"driver: {gpu['driver']}, CUDA (driver): {gpu['cuda_driver']}")
    lines.append(f"nvcc: {info['nvcc']}")
    lines.append("python " + info["python"] + "; " + ", ".join(
        f"{k} {v}" for k, v in info["packages"].items() if v))
    if info.get("gpu_idle_watts") is not None:
        lines.append(f"GPU idle power: {info['gpu_idle_watts']:.1f} W (NVML, before the runs)")
    return lines


def gpu_idle_watts(seconds):
    """Mean GPU power over ``seconds`` of idling (NVML energy counter), or None."""
    from spikedyn_brian.power import EnergyMeter

    meter = EnergyMeter(gpu=True)
    with meter:
        time.sleep(seconds)
    reading = meter.reading
    if reading.gpu_joules is None:
        return None
    return reading.gpu_joules / reading.wall_seconds


# ------------------------------------------------------------------ processes
#: Worker processes running now (each leads its own process group).
_ACTIVE = set()


def _stop_workers(signum, frame):
    """SIGTERM/SIGINT: end every worker's process group (make, nvcc, the program), then exit.

    The workers run in sessions of their own, which a `timeout` around this
    script does not reach.
    """
    for process in list(_ACTIVE):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    raise SystemExit(128 + signum)


def run_command(command, timeout, log=None):
    """Run ``command`` in its own process group; kill the group at ``timeout``.

    Returns (returncode or None on timeout, stdout, stderr, seconds).
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    _ACTIVE.add(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        stdout, stderr = process.communicate()
        code = None
    finally:
        _ACTIVE.discard(process)
    seconds = time.perf_counter() - start
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(command)}\n# exit {code}, {seconds:.1f} s\n"
                       f"## stdout\n{stdout}\n## stderr\n{stderr}\n")
    return code, stdout, stderr, seconds


def worker_command(device, network, neurons, args, build_only=False, pin_core=None):
    spec = SPECS[device]
    python = str(args.genn_python) if spec.own_environment else sys.executable
    command = [python, str(Path(__file__).resolve()), "--worker", "--devices", device,
               "--runs", f"{network}:{neurons}", "--train-samples", str(args.train_samples),
               "--test-samples", str(args.test_samples), "--seed", str(args.seed)]
    if args.build_dir:
        command += ["--build-dir", str(args.build_dir)]
    if "use_gpu" in spec.option_names() and not args.genn_cpu:
        command.append("--use-gpu")
    if build_only:
        command.append("--build-only")
    if pin_core is not None:
        command += ["--pin-core", str(pin_core)]
    return command


def run_one(device, network, neurons, args, timeout, build_only=False, pin_core=None):
    """Figures of one (device, network, N) run as a dict; ``error`` set when it failed."""
    base = {"device": device, "network": network, "neurons": neurons}
    log = None
    if args.log_dir:
        kind = "build" if build_only else "run"
        log = Path(args.log_dir) / f"{kind}-{device}-{network}-{neurons}.log"
    command = worker_command(device, network, neurons, args, build_only, pin_core)
    code, stdout, stderr, seconds = run_command(command, timeout, log)
    base["worker_seconds"] = seconds
    if code is None:
        return {**base, "error": f"timeout ({timeout:.0f} s)",
                "stderr_tail": stderr.strip().splitlines()[-20:]}
    lines = stdout.strip().splitlines()
    if code != 0 or not lines:
        error = (stderr.strip().splitlines() or ["no output"])[-1]
        return {**base, "error": f"exit {code}: {error}",
                "stderr_tail": stderr.strip().splitlines()[-20:]}
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {**base, "error": f"no JSON on the last line: {lines[-1][:200]}"}
    return {**base, **figures, "worker_seconds": seconds}


# ------------------------------------------------------------------ worker
class _BuildDone(Exception):
    """Raised instead of running the first stream of a build-only worker."""

    def __init__(self, engine):
        super().__init__("built")
        self.engine = engine


def worker(args):
    """One run in this process: ``compare`` with every compiled stream measured; prints JSON."""
    sys.path.insert(0, str(BENCHMARKS))
    from device_comparison import compare

    from spikedyn_brian.engine import Engine
    from spikedyn_brian.power import EnergyMeter

    (network, neurons), = parse_runs(args.runs)
    device = args.devices[0]
    streams = []
    run_stream = Engine.run_stream
    signature = inspect.signature(run_stream)

    def measured_run_stream(engine, *positional, **keywords):
        if args.build_only:
            raise _BuildDone(engine)
        bound = signature.bind(engine, *positional, **keywords)
        affinity = None
        if args.pin_core is not None and hasattr(os, "sched_setaffinity"):
            affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {args.pin_core})
        try:
            with EnergyMeter() as meter:
                result = run_stream(engine, *positional, **keywords)
        finally:
            if affinity is not None:
                os.sched_setaffinity(0, affinity)
        reading = meter.reading
        streams.append({
            "plastic": bool(bound.arguments.get("plastic")),
            "digits": len(bound.arguments["images"]),
            "simulation_seconds": result.simulation_seconds,
            "wall_seconds": reading.wall_seconds,
            "gpu_joules": reading.gpu_joules, "cpu_joules": reading.cpu_joules,
            "gpu_status": reading.gpu_status, "cpu_status": reading.cpu_status,
        })
        return result

    Engine.run_stream = measured_run_stream
    try:
        figures = compare(device, network, neurons, args.train_samples, args.test_samples,
                          args.seed, args.build_dir, args.use_gpu)
    except _BuildDone as done:
        seconds = done.engine.build_seconds
        print(json.dumps({"device": device, "network": network, "neurons": neurons,
                          "built": True, "build_seconds": seconds}))
        done.engine.close()
        return 0
    finally:
        Engine.run_stream = run_stream
    figures["streams"] = streams
    figures["pinned_core"] = args.pin_core
    print(json.dumps(figures))
    return 0


# ------------------------------------------------------------------ figures
def timing_summary(run):
    """Fixed seconds per compiled stream and marginal ms per digit, or {}.

    The labelling stream (``train_samples / 2`` digits) and the test stream
    (``test_samples``) run the same program with learning off: with different
    lengths, their difference gives the cost of one more inference digit
    without the program's start (CUDA context, reading the inputs), and the
    rest of the labelling stream's time the fixed cost of a stream. The
    training stream's marginal cost is its time less that fixed cost.
    """
    streams = run.get("streams") or []
    inference = sorted((s["digits"], s["simulation_seconds"]) for s in streams
                       if not s["plastic"])
    train = [s for s in streams if s["plastic"]]
    if len(inference) < 2 or inference[0][0] == inference[-1][0] or len(train) != 1:
        return {}
    (n1, t1), (n2, t2) = inference[0], inference[-1]
    slope = (t2 - t1) / (n2 - n1)
    fixed = t1 - slope * n1
    return {"fixed_seconds_per_stream": fixed,
            "marginal_ms_per_inference_digit": slope * 1e3,
            "marginal_ms_per_train_digit":
                (train[0]["simulation_seconds"] - fixed) / train[0]["digits"] * 1e3}


def energy_summary(run, idle_watts):
    """J per training and per inference digit (measured, and above idle) of a run, or {}."""
    streams = run.get("streams") or []
    summary = {}
    for phase, plastic in (("train", True), ("inference", False)):
        chosen = [s for s in streams if s["plastic"] == plastic]
        digits = sum(s["digits"] for s in chosen)
        if not digits:
            continue
        wall = sum(s["wall_seconds"] for s in chosen)
        entry = {"digits": digits, "wall_seconds": wall}
        for sensor in ("gpu", "cpu"):
            values = [s[f"{sensor}_joules"] for s in chosen]
            if all(v is not None for v in values):
                joules = sum(values)
                entry[f"{sensor}_joules_per_digit"] = joules / digits
                entry[f"{sensor}_mean_watts"] = joules / wall if wall else None
            else:
                entry[f"{sensor}_status"] = next(s[f"{sensor}_status"] for s in chosen
                                                 if s[f"{sensor}_joules"] is None)
        if idle_watts is not None and "gpu_joules_per_digit" in entry:
            entry["gpu_above_idle_joules_per_digit"] = (
                entry["gpu_joules_per_digit"] - idle_watts * wall / digits)
        summary[phase] = entry
    return summary


def _number(value, form):
    return "–" if value is None else format(value, form)


def speed_table(runs, builds, reference):
    reference_runs = {(r["network"], r["neurons"]): r for r in runs
                      if r["device"] == reference and "error" not in r and "skipped" not in r}
    lines = [f"| network | N | device | build s | ms / train digit | ms / test digit "
             f"| train speed-up vs {reference} | fixed s / stream | marginal ms / train digit "
             f"| marginal speed-up | spikes / train digit | slots / train digit "
             f"| accuracy (PW) | Δ accuracy vs {reference} |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        key = (run["network"], run["neurons"])
        device = run["device"] + (" (GPU)" if run.get("use_gpu") else "")
        if run["device"] == reference and run.get("pinned_core") is not None:
            device += f" (core {run['pinned_core']})"
        head = f"| {run['network']} | {run['neurons']} | {device} "
        if "skipped" in run or "error" in run:
            reason = run.get("skipped") or f"failed: {run['error'][:160]}"
            lines.append(head + f"| {reason} | | | | | | | | | | |")
            continue
        built = builds.get((run["device"], *key))
        build = sum(run.get("build_seconds") or [])
        build_text = (f"{built['build_seconds']:.0f} (+{build:.0f} check)"
                      if built and built.get("build_seconds") is not None else f"{build:.0f}")
        train, test = run["train"], run["test"]
        base = reference_runs.get(key)
        speedup = (f"{base['train']['ms_per_digit'] / train['ms_per_digit']:.1f}×"
                   if base and train["ms_per_digit"] else "–")
        timing, base_timing = run.get("timing") or {}, (base or {}).get("timing") or {}
        marginal = timing.get("marginal_ms_per_train_digit")
        base_marginal = base_timing.get("marginal_ms_per_train_digit")
        marginal_speedup = (f"{base_marginal / marginal:.1f}×"
                            if marginal and base_marginal and marginal > 0 else "–")
        accuracy = run["accuracy"]["proportion_weighting"] * 100
        delta = (f"{accuracy - base['accuracy']['proportion_weighting'] * 100:+.1f}"
                 if base else "–")
        lines.append(head + f"| {build_text} | {train['ms_per_digit']:.2f} "
                     f"| {test['ms_per_digit']:.2f} | {speedup} "
                     f"| {_number(timing.get('fixed_seconds_per_stream'), '.2f')} "
                     f"| {_number(marginal, '.2f')} | {marginal_speedup} "
                     f"| {train['spikes_per_digit']:.1f} | {train['slots_per_digit']:.3f} "
                     f"| {accuracy:.1f} % | {delta} |")
    return "\n".join(lines)


def energy_table(runs):
    lines = ["| network | N | device | GPU J / train digit | GPU J / inference digit "
             "| above idle: J / train digit | above idle: J / inference digit "
             "| GPU W (train) | CPU J / train digit | sensors |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for run in runs:
        energy = run.get("energy") or {}
        if not energy:
            continue
        train, inference = energy.get("train", {}), energy.get("inference", {})
        status = "; ".join(sorted({v for e in (train, inference)
                                   for k, v in e.items() if k.endswith("_status")})) or "measured"
        lines.append(
            f"| {run['network']} | {run['neurons']} | {run['device']} "
            f"| {_number(train.get('gpu_joules_per_digit'), '.3f')} "
            f"| {_number(inference.get('gpu_joules_per_digit'), '.3f')} "
            f"| {_number(train.get('gpu_above_idle_joules_per_digit'), '.3f')} "
            f"| {_number(inference.get('gpu_above_idle_joules_per_digit'), '.3f')} "
            f"| {_number(train.get('gpu_mean_watts'), '.0f')} "
            f"| {_number(train.get('cpu_joules_per_digit'), '.3f')} | {status} |")
    return "\n".join(lines)


def build_table(builds):
    lines = ["| device | network | N | build s | result |", "|---|---|---:|---:|---|"]
    for (device, network, neurons), build in builds.items():
        result = "built" if "error" not in build else f"failed: {build['error'][:160]}"
        lines.append(f"| {device} | {network} | {neurons} "
                     f"| {_number(build.get('build_seconds'), '.0f')} | {result} |")
    return "\n".join(lines)


def plot(runs, reference, directory):
    """gpu_speed.png (ms per digit against N) and gpu_energy.png (J per digit) in ``directory``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    done = [r for r in runs if "train" in r]
    written = []
    if done:
        figure, ax = plt.subplots(figsize=(6, 4.5))
        for network in dict.fromkeys(r["network"] for r in done):
            for device in dict.fromkeys(r["device"] for r in done):
                points = sorted((r["neurons"], r["train"]["ms_per_digit"],
                                 r["test"]["ms_per_digit"]) for r in done
                                if r["network"] == network and r["device"] == device)
                if not points:
                    continue
                n, train, test = zip(*points)
                line, = ax.plot(n, train, "o-", label=f"{network}, {device}: train")
                ax.plot(n, test, "s--", color=line.get_color(), alpha=0.6,
                        label=f"{network}, {device}: test")
        ax.set(xscale="log", yscale="log", xlabel="excitatory neurons N",
               ylabel="ms per digit", title=f"ms per digit ({reference} pinned to one core)")
        ax.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(directory / "gpu_speed.png", dpi=120)
        plt.close(figure)
        written.append(directory / "gpu_speed.png")
    measured = [r for r in done if (r.get("energy") or {}).get("train", {}).get(
        "gpu_joules_per_digit") is not None and r["device"] != reference]
    if measured:
        figure, ax = plt.subplots(figsize=(6, 4.5))
        labels = [f"{r['network']}\nN = {r['neurons']}\n{r['device']}" for r in measured]
        x = range(len(measured))
        for offset, phase in ((-0.2, "train"), (0.2, "inference")):
            gross = [r["energy"].get(phase, {}).get("gpu_joules_per_digit") or 0
                     for r in measured]
            net = [r["energy"].get(phase, {}).get("gpu_above_idle_joules_per_digit") or 0
                   for r in measured]
            bars = ax.bar([i + offset for i in x], gross, width=0.4, alpha=0.45,
                          label=f"{phase}: measured")
            ax.bar([i + offset for i in x], net, width=0.4, color=bars.patches[0].get_facecolor(),
                   alpha=1.0, hatch="//", label=f"{phase}: above idle")
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set(ylabel="GPU J per digit (NVML)", title="GPU energy per digit")
        ax.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(directory / "gpu_energy.png", dpi=120)
        plt.close(figure)
        written.append(directory / "gpu_energy.png")
    return written


# ------------------------------------------------------------------ main
def parse_runs(specs):
    """``['diehl-cook:400,1600', 'asp:400']`` → [('diehl-cook', 400), ('diehl-cook', 1600), ...]."""
    runs = []
    for spec in specs:
        network, _, sizes = spec.partition(":")
        if not network or not sizes:
            raise argparse.ArgumentTypeError(f"run {spec!r}: write NETWORK:N[,N...]")
        try:
            runs += [(network, int(n)) for n in sizes.split(",") if n]
        except ValueError:
            raise argparse.ArgumentTypeError(f"run {spec!r}: N must be integers") from None
    return runs


def prebuild(configs, args, deadline):
    """Build every configuration that builds once, in parallel; {(device, network, N): figures}."""
    wanted = [c for c in configs if SPECS[c[0]].builds_once]
    builds = {}
    if not wanted:
        return builds
    jobs = args.jobs or len(wanted)
    timeout = max(1.0, min(args.timeout, deadline - time.monotonic()))
    print(f"building {len(wanted)} configurations, {jobs} at a time "
          f"(at most {timeout:.0f} s) ...", file=sys.stderr, flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_one, *config, args, timeout, True): config
                   for config in wanted}
        for future in concurrent.futures.as_completed(futures):
            config = futures[future]
            builds[config] = future.result()
            state = builds[config].get("error") or f"{builds[config].get('build_seconds', 0):.0f} s"
            print(f"  built {config}: {state}", file=sys.stderr, flush=True)
    return {config: builds[config] for config in wanted}


def write_outputs(args, info, builds, runs):
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"machine": info, "settings": {
            "devices": args.devices, "reference": args.reference, "runs": args.runs,
            "train_samples": args.train_samples, "test_samples": args.test_samples,
            "seed": args.seed}, "builds": [{**v, "config": list(k)} for k, v in builds.items()],
            "runs": runs}
        args.json.write_text(json.dumps(document, indent=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=None, metavar="NETWORK:N[,N...]",
                        help="networks and sizes, in the order they run (default: "
                             "--network at every --neurons)")
    parser.add_argument("--network", default="diehl-cook")
    parser.add_argument("--neurons", type=int, nargs="+", default=[400, 1600, 6400])
    parser.add_argument("--devices", nargs="+", default=["cpp_dense", "cuda"],
                        choices=list(SPECS))
    parser.add_argument("--reference", default="cpp_dense", choices=list(SPECS),
                        help="device the speed-ups and accuracy differences refer to; it runs "
                             "pinned to one core")
    parser.add_argument("--pin-core", type=int, default=None,
                        help="core the reference device runs on (default: the last one this "
                             "process may use; -1: not pinned)")
    parser.add_argument("--train-samples", type=int, default=200)
    parser.add_argument("--test-samples", type=int, default=200,
                        help="test digits (other than train-samples / 2, the labelling "
                             "stream's length, to separate a stream's fixed cost)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--genn-python", type=Path, default=DEFAULT_GENN_PYTHON,
                        help="Python of the genn environment (make genn-venv)")
    parser.add_argument("--genn-cpu", action="store_true",
                        help="GeNN's single-threaded CPU backend instead of CUDA")
    parser.add_argument("--build-dir", default=None,
                        help="build root of every run (default: a fresh temporary one per run; "
                             "give one with --prebuild)")
    parser.add_argument("--prebuild", action="store_true",
                        help="build every configuration first, in parallel (needs --build-dir)")
    parser.add_argument("--prebuild-only", action="store_true", help="build, run nothing")
    parser.add_argument("--builds-from", type=Path, default=None,
                        help="the --json file of an earlier --prebuild-only: its build times "
                             "are shown (the runs find those builds in --build-dir)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="builds at a time with --prebuild (default: all)")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="seconds one run (or the parallel builds) may take")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole script; runs that cannot start in time "
                             "are skipped")
    parser.add_argument("--min-run-seconds", type=float, default=20,
                        help="a run is not started with less of the budget left")
    parser.add_argument("--idle-seconds", type=float, default=3,
                        help="seconds of GPU idle power measured before the runs (0: none)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--figures", type=Path, default=None)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="folder for each run's command, stdout and stderr")
    # One run in this process (what the runs above start).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--use-gpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = [f"{args.network}:{','.join(str(n) for n in args.neurons)}"]
    try:
        configs = [(device, network, neurons) for network, neurons in parse_runs(args.runs)
                   for device in args.devices]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.worker:
        return worker(args)
    if (args.prebuild or args.prebuild_only) and not args.build_dir:
        parser.error("--prebuild needs --build-dir (the runs find the builds there)")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_workers)
    start = time.monotonic()
    deadline = start + args.budget if args.budget else float("inf")
    pin_core = args.pin_core
    if pin_core is None and hasattr(os, "sched_getaffinity"):
        pin_core = max(os.sched_getaffinity(0))
    if pin_core is not None and pin_core < 0:
        pin_core = None

    info = machine_info()
    print("\n".join(machine_lines(info)), flush=True)
    builds = {}
    if args.builds_from:
        try:
            earlier = json.loads(args.builds_from.read_text())["builds"]
            builds = {tuple(b["config"]): b for b in earlier}
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"--builds-from {args.builds_from}: not read ({error!r})", file=sys.stderr)
    if args.prebuild or args.prebuild_only:
        builds = prebuild(configs, args, deadline)
        print("\n" + build_table(builds), flush=True)
    runs = []
    if not args.prebuild_only:
        if args.idle_seconds > 0 and info["gpu"]["gpus"]:
            info["gpu_idle_watts"] = gpu_idle_watts(args.idle_seconds)
            if info["gpu_idle_watts"] is not None:
                print(f"GPU idle power: {info['gpu_idle_watts']:.1f} W", flush=True)
        for device, network, neurons in configs:
            remaining = deadline - time.monotonic()
            if remaining < args.min_run_seconds:
                runs.append({"device": device, "network": network, "neurons": neurons,
                             "skipped": f"skipped: {max(remaining, 0):.0f} s of the budget left"})
                continue
            built = builds.get((device, network, neurons))
            # A build that failed is not tried again; one stopped by its time limit is
            # continued by the run (make keeps the objects compiled so far).
            if built is not None and "error" in built and not built["error"].startswith("timeout"):
                runs.append({"device": device, "network": network, "neurons": neurons,
                             "error": f"build failed: {built['error']}"})
                continue
            print(f"{network}, N = {neurons}, {device} ...", file=sys.stderr, flush=True)
            core = pin_core if device == args.reference else None
            run = run_one(device, network, neurons, args, min(args.timeout, remaining),
                          pin_core=core)
            if "train" in run:
                run["timing"] = timing_summary(run)
                run["energy"] = energy_summary(run, info.get("gpu_idle_watts"))
            runs.append(run)
            write_outputs(args, info, builds, runs)
    write_outputs(args, info, builds, runs)
    text = ["## Machine", "", *[f"* {line}" for line in machine_lines(info)], ""]
    if builds:
        text += ["## Builds (in parallel, before the runs)", "", build_table(builds), ""]
    if runs:
        text += [f"## Speed: {args.train_samples} training, {args.test_samples} test digits, "
                 f"seed {args.seed}", "", speed_table(runs, builds, args.reference), "",
                 "## Energy (NVML; inference = labelling and test streams)", "",
                 energy_table(runs), ""]
    print("\n" + "\n".join(text[len(machine_lines(info)) + 3:]))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(text))
    if args.figures and runs:
        for path in plot(runs, args.reference, args.figures):
            print(f"figure: {path}")
    failed = [r for r in (*builds.values(), *runs) if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

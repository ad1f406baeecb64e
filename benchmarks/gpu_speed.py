#!/usr/bin/env python
"""ms per digit on cuda, genn and cpp_standalone for several N, as a table.

For every network size (``--neurons``, default 400 1600 6400) and device
(``--devices``, default ``cpp_standalone cuda genn``) this script runs
``benchmarks/device_comparison.py`` in a fresh process (``genn`` in the
Python of ``make genn-venv``, ``--genn-python``; GeNN's CUDA backend unless
``--genn-cpu``) on the same seed and data: a fresh network trains on
``--train-samples`` digits and is tested on ``--test-samples`` digits. It
prints a Markdown table with, per run,

* build seconds: code generation + compilation (``cpp_standalone`` and
  ``cuda``: once; ``genn``: one build per stream, the two streams' builds
  summed), measured apart from the simulation;
* ms per training / test digit: ``StreamResult.simulation_seconds / n``
  (``cpp_standalone``, ``cuda``: wall clock around the compiled program;
  ``genn``: brian2genn's timing of its run loop);
* speed-up per training digit against ``cpp_standalone`` at the same N (when
  it ran);
* spikes and presentation slots per training digit and the accuracy
  (proportion weighting; labels from the training responses), to see that
  the devices simulate the same network.

``--json FILE`` writes every run's figures. A run that fails is shown with
its error and the others go on. One benchmark at a time: wall-clock figures.

Example on a GPU machine (issue 5's target: at N = 6400 a training digit
≥ 20× faster than ``cpp_standalone`` on one core)::

    pip install -e '.[cuda]'; make genn-venv
    export GENN_PATH=/path/to/genn CUDA_PATH=/usr/local/cuda  # GeNN 4.x, CUDA backend built
    python benchmarks/gpu_speed.py --neurons 400 1600 6400 --train-samples 200 \\
        --test-samples 200 --json results/gpu_speed.json
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
COMPARISON = REPOSITORY / "benchmarks" / "device_comparison.py"
DEFAULT_GENN_PYTHON = REPOSITORY / ".venv-genn" / "bin" / "python"


def run_one(device, neurons, args):
    """Figures of one (device, N) run as a dict, or ``{'error': ...}``."""
    python = str(args.genn_python) if device == "genn" else sys.executable
    command = [
        python, str(COMPARISON), "--device", device, "--network", args.network,
        "--neurons", str(neurons), "--train-samples", str(args.train_samples),
        "--test-samples", str(args.test_samples), "--seed", str(args.seed),
    ]
    if args.build_dir:
        command += ["--build-dir", str(Path(args.build_dir) / f"{device}-{neurons}")]
    if device == "genn" and not args.genn_cpu:
        command.append("--use-gpu")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"device": device, "neurons": neurons, "error": f"timeout ({args.timeout} s)"}
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"device": device, "neurons": neurons, "error": error}
    return json.loads(lines[-1])


def table(runs):
    """Markdown table of ``runs`` (dicts from `run_one`)."""
    reference = {run["neurons"]: run["train"]["ms_per_digit"] for run in runs
                 if run.get("device") == "cpp_standalone" and "error" not in run}
    lines = [
        "| N | device | build s | ms per train digit | ms per test digit | speed-up "
        "| spikes per digit | slots per digit | accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        device = run["device"] + (" (GPU)" if run.get("use_gpu") else "")
        if "error" in run:
            lines.append(f"| {run['neurons']} | {device} | failed: {run['error'][:120]} "
                         "| | | | | | |")
            continue
        train, test = run["train"], run["test"]
        base = reference.get(run["neurons"])
        speedup = f"{base / train['ms_per_digit']:.1f}×" if base else "–"
        accuracy = run["accuracy"]["proportion_weighting"] * 100
        lines.append(
            f"| {run['neurons']} | {device} | {sum(run['build_seconds']):.0f} "
            f"| {train['ms_per_digit']:.1f} | {test['ms_per_digit']:.1f} | {speedup} "
            f"| {train['spikes_per_digit']:.1f} | {train['slots_per_digit']:.3f} "
            f"| {accuracy:.1f} % |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[400, 1600, 6400])
    parser.add_argument("--devices", nargs="+", default=["cpp_standalone", "cuda", "genn"],
                        choices=["cpp_standalone", "cuda", "genn", "runtime"])
    parser.add_argument("--network", default="diehl-cook")
    parser.add_argument("--train-samples", type=int, default=200)
    parser.add_argument("--test-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--genn-python", type=Path, default=DEFAULT_GENN_PYTHON,
                        help="Python of the genn environment (make genn-venv)")
    parser.add_argument("--genn-cpu", action="store_true",
                        help="GeNN's single-threaded CPU backend instead of CUDA")
    parser.add_argument("--build-dir", default=None)
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="seconds one run may take")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    for neurons in args.neurons:
        for device in args.devices:
            print(f"N = {neurons}, {device} ...", file=sys.stderr, flush=True)
            runs.append(run_one(device, neurons, args))
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(runs, indent=1))
    print(table(runs))
    return 0 if all("error" not in run for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

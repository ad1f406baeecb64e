#!/usr/bin/env python
"""Per-sample simulation cost of the engine: ms per digit, spikes, synaptic events.

For every network variant (``diehl-cook``, ``spikedyn``), every network size N
and every device this script

1. builds an `Engine` (``cpp_standalone``: generated and compiled once into
   ``--build-dir``, with ``chunk_samples`` = the number of training samples, so
   that the training stream is one run of the binary) and records
   ``engine.build_seconds`` (code generation + compilation; a build directory
   that already holds an unchanged build is only re-checked, which is faster:
   use ``--clean-builds`` to time fresh builds);
2. runs a short warm-up stream of ``--warmup-samples`` digits (not timed, and
   its result is discarded) so that the binary and its libraries are in the
   page cache (``cpp_standalone`` only);
3. trains: ``run_stream`` on ``--train-samples`` digits of
   ``load_embedded('train')`` in a seeded random order, ``plastic=True``, from
   ``engine.initial_state(seed)``;
4. tests: ``run_stream`` on ``--test-samples`` digits of
   ``load_embedded('test')`` (seeded random order), ``plastic=False``, from the
   trained state;

and prints a Markdown table. With ``--write FILE`` the table, with the machine,
the date, the command line and the library versions, replaces the block between
``<!-- engine_speed:begin -->`` and ``<!-- engine_speed:end -->`` in FILE (the
file is created with a short header if it does not exist).

What is measured
----------------
``StreamResult.simulation_seconds`` is wall-clock time measured around the
run of the compiled program, *excluding* code generation and compilation: on
``cpp_standalone`` it covers writing the ``run_args`` arrays (pixel values,
weights, thresholds) to files, starting the process, loading those arrays,
simulating the whole stream, writing the results to disk, and Brian2's
post-run check of the neurons' state variables. The "loop" column is the part
of it spent in the binary's simulation loop (Brian2's ``last_run_info``),
i.e. without process start-up and file I/O.

The ``runtime`` device is Brian2's Python runtime with the ``numpy`` code
generation target; the engine builds the network again for every stream, and
``simulation_seconds`` there is the time of ``Network.run`` (which includes
Brian2's code generation for the run, but not the construction of the groups);
its "loop" column excludes that code generation. With only a few digits per
runtime measurement the code generation weighs on the per-digit figure.

Columns
-------
* ms per training / test digit: ``simulation_seconds / n * 1e3``;
* slots per digit: presentation slots (350 ms presentation + 150 ms rest)
  simulated per digit, > 1 when digits are shown again at a higher intensity;
* input spikes per digit: Poisson input spikes of the training stream per digit
  (all its slots);
* synaptic events per second: ``StreamResult.synaptic_events(parameters) /
  simulation_seconds`` of the training stream (each spike times its outgoing
  synapses: input spikes reach N neurons, excitatory spikes reach their 784
  input synapses and the inhibition targets).

Only one benchmark should run at a time: the numbers are wall-clock times.
"""

import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BEGIN_MARKER = "<!-- engine_speed:begin -->"
END_MARKER = "<!-- engine_speed:end -->"

DEFAULT_HEADER = """# Engine performance

Per-sample simulation cost of the engine, measured by
`benchmarks/engine_speed.py` (see its docstring for what is measured).

"""

VARIANTS = ("diehl-cook", "spikedyn")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Measure the per-sample simulation cost of the engine (training and "
            "test streams) for each network variant, size and device, and print "
            "a Markdown table."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
        help="network variants to measure",
    )
    parser.add_argument(
        "--neurons", nargs="+", type=int, default=[100, 400, 1600],
        help="numbers of excitatory neurons N",
    )
    parser.add_argument(
        "--devices", nargs="+", default=["runtime", "cpp_standalone"],
        choices=["runtime", "cpp_standalone"], help="devices to measure",
    )
    parser.add_argument(
        "--train-samples", type=int, default=500,
        help="training digits per cpp_standalone measurement",
    )
    parser.add_argument(
        "--test-samples", type=int, default=200,
        help="test digits per cpp_standalone measurement",
    )
    parser.add_argument(
        "--runtime-samples", type=int, default=3,
        help="training and test digits per runtime-device measurement",
    )
    parser.add_argument(
        "--warmup-samples", type=int, default=5,
        help="digits of the untimed warm-up stream (cpp_standalone; 0: none)",
    )
    parser.add_argument(
        "--build-dir", default="/tmp/spikedyn-bench-builds",
        help="root directory of the compiled builds",
    )
    parser.add_argument(
        "--clean-builds", action="store_true",
        help="delete --build-dir first, so that every build is timed from scratch",
    )
    parser.add_argument(
        "--threads", type=int, default=0,
        help="OpenMP threads of the compiled program (0: no OpenMP)",
    )
    parser.add_argument("--seed", type=int, default=1234, help="seed of orders, weights, inputs")
    parser.add_argument(
        "--write", metavar="FILE", default=None,
        help=(
            f"replace the block between {BEGIN_MARKER} and {END_MARKER} in FILE "
            "with the table (create FILE if needed)"
        ),
    )
    arguments = parser.parse_args(argv)
    for name in ("train_samples", "test_samples", "runtime_samples"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if arguments.warmup_samples < 0:
        parser.error("--warmup-samples must be >= 0")
    if any(n < 1 for n in arguments.neurons):
        parser.error("--neurons must be positive")
    return arguments


def log(message):
    print(message, file=sys.stderr, flush=True)


def seeded_order(n_available, n, seed):
    if n > n_available:
        raise SystemExit(f"asked for {n} digits but only {n_available} are available")
    return np.random.default_rng(seed).permutation(n_available)[:n]


def measure(variant, n_neurons, device, arguments, train_digits, test_digits):
    """One row: build, warm up, train, test; return a dict of figures."""
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.models.parameters import network_parameters

    parameters = network_parameters(variant, n_neurons)
    if device == "cpp_standalone":
        n_train, n_test = arguments.train_samples, arguments.test_samples
    else:
        n_train = n_test = arguments.runtime_samples
    train_images = train_digits.images[seeded_order(len(train_digits), n_train, arguments.seed)]
    test_images = test_digits.images[seeded_order(len(test_digits), n_test, arguments.seed + 1)]

    log(f"[{variant} N={n_neurons} {device}] building")
    start = time.perf_counter()
    engine = Engine(
        parameters,
        device=device,
        build_root=arguments.build_dir,
        chunk_samples=n_train,
        threads=arguments.threads,
    )
    log(f"[{variant} N={n_neurons} {device}] built in {time.perf_counter() - start:.1f} s")
    state = engine.initial_state(arguments.seed)

    if device == "cpp_standalone" and arguments.warmup_samples:
        warmup = train_images[: min(arguments.warmup_samples, n_train)]
        engine.run_stream(warmup, state, plastic=True, seed=arguments.seed + 2)

    def loop_seconds():
        # Time spent in the simulation loop of the last run: on cpp_standalone
        # Brian2 reads it from the binary's last_run_info.txt; on runtime it is
        # Network.run without its code generation (before_run).
        from brian2.devices.device import get_device

        holder = getattr(engine, "_device", None) or get_device()
        value = getattr(holder, "_last_run_time", None)
        return float(value) if value is not None else None

    log(f"[{variant} N={n_neurons} {device}] training on {n_train} digits")
    train = engine.run_stream(train_images, state, plastic=True, seed=arguments.seed + 3)
    train_loop = loop_seconds() if len(train.chunk_seconds) == 1 else None
    log(f"[{variant} N={n_neurons} {device}] {train!r}")
    log(f"[{variant} N={n_neurons} {device}] testing on {n_test} digits")
    test = engine.run_stream(test_images, train.state, plastic=False, seed=arguments.seed + 4)
    log(f"[{variant} N={n_neurons} {device}] {test!r}")

    events = train.synaptic_events(parameters)
    return {
        "variant": variant,
        "n_neurons": n_neurons,
        "device": device,
        "n_train": n_train,
        "n_test": n_test,
        "build_seconds": engine.build_seconds,
        "train_ms": train.simulation_seconds / n_train * 1e3,
        "train_loop_ms": None if train_loop is None else train_loop / n_train * 1e3,
        "test_ms": test.simulation_seconds / n_test * 1e3,
        "train_slots": train.slots / n_train,
        "test_slots": test.slots / n_test,
        "input_spikes": train.input_spikes_total / n_train,
        "excitatory_spikes": train.spikes_total / n_train,
        "events_per_second": events / train.simulation_seconds,
    }


def _format(value, spec):
    return "-" if value is None else format(value, spec)


def markdown_table(rows):
    header = (
        "| variant | N | device | digits train/test | build (s) | train ms/digit "
        "| of which loop | test ms/digit | slots/digit train/test | input spikes/digit "
        "| exc. spikes/digit | synaptic events/s (train) |"
    )
    lines = [header, "|" + "|".join(["---"] * 3 + ["---:"] * 9) + "|"]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['n_neurons']} | {row['device']} "
            f"| {row['n_train']}/{row['n_test']} "
            f"| {_format(row['build_seconds'], '.1f')} "
            f"| {row['train_ms']:.2f} "
            f"| {_format(row['train_loop_ms'], '.2f')} "
            f"| {row['test_ms']:.2f} "
            f"| {row['train_slots']:.2f}/{row['test_slots']:.2f} "
            f"| {row['input_spikes']:.0f} "
            f"| {row['excitatory_spikes']:.1f} "
            f"| {row['events_per_second']:.3g} |"
        )
    return "\n".join(lines)


def cpu_model():
    try:
        output = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"^Model name:\s*(.+)$", output, re.MULTILINE)
        if match:
            return match.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def compiler_version():
    try:
        output = subprocess.run(
            ["gcc", "--version"], capture_output=True, text=True, check=True
        ).stdout
        return output.splitlines()[0].strip()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown compiler"


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def environment_lines(command_line, clean_builds, started):
    import brian2

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    date = f"{started:%Y-%m-%d %H:%M}–{utc_now():%H:%M} UTC"
    return [
        f"Machine: {cpu_model()}, nproc {cpus} ({platform.system()} {platform.release()}); "
        f"{compiler_version()}.",
        f"Date: {date} (start–end).",
        f"Command: `{command_line}`",
        "Build times: "
        + (
            "fresh builds (code generation + compilation)."
            if clean_builds
            else "build directories were reused where unchanged (then only re-checked)."
        ),
        f"Versions: brian2 {brian2.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}.",
    ]


def write_block(path, block):
    path = Path(path)
    if path.exists():
        text = path.read_text()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = DEFAULT_HEADER
    replacement = f"{BEGIN_MARKER}\n{block}\n{END_MARKER}"
    begin, end = text.find(BEGIN_MARKER), text.find(END_MARKER)
    if begin >= 0 and end > begin:
        text = text[:begin] + replacement + text[end + len(END_MARKER):]
    else:
        if begin >= 0 or end >= 0:
            log(f"{path}: the markers are incomplete or out of order; appending a new block")
        text = text.rstrip("\n") + "\n\n" + replacement + "\n"
    path.write_text(text)


def main(argv=None):
    arguments = parse_arguments(argv)
    started = utc_now()
    command_line = shlex.join(
        [sys.executable, *(sys.argv if argv is None else ["engine_speed.py", *argv])]
    )
    from spikedyn_brian.data import load_embedded

    if arguments.clean_builds and Path(arguments.build_dir).exists():
        log(f"deleting {arguments.build_dir} (--clean-builds)")
        shutil.rmtree(arguments.build_dir)

    train_digits = load_embedded("train")
    test_digits = load_embedded("test")
    rows = []
    for variant in arguments.variants:
        for n_neurons in arguments.neurons:
            for device in arguments.devices:
                rows.append(
                    measure(variant, n_neurons, device, arguments, train_digits, test_digits)
                )
                # Show progress as it comes: the whole run takes minutes.
                log(markdown_table(rows[-1:]).splitlines()[-1])
    table = markdown_table(rows)
    environment = environment_lines(command_line, arguments.clean_builds, started)
    block = table + "\n\n" + "\n".join(environment)
    print(block)
    if arguments.write:
        write_block(arguments.write, block)
        log(f"wrote the table to {arguments.write}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Instructions per training digit of the compiled engine, counted by callgrind.

Wall-clock times are meaningless on a loaded (or shared) machine; instruction
counts are not. For every device this script builds the engine (with
``-march=native`` replaced by ``--march``, default ``x86-64-v3``: valgrind
3.19 cannot run AVX-512 code), runs a training stream of each length in
``--digits`` (learning on, from Diehl & Cook's initial weights, the same
digits and seed on every device) with the program under
``valgrind --tool=callgrind``, and prints

* **instructions per digit**: the difference of the program's instruction
  counts between the longest and the shortest stream over the difference of
  their lengths (what the per-stream work — process start, loading and
  writing arrays — costs drops out), and the per-stream rest;
* the same per function (code objects, the network loop, ``exp``), top
  ``--top``;
* spike counts per device, to see that the devices ran the same work.

Example (the figures of issue 19's exact rewrites)::

    nice -n 15 python benchmarks/dense_instructions.py --network diehl-cook --neurons 400 \\
        --digits 10 30 --devices cpp_standalone cpp_dense --build-dir /tmp/icount

Instruction counts are not cycles (a division is one instruction, ``exp`` a
few dozen): compare a device with itself before and after a change, with the
same ``--march``.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WRAPPER = """#!/bin/sh
exec valgrind --tool=callgrind --log-file="$SPIKEDYN_CALLGRIND_OUT.log" \\
    --callgrind-out-file="$SPIKEDYN_CALLGRIND_OUT" "{real}" "$@"
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--network", default="diehl-cook",
                        choices=["diehl-cook", "asp", "spikedyn"])
    parser.add_argument("--neurons", type=int, default=400)
    parser.add_argument("--digits", nargs=2, type=int, default=[10, 30],
                        help="two stream lengths; the difference gives the per-digit count")
    parser.add_argument("--devices", nargs="+", default=["cpp_dense"],
                        choices=["cpp_standalone", "cpp_dense"])
    parser.add_argument("--precision", default="double", choices=["double", "single"])
    parser.add_argument("--march", default="x86-64-v3",
                        help="replaces -march=native (valgrind runs no AVX-512 code)")
    parser.add_argument("--build-dir", default=None,
                        help="root of the builds (default: a temporary directory, removed)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--top", type=int, default=15, help="functions listed per device")
    return parser.parse_args(argv)


def _callgrind_functions(path):
    """{function: instructions} of a callgrind output file (exclusive counts)."""
    output = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", str(path)],
                            capture_output=True, text=True, check=True).stdout
    functions = {}
    for line in output.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)(?:\s+\[.*\])?$", line)
        if not match or ":" not in match.group(2):
            continue
        name = match.group(2).split(":", 1)[1]
        functions[name] = functions.get(name, 0) + int(match.group(1).replace(",", ""))
    return functions


def _callgrind_total(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {path}")


def measure(device, arguments, images, work):
    """{digits: (total instructions, per-function counts, spikes)} of one device."""
    from spikedyn_brian.devices import backends
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.config import network_from_mapping

    flags = tuple(f"-march={arguments.march}" if flag == "-march=native" else flag
                  for flag in backends.COMPILER_FLAGS)
    saved, backends.COMPILER_FLAGS = backends.COMPILER_FLAGS, flags
    try:
        parameters = network_from_mapping({"variant": arguments.network,
                                           "n_neurons": arguments.neurons,
                                           "precision": arguments.precision,
                                           "parameter_set": "published"})
        log(f"[{device}] building ({' '.join(flags)})")
        engine = Engine(parameters, device=device, build_root=arguments.build_dir,
                        chunk_samples=max(arguments.digits))
    finally:
        backends.COMPILER_FLAGS = saved
    main = engine.build_directory / "main"
    real = engine.build_directory / "main.real"
    if not real.exists() or main.stat().st_size > 4096:  # a fresh binary, not the wrapper
        shutil.copy2(main, real)
    main.write_text(WRAPPER.format(real=real.absolute()))
    main.chmod(0o755)
    results = {}
    try:
        for k in sorted(set(arguments.digits)):
            out = Path(work) / f"{device}-{k}.callgrind"
            os.environ["SPIKEDYN_CALLGRIND_OUT"] = str(out)
            log(f"[{device}] {k} digits under callgrind")
            learned = engine.run_stream(images[:k], engine.initial_state(arguments.seed),
                                        plastic=True, seed=2)
            results[k] = (_callgrind_total(out), _callgrind_functions(out),
                          int(learned.spikes_total), int(learned.slots))
    finally:
        engine.close()
        # Leave a real binary behind: the build may be used without this script.
        shutil.copy2(real, main)
    return results


def report(device, results, top):
    (k1, (total1, functions1, spikes1, slots1)), (k2, (total2, functions2, spikes2, slots2)) = \
        sorted(results.items())
    per_digit = (total2 - total1) / (k2 - k1)
    lines = [f"{device}: {per_digit / 1e6:.3f} M instructions per training digit "
             f"(streams of {k1} and {k2} digits: {total1 / 1e6:.1f} and {total2 / 1e6:.1f} M; "
             f"per-stream rest {(total1 - k1 * per_digit) / 1e6:.1f} M); "
             f"spikes {spikes1}/{spikes2}, slots {slots1}/{slots2}"]
    rows = {name: (functions2.get(name, 0) - functions1.get(name, 0)) / (k2 - k1)
            for name in set(functions1) | set(functions2)}
    lines.append(f"  {'M instr./digit':>14}  function")
    for name, value in sorted(rows.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {value / 1e6:14.3f}  {name}")
    return "\n".join(lines)


def main(argv=None):
    arguments = parse_arguments(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        sys.exit("valgrind (callgrind) is not installed")
    if len(set(arguments.digits)) != 2:
        sys.exit("--digits takes two different stream lengths")
    temporary = None
    if arguments.build_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="dense-instructions-")
        arguments.build_dir = temporary.name
    from spikedyn_brian.data import load_embedded

    digits = load_embedded("train")
    order = np.random.default_rng(arguments.seed).permutation(len(digits))
    images = digits.images[order[:max(arguments.digits)]]
    with tempfile.TemporaryDirectory(prefix="callgrind-") as work:
        for device in arguments.devices:
            print(report(device, measure(device, arguments, images, work), arguments.top),
                  flush=True)
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()

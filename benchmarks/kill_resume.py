#!/usr/bin/env python
"""Kill a protocol run with SIGKILL at random moments, resume it, compare.

For ``--protocol static-mnist`` or ``dynamic-digits`` this script

1. runs the protocol once without interruption (the reference);
2. runs the same command again (another output file) and kills the
   ``spikedyn`` process with SIGKILL at ``--kills`` random moments, each time
   checking that no compiled program outlives it (the program dies with its
   parent), then lets the last re-run finish;
3. checks that the results equal the reference (every data variable, bit for
   bit) and that nothing is left behind that the run did not promise: in the
   output directory only the results files, in the build directory nothing of
   the killed runs (their results directories and private binaries), no
   temporary, lock or checkpoint file.

It prints one line per kill and a verdict; the exit status is 0 when every
check passed. Example (``docs/results.md``, reliability)::

    python benchmarks/kill_resume.py --protocol dynamic-digits --kills 5
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray

PROTOCOL_ARGUMENTS = {
    "static-mnist": ["--network", "diehl-cook", "--neurons", "30", "--train-samples", "300",
                     "--epochs", "2", "--test-samples", "100", "--assignment-samples", "100"],
    "dynamic-digits": ["--network", "spikedyn", "--neurons", "30", "--task-order", "0", "1", "2",
                       "--samples-per-task", "400", "--probe-per-class", "10",
                       "--test-per-class", "20"],
}


def _command(protocol, out, build_dir, seed):
    return [sys.executable, "-m", "spikedyn_brian.cli", "run", protocol,
            *PROTOCOL_ARGUMENTS[protocol], "--device", "cpp_standalone", "--seed", str(seed),
            "--chunk-samples", "50",
            "--build-dir", str(build_dir), "--no-progress", "--out", str(out)]


def _run(command, config_dir):
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=config_dir)


def _orphans(pid):
    """Compiled programs of process ``pid`` still running (their private binary names it)."""
    listing = subprocess.run(["pgrep", "-f", f"main-results-{pid}-"], capture_output=True,
                             text=True)
    return [line for line in listing.stdout.split() if line]


def _build_files(build_dir):
    return sorted(str(path.relative_to(build_dir)) for path in build_dir.rglob("*")
                  if "results" in path.name or path.name.startswith("main-"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOL_ARGUMENTS), required=True)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the run and of the kill times")
    parser.add_argument("--work", help="work directory (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="kill-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    build_dir, out_dir = work / "builds", work / "out"
    out_dir.mkdir(exist_ok=True)
    rng = random.Random(args.seed)
    try:
        start = time.perf_counter()
        reference = out_dir / "reference.nc"
        process = _run(_command(args.protocol, reference, build_dir, args.seed), work)
        if process.wait() != 0:
            print(process.stderr.read().decode(), file=sys.stderr)
            return 1
        duration = time.perf_counter() - start
        with xarray.open_dataset(reference) as stored:
            build = float(stored.attrs.get("build_seconds", 0.0))
        # The runs below reuse the build: kill within the time they simulate.
        duration = max(duration - build, 1.0)
        print(f"reference run: {duration:.1f} s after a {build:.1f} s build")
        killed = out_dir / "resumed.nc"
        command = _command(args.protocol, killed, build_dir, args.seed)
        failures = []
        for kill in range(args.kills):
            process = _run(command, work)
            # Kill while it simulates: after its next checkpoint (a chunk done),
            # at a random moment within about one chunk's time.
            checkpoint = killed.with_suffix(".checkpoint.npz")
            launched = time.time()
            while process.poll() is None and not (
                    checkpoint.exists() and checkpoint.stat().st_mtime > launched):
                time.sleep(0.1)
            time.sleep(rng.uniform(0.0, 0.5) * duration / 4)
            moment = time.time() - launched
            if process.poll() is not None:
                failures.append(f"kill {kill + 1}: the run had finished before it; only "
                                f"{kill} kill(s) hit the run (make the run longer)")
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            time.sleep(0.5)
            orphans = _orphans(process.pid)
            if orphans:
                failures.append(f"kill {kill + 1}: compiled program(s) {orphans} outlived "
                                f"process {process.pid}")
            print(f"kill {kill + 1}: SIGKILL {moment:.1f} s after launch; orphans: "
                  f"{len(orphans)}; checkpoint {'kept' if checkpoint.exists() else 'missing'}")
        if not killed.exists():
            process = _run(command, work)
            if process.wait() != 0:
                print(process.stderr.read().decode(), file=sys.stderr)
                return 1
        with xarray.open_dataset(reference) as a, xarray.open_dataset(killed) as b:
            for name in a.data_vars:
                values = a[name].values
                equal_nan = values.dtype.kind in "fc"
                if not np.array_equal(values, b[name].values, equal_nan=equal_nan):
                    failures.append(f"variable {name!r} differs from the uninterrupted run")
        left = sorted(path.name for path in out_dir.iterdir())
        if left != ["reference.nc", "resumed.nc"]:
            failures.append(f"output directory holds {left}")
        leftovers = _build_files(build_dir)
        if any(name.startswith("main-") or "/results-" in name or name.startswith("results-")
               for name in (Path(f).name for f in leftovers)):
            failures.append(f"build directory holds run files {leftovers}")
        for failure in failures:
            print(f"FAILED: {failure}")
        print("results identical to the uninterrupted run, no orphan, nothing left behind"
              if not failures else f"{len(failures)} check(s) failed")
        return 1 if failures else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

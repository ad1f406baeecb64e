#!/usr/bin/env python
"""Engine speed: ms per digit, against a reference script and the floor kernel run alongside.

For every network variant (``diehl-cook``, ``spikedyn``), size N and device
(``cpp_standalone`` and ``cpp_dense`` by default) this script builds an
`Engine` (``chunk_samples`` = the training digits, so a stream is one run of
the program), runs an untimed warm-up, trains on ``--train-samples`` digits of
the embedded MNIST training split (seeded order, learning on, from the initial
weights), tests on ``--test-samples`` test digits (learning off, from the
trained state), and reports:

* **ms/digit**: ``StreamResult.simulation_seconds / n`` — the wall-clock time
  of the compiled program's run (writing the stream's data, starting the
  program, simulating, writing and reading results), without code
  generation and compilation (``build s``);
* **ratio to reference**: training ms/digit over the reference script's
  seconds per digit at the same N, measured in the same invocation
  (``../shared/bench/ref_dc_standalone.py``: a careful single-run Brian2
  standalone Diehl & Cook network, or ``--reference PATH``);
* **ratio to floor**: training ms/digit over the single-core floor kernel's
  median per training digit at the same N, measured in the same invocation
  (``../shared/bench/limit_kernel.cpp``, or ``--floor PATH``: built here with
  ``g++ -O3 -march=native -std=c++17`` and run as ``mode=fast ee=1`` on the
  embedded training digits, ``classic=1`` — an inhibitory layer — for
  Diehl & Cook and ASP, ``classic=0`` — direct lateral inhibition — for
  SpikeDyn). Where the kernel is missing or does not build (it needs x86-64
  with AVX-512), the column says ``-`` and the output says why;
* spikes and slots per digit, to see that the devices ran the same work.

With ``--threads T ...`` the dense rows (the devices of ``--options-on``,
default ``cpp_dense``) at N >= ``--threads-from`` are also
measured with T OpenMP threads; with ``--precision single`` the dense rows
also with float32 weights and state (and their test accuracy against double,
``--accuracy-samples``). With ``--profile N`` Brian2's per-code-object profile
of a training stream at N is printed for both devices (where the time goes).
The CPU model and its vector extensions head the output. Run it alone on an
idle machine: the numbers are wall-clock times. ``--write FILE`` replaces the
block between ``<!-- engine_speed:begin -->`` and ``<!-- engine_speed:end -->``
in FILE.

Example (``docs/performance.md``)::

    python benchmarks/engine_speed.py --neurons 100 400 1600 6400 --threads 1 2 \\
        --precision single --profile 400 --write docs/performance.md
"""

import argparse
import datetime
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BEGIN_MARKER = "<!-- engine_speed:begin -->"
END_MARKER = "<!-- engine_speed:end -->"
DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "ref_dc_standalone.py"
DEFAULT_FLOOR = DEFAULT_REFERENCE.with_name("limit_kernel.cpp")
#: How the floor kernel is built (its README) and run.
FLOOR_BUILD = ["g++", "-O3", "-march=native", "-std=c++17"]
FLOOR_SKIP = 5  # warm-up digits the kernel leaves out of its statistics
#: Training and test digits per N (fewer at large N: the figure is per digit).
DEFAULT_SAMPLES = {100: (500, 200), 400: (500, 200), 1600: (200, 100), 6400: (60, 30)}


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["diehl-cook", "spikedyn"],
                        choices=["diehl-cook", "asp", "spikedyn"])
    parser.add_argument("--neurons", nargs="+", type=int, default=[100, 400, 1600, 6400])
    parser.add_argument("--devices", nargs="+", default=["cpp_standalone", "cpp_dense"],
                        choices=["cpp_standalone", "cpp_dense"])
    parser.add_argument("--train-samples", type=int, default=None,
                        help="training digits per row (default: by N, fewer at large N)")
    parser.add_argument("--test-samples", type=int, default=None)
    parser.add_argument("--options-on", nargs="+", default=["cpp_dense"],
                        choices=["cpp_standalone", "cpp_dense"],
                        help="devices whose rows are also measured with --threads and "
                             "--precision")
    parser.add_argument("--threads", nargs="+", type=int, default=[],
                        help="OpenMP threads to measure the dense rows with, besides none")
    parser.add_argument("--threads-from", type=int, default=1600,
                        help="smallest N measured with threads")
    parser.add_argument("--precision", nargs="+", default=[], choices=["single"],
                        help="also measure the dense rows in this precision")
    parser.add_argument("--accuracy-samples", type=int, default=2000,
                        help="training digits of the double/single accuracy check")
    parser.add_argument("--accuracy-neurons", type=int, default=400,
                        help="N of the double/single accuracy check")
    parser.add_argument("--profile", nargs="*", type=int, default=[],
                        help="N at which to print Brian2's per-code-object profile")
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                        help="reference script (python REF K N OUTDIR, last line s/digit)")
    parser.add_argument("--reference-samples", type=int, default=None,
                        help="digits of the reference run (default: as the training rows)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--floor", default=str(DEFAULT_FLOOR),
                        help="floor kernel source (limit_kernel.cpp), built and run alongside")
    parser.add_argument("--floor-samples", type=int, default=None,
                        help="digits of the floor kernel's statistics (default: as the "
                             "training rows)")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--build-dir", default=None,
                        help="root of the builds (default: a temporary directory, removed)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--write", metavar="FILE")
    return parser.parse_args(argv)


def samples(arguments, n):
    train, test = DEFAULT_SAMPLES.get(n, (100, 50))
    return arguments.train_samples or train, arguments.test_samples or test


def measure(variant, n, device, arguments, digits, threads=0, precision="double",
            profile=False):
    """One row: build, warm up, train, test; a dict of figures."""
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.config import network_from_mapping

    train_digits, test_digits = digits
    n_train, n_test = samples(arguments, n)
    rng = np.random.default_rng(arguments.seed)
    train = train_digits.images[rng.permutation(len(train_digits))[:n_train]]
    test = test_digits.images[rng.permutation(len(test_digits))[:n_test]]
    parameters = network_from_mapping({"variant": variant, "n_neurons": n, "precision": precision,
                                       "parameter_set": "published"})
    label = f"[{variant} N={n} {device} threads={threads} {precision}]"
    log(f"{label} building")
    engine = Engine(parameters, device=device, build_root=arguments.build_dir,
                    chunk_samples=max(n_train, n_test), threads=threads, profile=profile)
    state = engine.initial_state(arguments.seed)
    engine.run_stream(train[:5], state, plastic=True, seed=1)  # warm-up, untimed
    learned = engine.run_stream(train, state, plastic=True, seed=2)
    profile_text = None
    if profile:
        path = engine.results_directory / "profiling_info.txt"
        entries = [line.split() for line in path.read_text().splitlines() if line.strip()]
        entries = sorted(((name, float(value)) for name, value in entries), key=lambda e: -e[1])
        profile_text = [(name, value / n_train * 1e3) for name, value in entries]
    tested = engine.run_stream(test, learned.state, plastic=False, seed=3)
    engine.close()
    row = {
        "variant": variant, "n": n, "device": device, "threads": threads,
        "precision": precision, "digits": f"{n_train}/{n_test}",
        "build_s": engine.build_seconds,
        "train_ms": learned.simulation_seconds / n_train * 1e3,
        "test_ms": tested.simulation_seconds / n_test * 1e3,
        "spikes": learned.spikes_total / n_train,
        "slots": learned.slots / n_train,
        "profile": profile_text,
    }
    log(f"{label} train {row['train_ms']:.3f} ms/digit, test {row['test_ms']:.3f} ms/digit")
    return row


def reference_seconds(arguments, n, digits):
    """Seconds per training digit of the reference script at N = ``n`` (or None)."""
    if arguments.no_reference or not Path(arguments.reference).is_file():
        return None
    k = arguments.reference_samples or samples(arguments, n)[0]
    with tempfile.TemporaryDirectory(prefix="ref-dc-") as directory:
        log(f"[reference N={n}] {k} digits (its build is not timed)")
        output = subprocess.run([sys.executable, arguments.reference, str(k), str(n), directory],
                                capture_output=True, text=True)
    if output.returncode != 0:
        log(f"[reference N={n}] failed: {output.stderr[-500:]}")
        return None
    return float(output.stdout.strip().splitlines()[-1])


class Floor:
    """The single-core floor kernel (``limit_kernel.cpp``): built once, run per (N, network).

    ``reason`` says why there is no floor column (None when there is one).
    """

    def __init__(self, arguments, digits, directory):
        self.arguments, self.seconds, self.reason = arguments, {}, None
        source = Path(arguments.floor)
        if arguments.no_floor:
            self.reason = "--no-floor"
        elif not source.is_file():
            self.reason = f"no floor kernel at {source}"
        if self.reason:
            return
        self.binary = Path(directory) / "limit_kernel"
        self.images = Path(directory) / "train_images.npy"
        log(f"[floor] building {source} ({' '.join(FLOOR_BUILD)})")
        built = subprocess.run([*FLOOR_BUILD, "-o", str(self.binary), str(source)],
                               capture_output=True, text=True)
        if built.returncode != 0:
            tail = " ".join(built.stderr.strip().splitlines()[-3:])
            self.reason = f"{source.name} did not build ({tail[-300:]})"
            return
        images = np.asarray(digits[0].images)
        np.save(self.images, np.clip(np.rint(images), 0, 255).astype(np.uint8))

    def per_digit(self, n, classic):
        """Median seconds per training digit of the kernel at N = ``n`` (or None)."""
        if self.reason:
            return None
        key = (n, bool(classic))
        if key not in self.seconds:
            k = self.arguments.floor_samples or samples(self.arguments, n)[0]
            command = [str(self.binary), str(self.images), "mode=fast", f"N={n}", "ee=1",
                       f"classic={int(bool(classic))}", f"samples={k + FLOOR_SKIP}",
                       f"skip={FLOOR_SKIP}"]
            log(f"[floor N={n} classic={int(bool(classic))}] {k} digits")
            output = subprocess.run(command, capture_output=True, text=True)
            match = re.search(r"median ([0-9.]+)", output.stdout)
            if output.returncode != 0 or not match:
                log(f"[floor N={n}] failed: {(output.stderr or output.stdout)[-500:]}")
                self.seconds[key] = None
            else:
                self.seconds[key] = float(match.group(1)) * 1e-6
                log(f"[floor N={n} classic={int(bool(classic))}] "
                    f"{self.seconds[key] * 1e3:.3f} ms/digit")
        return self.seconds[key]


def accuracy_check(arguments, digits):
    """Test accuracy of double and single precision on the same stream (cpp_dense, N = 400)."""
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.config import network_from_mapping
    from spikedyn_brian.phases import PhaseRunner
    from spikedyn_brian.protocols import evaluation
    from spikedyn_brian.seeds import RunSeeds

    train_digits, test_digits = digits
    seeds = RunSeeds(arguments.seed)
    order = np.random.default_rng(seeds.stream_order).permutation(len(train_digits))
    train = train_digits.images[order[:arguments.accuracy_samples]]
    label_set = train_digits.subset(order[:1000])
    results = {}
    for precision in ("double", "single"):
        engine = Engine(network_from_mapping({"variant": "diehl-cook", "parameter_set": "published",
                                             "n_neurons": arguments.accuracy_neurons,
                                             "precision": precision}), "cpp_dense",
                        build_root=arguments.build_dir, chunk_samples=1000)
        phases = PhaseRunner(engine, None, False)
        learned = evaluation.train(phases, "train", train, engine.initial_state(seeds.weights),
                                   seeds)
        scores = evaluation.label_and_test(phases, "", learned.state, label_set, test_digits,
                                           seeds)
        results[precision] = scores.accuracies["all_activity"]
        engine.close()
        log(f"[accuracy {precision}] {results[precision]:.4f}")
    return results


def _ratio(milliseconds, seconds, digits=3):
    return "-" if seconds is None else f"{milliseconds / (seconds * 1e3):.{digits}f}"


def table(rows, references, floor):
    lines = ["| variant | N | device | threads | precision | digits train/test | build (s) "
             "| train ms/digit | test ms/digit | ratio to reference | ratio to floor "
             "| exc. spikes/digit | slots/digit |",
             "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        build = "-" if row["build_s"] is None else f"{row['build_s']:.1f}"
        lines.append(
            f"| {row['variant']} | {row['n']} | {row['device']} | {row['threads']} "
            f"| {row['precision']} | {row['digits']} | {build} | {row['train_ms']:.3f} "
            f"| {row['test_ms']:.3f} | {_ratio(row['train_ms'], references.get(row['n']))} "
            f"| {_ratio(row['train_ms'], row['floor'], 1)} "
            f"| {row['spikes']:.1f} | {row['slots']:.2f} |")
    lines.append("")
    lines.append("| N | reference script, ms per training digit |")
    lines.append("|---:|---:|")
    for n, seconds in sorted(references.items()):
        lines.append(f"| {n} | {'-' if seconds is None else f'{seconds * 1e3:.2f}'} |")
    lines.append("")
    if floor.reason:
        lines.append(f"Floor kernel: not measured ({floor.reason}).")
    else:
        lines.append("| N | floor kernel network | floor kernel, ms per training digit (median) |")
        lines.append("|---:|---|---:|")
        for (n, classic), seconds in sorted(floor.seconds.items()):
            network = "inhibitory layer" if classic else "direct inhibition"
            lines.append(f"| {n} | {network} | "
                         f"{'-' if seconds is None else f'{seconds * 1e3:.3f}'} |")
    return "\n".join(lines)


def profiles(rows):
    lines = []
    for row in rows:
        if row["profile"]:
            lines.append(f"Profile, {row['variant']} N = {row['n']}, {row['device']} "
                         f"(ms per training digit, top 12 code objects):")
            lines.append("")
            lines.append("| code object | ms/digit |")
            lines.append("|---|---:|")
            lines += [f"| {name} | {value:.3f} |" for name, value in row["profile"][:12]]
            lines.append("")
    return "\n".join(lines)


def header(command_line, started):
    import brian2

    from spikedyn_brian.provenance import code_version, machine

    info = machine()
    compiler = subprocess.run(["gcc", "--version"], capture_output=True, text=True)
    return (f"Machine: {info['cpu_model']} ({info['cores']} cores; vector extensions: "
            f"{info['vector_extensions']}); {compiler.stdout.splitlines()[0]}; "
            f"brian2 {brian2.__version__}, numpy {np.__version__}.\n"
            f"Date: {started:%Y-%m-%d %H:%M}–{datetime.datetime.now(datetime.timezone.utc):%H:%M}"
            f" UTC. Commit: {code_version()}.\n"
            f"Command: `{command_line}`")


def write_block(path, block):
    path = Path(path)
    text = path.read_text() if path.exists() else "# Engine performance\n"
    replacement = f"{BEGIN_MARKER}\n{block}\n{END_MARKER}"
    begin, end = text.find(BEGIN_MARKER), text.find(END_MARKER)
    if begin >= 0 and end > begin:
        text = text[:begin] + replacement + text[end + len(END_MARKER):]
    else:
        text = text.rstrip("\n") + "\n\n" + replacement + "\n"
    path.write_text(text)


def main(argv=None):
    arguments = parse_arguments(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    command_line = shlex.join(["python", "benchmarks/engine_speed.py",
                               *(sys.argv[1:] if argv is None else argv)])
    temporary = None
    if arguments.build_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="engine-speed-")
        arguments.build_dir = temporary.name
    from spikedyn_brian.data import load_embedded
    from spikedyn_brian.config import network_from_mapping
    from spikedyn_brian.provenance import machine

    info = machine()
    log(f"CPU: {info['cpu_model']}; vector extensions: {info['vector_extensions']}")
    digits = (load_embedded("train"), load_embedded("test"))
    floor_directory = tempfile.TemporaryDirectory(prefix="floor-kernel-")
    floor = Floor(arguments, digits, floor_directory.name)
    if floor.reason:
        log(f"[floor] skipped: {floor.reason}")
    rows, references = [], {}
    for n in arguments.neurons:
        references[n] = reference_seconds(arguments, n, digits)
        for variant in arguments.variants:
            classic = network_from_mapping({"variant": variant, "n_neurons": n,
                                            "parameter_set": "published"}).has_inhibitory_layer
            first = len(rows)
            for device in arguments.devices:
                rows.append(measure(variant, n, device, arguments, digits,
                                    profile=n in arguments.profile))
                if device not in arguments.options_on:
                    continue
                if n >= arguments.threads_from:
                    for threads in arguments.threads:
                        try:
                            rows.append(measure(variant, n, device, arguments, digits, threads))
                        except ValueError as refusal:  # more than one thread (engine.py)
                            log(f"[{variant} N={n} {device} threads={threads}] refused: "
                                f"{refusal}")
                for precision in arguments.precision:
                    rows.append(measure(variant, n, device, arguments, digits,
                                        precision=precision))
            floor_seconds = floor.per_digit(n, classic)
            for row in rows[first:]:
                row["floor"] = floor_seconds
                log(f"[{variant} N={n} {row['device']} threads={row['threads']} "
                    f"{row['precision']}] ratio to reference "
                    f"{_ratio(row['train_ms'], references[n])}, to floor "
                    f"{_ratio(row['train_ms'], floor_seconds, 1)}")
    floor_directory.cleanup()
    block = [header(command_line, started), "", table(rows, references, floor), "",
             profiles(rows)]
    if arguments.precision:
        accuracy = accuracy_check(arguments, digits)
        block.append(f"Accuracy, Diehl & Cook N = {arguments.accuracy_neurons}, "
                     f"{arguments.accuracy_samples} training "
                     f"digits, 1,000 labelling, 1,000 test digits (embedded), cpp_dense: double "
                     f"{accuracy['double']:.4f}, single {accuracy['single']:.4f}.")
    text = "\n".join(block).rstrip() + "\n"
    print(text)
    if arguments.write:
        write_block(arguments.write, text.rstrip())
        log(f"wrote the results to {arguments.write}")
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()

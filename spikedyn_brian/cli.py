"""The ``spikedyn`` command: a thin layer over the protocols.

Examples
--------
Train a 400-neuron Diehl & Cook network on the embedded digits and test it::

    spikedyn run static-mnist --network diehl-cook --neurons 400 \\
        --train-samples 4000 --test-samples 1000 --device cpp_dense \\
        --seed 0 --out results/dc400.nc

Start from a TOML file and override some keys::

    spikedyn run static-mnist --config my.toml --epochs 3 --out results/run.nc

Every option that sets a configuration key is listed in one table per command
(``STATIC_MNIST_OPTIONS``, …: option → key), and one function,
`option_overrides`, turns the options given into the nested overrides merged
over the configuration.
"""

import argparse
import math
import sys

import tomllib

from spikedyn_brian.config import (
    ContinualExperiment,
    load_experiment,
    merge,
    network_from_mapping,
    read_mapping,
)
from spikedyn_brian.data import MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, MNISTFileError
from spikedyn_brian.devices.errors import DeviceError
from spikedyn_brian.devices.registry import DEFAULT_SLOTS_PER_SAMPLE
from spikedyn_brian.errors import ConfigError
from spikedyn_brian.fetch import add_data_parser
from spikedyn_brian.models.parameters import NETWORK_VARIANTS
from spikedyn_brian.names import (
    COMPARISON_OUTPUT,
    COMPARISON_SEEDS,
    COMPARISON_VARIANTS,
    DEVICE_HELP,
    DEVICE_OPTIONS_HELP,
    DEVICES,
    PROTOCOL_CONFIGS,
    SEARCH_VARIANTS,
    STANDALONE_DEVICES,
    TRIAL_SEEDS,
    TUNING_FAMILIES,
    VARIANT_HELP,
)

__all__ = ["main", "build_parser", "option_overrides"]

#: Where compiled builds go unless --build-dir says otherwise.
BUILD_DIR_DEFAULT = "$SPIKEDYN_BUILD_DIR or ~/.cache/spikedyn_brian/builds"
#: Where digits come from unless --data-dir says otherwise.
DATA_DIR_DEFAULT = f"${MNIST_DIRECTORY_ENVIRONMENT_VARIABLE} or the embedded 5,000 digits"


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _key_value(text):
    """``KEY=VALUE`` of ``--device-option``: VALUE read as a TOML value (a bare word as text)."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def _defaults(protocol):
    """A protocol's defaults as ``{'section.key': value}`` (for the help texts)."""
    with open(PROTOCOL_CONFIGS[protocol], "rb") as stream:
        tables = tomllib.load(stream)
    return {f"{section}.{key}": value for section, table in tables.items()
            for key, value in table.items()}


# --------------------------------------------------------------------------
# Options → configuration keys
# --------------------------------------------------------------------------

def option_overrides(args, table, sections=()):
    """The nested overrides of the options given: the one way options become configuration.

    ``table`` maps an option (its ``args`` attribute) to the dotted key it sets
    (``'network.n_neurons'``), or to ``(key, convert)`` where
    ``convert(value, args)`` gives what is set (None: nothing); a table is
    merged at its key. Options apply in the table's order, so a later one
    overrides an earlier one (``--tuned`` first, then the network options over
    it). An option not given (None) sets nothing; ``sections`` are top-level
    tables present even when empty.
    """
    overrides = {section: {} for section in sections}
    for attribute, target in table.items():
        key, convert = target if isinstance(target, tuple) else (target, None)
        value = getattr(args, attribute, None)
        if value is not None and convert is not None:
            value = convert(value, args)
        if value is None:
            continue
        *parents, last = key.split(".")
        level = overrides
        for name in parents:
            level = level.setdefault(name, {})
        if isinstance(value, dict):
            value = merge(level.get(last, {}), value)
        level[last] = value
    return overrides


def _off_if_given(given, args):
    """``--no-progress``: progress off when given."""
    return False if given else None


def _device_options(pairs, args):
    """``--device-option KEY=VALUE`` (repeated): the ``[device.options]`` table."""
    return dict(pairs)


def _tuned_network(source, args):
    """``--tuned NAME|FILE``: the tuned network's table (the explicit options go over it)."""
    from spikedyn_brian.protocols.tuning import tuned_overrides

    try:
        return tuned_overrides(source, n_neurons=getattr(args, "neurons", None))
    except (OSError, ValueError) as error:
        raise ConfigError(f"--tuned {source}: {error}") from None


#: Top-level tables of a single run's overrides.
RUN_SECTIONS = ("network", "stream", "device", "output")

#: Options shared by static-mnist and dynamic-digits (--tuned first: the others go over it).
RUN_OPTIONS = {
    "tuned": ("network", _tuned_network),
    "network": "network.variant",
    "neurons": "network.n_neurons",
    "seed": "stream.seed",
    "data_dir": "stream.data_dir",
    "evaluation": "stream.evaluation",
    "device": "device.name",
    "device_options": ("device.options", _device_options),
    "build_dir": "device.build_dir",
    "chunk_samples": "device.chunk_samples",
    "out": "output.path",
    "overwrite": "output.overwrite",
    "restart": "output.restart",
    "no_progress": ("output.progress", _off_if_given),
}

STATIC_MNIST_OPTIONS = {
    **RUN_OPTIONS,
    "train_samples": "stream.train_samples",
    "epochs": "stream.epochs",
    "test_samples": "stream.test_samples",
    "assignment_samples": "stream.assignment_samples",
    "evaluate_each_epoch": "stream.evaluate_each_epoch",
}

DYNAMIC_DIGITS_OPTIONS = {
    **RUN_OPTIONS,
    "samples_per_task": "stream.samples_per_task",
    "samples_by_task": "stream.samples_by_task",
    "task_order": "stream.task_order",
    "classes_per_task": "stream.classes_per_task",
    "probe_per_class": "stream.probe_per_class",
    "test_per_class": "stream.test_per_class",
    "control": "stream.control",
}

#: The base configuration of every run of a comparison.
COMPARISON_OPTIONS = {
    "neurons": "network.n_neurons",
    "samples_per_task": "stream.samples_per_task",
    "test_per_class": "stream.test_per_class",
    "control": "stream.control",
    "data_dir": "stream.data_dir",
    "device": "device.name",
    "device_options": ("device.options", _device_options),
    "build_dir": "device.build_dir",
}

#: The base configuration of every trial of a tuning study.
TUNE_OPTIONS = {
    "neurons": "network.n_neurons",
    "samples_per_task": "stream.samples_per_task",
    "validation_per_class": "stream.test_per_class",
    "data_dir": "stream.data_dir",
    "device": "device.name",
    "device_options": ("device.options", _device_options),
}

MODEL_SEARCH_OPTIONS = {
    "variants": "search.variants",
    "sizes": "search.sizes",
    "weight_bits": "search.weight_bits",
    "seeds": "search.seeds",
    "max_memory_kb": "search.max_memory_kb",
    "max_energy": "search.max_energy_joules_per_sample",
    "energy_constraint": "search.energy_constraint",
    "train_samples": "stream.train_samples",
    "assignment_samples": "stream.assignment_samples",
    "test_samples": "stream.test_samples",
    "data_dir": "stream.data_dir",
    "evaluation": "stream.evaluation",
    "device": "device.name",
    "device_options": ("device.options", _device_options),
    "scheduler": "dask.scheduler",
    "workers": "dask.workers",
    "out": "output.path",
    "overwrite": "output.overwrite",
}

CODEGEN_OPTIONS = {
    "network": "network.variant",
    "neurons": "network.n_neurons",
    "device": "device.name",
    "device_options": ("device.options", _device_options),
    "slots_per_sample": "device.options.slots_per_sample",
    "compute_capability": "device.options.compute_capability",
    "gpu_id": "device.options.gpu_id",
}


def _add_device_options(parser, default):
    """--device (default ``default``) and --device-option."""
    parser.add_argument("--device", choices=DEVICES,
                        help=f"simulation device (default {default}): {DEVICE_HELP}")
    parser.add_argument("--device-option", action="append", type=_key_value,
                        dest="device_options", metavar="KEY=VALUE",
                        help="an option of the device ([device.options] in TOML; repeat for "
                             f"several): {DEVICE_OPTIONS_HELP} (default: none, the device's "
                             "defaults)")


def _add_run_output_options(parser, d):
    """Options every single-run protocol shares: progress, chunks, tuned network, output."""
    parser.add_argument("--no-progress", action="store_true",
                        help="hide progress bars (default: shown)")
    parser.add_argument("--chunk-samples", type=_positive_int, metavar="C",
                        help="most digits of one compiled run, the checkpoint granularity "
                             f"(default {d['device.chunk_samples']})")
    parser.add_argument("--tuned", metavar="NAME|FILE",
                        help="a tuned network: a shipped set by name (diehl-cook, asp, "
                             "spikedyn: the set for --neurons; or e.g. spikedyn-N200), a "
                             "tuned-set .toml or a `spikedyn run tune` trial table .nc (its "
                             "best trial); other options still override it (default: the "
                             "family's shipped N = 400 set, or its published constants)")
    parser.add_argument("--overwrite", action="store_true", default=None,
                        help="replace a results file that exists (default: refuse)")
    parser.add_argument("--restart", action="store_true", default=None,
                        help="discard the checkpoint of --out (one that is damaged or does "
                             "not fit the run) and start afresh instead of resuming "
                             "(default: resume)")
    parser.add_argument("--out", metavar="FILE.nc",
                        help=f"results file (netCDF; default {d['output.path']})")


def _add_static_mnist(subparsers):
    defaults = _defaults("static-mnist")
    parser = subparsers.add_parser(
        "static-mnist",
        help="train without labels on MNIST digits, label neurons, test",
        description=(
            "Static MNIST protocol: unsupervised training on a digit stream, neuron "
            "labelling with learning off, test with the all-activity and "
            "proportion-weighting rules. Writes one xarray Dataset (netCDF). "
            "Defaults: protocols/static_mnist.toml (the embedded 4,000/1,000 split); "
            "an option given replaces the key of the --config file or the default."
        ),
    )
    d = defaults
    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML configuration to start from (default: "
                             "protocols/static_mnist.toml alone)")
    parser.add_argument("--network", choices=NETWORK_VARIANTS,
                        help=f"network variant (default {d['network.variant']}): {VARIANT_HELP}")
    parser.add_argument("--neurons", type=_positive_int, metavar="N",
                        help=f"excitatory neurons (default {d['network.n_neurons']})")
    parser.add_argument("--train-samples", type=_positive_int, metavar="K",
                        help=f"training digits per epoch (default {d['stream.train_samples']})")
    parser.add_argument("--epochs", type=_positive_int,
                        help=f"passes over the training digits (default {d['stream.epochs']})")
    parser.add_argument("--test-samples", type=_positive_int, metavar="M",
                        help=f"test digits (default {d['stream.test_samples']})")
    parser.add_argument("--assignment-samples", type=int, metavar="A",
                        help="training digits used to label neurons (0: all; default "
                             f"{d['stream.assignment_samples']})")
    _add_device_options(parser, d["device.name"])
    parser.add_argument("--seed", type=int, metavar="S",
                        help=f"seed of data order, weights, inputs (default {d['stream.seed']})")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=(
            "directory with the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
            f"default: {DATA_DIR_DEFAULT}"
        ),
    )
    parser.add_argument("--evaluation", choices=("test", "validation"),
                        help="evaluation split (validation: tuning; never trains on it; "
                             f"default {d['stream.evaluation']})")
    parser.add_argument("--build-dir", metavar="DIR",
                        help=f"root of compiled builds (default: {BUILD_DIR_DEFAULT})")
    parser.add_argument("--evaluate-each-epoch", action="store_true", default=None,
                        help="label and test after every epoch (default: after the last)")
    _add_run_output_options(parser, d)
    parser.set_defaults(handler=_run_static_mnist)


def _static_mnist_overrides(args):
    return option_overrides(args, STATIC_MNIST_OPTIONS, RUN_SECTIONS)


def _run_static_mnist(args):
    from spikedyn_brian.protocols import static_mnist

    experiment = load_experiment(args.config, _static_mnist_overrides(args),
                                 defaults=PROTOCOL_CONFIGS["static-mnist"])
    dataset = static_mnist.run(experiment)
    rule = dataset.accuracy.attrs["prediction_rule"]
    print(f"network {experiment.network.variant}, N = {experiment.network.n_neurons}, "
          f"device {experiment.device.name}")
    for name, value in zip(dataset.rule.values, dataset.accuracy_by_rule.values):
        print(f"accuracy ({name}): {value:.4f}")
    print(f"training: {dataset.attrs['train_seconds_per_sample'] * 1e3:.2f} ms per digit; "
          f"test: {dataset.attrs['test_seconds_per_sample'] * 1e3:.2f} ms per digit")
    print(f"results written to {experiment.output.path} (accuracy rule: {rule})")
    return 0


def _add_dynamic_digits(subparsers):
    d = _defaults("dynamic-digits")
    parser = subparsers.add_parser(
        "dynamic-digits",
        help="class-incremental continual learning: tasks 0→9, evaluation after every task",
        description=(
            "Dynamic digits protocol: one digit class (or group) per task, no labels for "
            "learning, no replay; after every task neurons are labelled from a small probe "
            "set of the classes seen so far and every class is tested. Writes the accuracy "
            "matrix accuracy(after_task, on_task), recent_task_accuracy, "
            "previous_tasks_accuracy, forgetting, … as one xarray Dataset (netCDF). "
            "Defaults: protocols/dynamic_digits.toml."
        ),
    )
    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML configuration to start from (default: "
                             "protocols/dynamic_digits.toml alone)")
    parser.add_argument("--network", choices=NETWORK_VARIANTS,
                        help=f"network variant (default {d['network.variant']}): {VARIANT_HELP}")
    parser.add_argument("--neurons", type=_positive_int, metavar="N",
                        help=f"excitatory neurons (default {d['network.n_neurons']})")
    parser.add_argument("--samples-per-task", type=_positive_int, metavar="K",
                        help=f"training digits per task (default {d['stream.samples_per_task']})")
    parser.add_argument("--samples-by-task", type=_positive_int, nargs="+", metavar="K",
                        help="training digits of each task instead (one count per task, e.g. "
                             "more for earlier classes, as ASP's protocol; default: "
                             "--samples-per-task each)")
    parser.add_argument("--task-order", type=int, nargs="+", metavar="C",
                        help="digit classes in arrival order (default "
                             f"{' '.join(map(str, d['stream.task_order']))})")
    parser.add_argument("--classes-per-task", type=_positive_int,
                        help=f"classes per task (default {d['stream.classes_per_task']})")
    parser.add_argument("--probe-per-class", type=_positive_int,
                        help="labelled digits per seen class used to label neurons (default "
                             f"{d['stream.probe_per_class']})")
    parser.add_argument("--test-per-class", type=_positive_int,
                        help="evaluation digits per seen class after every task (default "
                             f"{d['stream.test_per_class']})")
    parser.add_argument("--control", action="store_true", default=None,
                        help="non-dynamic control: the same digits shuffled across tasks "
                             "(default: class-incremental)")
    _add_device_options(parser, d["device.name"])
    parser.add_argument("--seed", type=int, metavar="S",
                        help=f"seed of weights, stream order and inputs (default {d['stream.seed']})")
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"directory with the MNIST IDX files (default: {DATA_DIR_DEFAULT})")
    parser.add_argument("--evaluation", choices=("test", "validation"),
                        help="evaluation split (validation: tuning; never trains on it; "
                             f"default {d['stream.evaluation']})")
    parser.add_argument("--build-dir", metavar="DIR",
                        help=f"root of compiled builds (default: {BUILD_DIR_DEFAULT})")
    _add_run_output_options(parser, d)
    parser.set_defaults(handler=_run_dynamic_digits)


def _run_dynamic_digits(args):
    from spikedyn_brian.protocols import dynamic_digits

    overrides = option_overrides(args, DYNAMIC_DIGITS_OPTIONS, RUN_SECTIONS)
    # The protocol's own defaults beneath the --config file (not the static
    # protocol's dataclass defaults).
    experiment = load_experiment(args.config, overrides, ContinualExperiment,
                                 defaults=PROTOCOL_CONFIGS["dynamic-digits"])
    dataset = dynamic_digits.run(experiment)
    print(f"network {experiment.network.variant}, N = {experiment.network.n_neurons}, "
          f"{dataset.sizes['after_task']} tasks")
    final_previous = float(dataset.previous_tasks_accuracy_per_step.isel(after_task=-1))
    print(f"recent task accuracy (each task right after learning it): "
          f"{float(dataset.recent_task_accuracy):.4f} "
          f"(without task 0: {float(dataset.later_recent_task_accuracy):.4f})")
    print(f"previous tasks accuracy (average over the stream): "
          f"{float(dataset.previous_tasks_accuracy):.4f}")
    print(f"earlier tasks at the end of the stream: {final_previous:.4f}")
    print(f"average accuracy over seen tasks: {float(dataset.average_seen_accuracy):.4f}")
    print(f"forgetting (average): {float(dataset.average_forgetting):.4f}; "
          f"backward transfer: {float(dataset.backward_transfer):.4f}")
    print(f"results written to {experiment.output.path} ({experiment.stream.evaluation} split)")
    return 0


def _add_comparison(subparsers):
    d = _defaults("dynamic-digits")
    parser = subparsers.add_parser(
        "continual-comparison",
        help="dynamic digits for baselines, SpikeDyn and its ablations over several seeds",
        description=(
            "Runs the dynamic-digits protocol for every variant and seed as independent "
            "tasks on Dask (a LocalCluster using every core, or --scheduler ADDRESS) and "
            "merges the metrics over dims variant and seed. Defaults of every run: "
            "protocols/dynamic_digits.toml."
        ),
    )
    parser.add_argument("--config", metavar="FILE.toml",
                        help="base dynamic-digits configuration (default: "
                             "protocols/dynamic_digits.toml alone)")
    parser.add_argument("--variants", nargs="+", choices=COMPARISON_VARIANTS,
                        help="variants to run (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help=f"seeds (default {' '.join(map(str, COMPARISON_SEEDS))})")
    parser.add_argument("--neurons", type=_positive_int, metavar="N",
                        help=f"excitatory neurons (default {d['network.n_neurons']})")
    parser.add_argument("--samples-per-task", type=_positive_int, metavar="K",
                        help=f"training digits per task (default {d['stream.samples_per_task']})")
    parser.add_argument("--test-per-class", type=_positive_int, metavar="M",
                        help="evaluation digits per seen class after every task (default "
                             f"{d['stream.test_per_class']})")
    parser.add_argument("--control", action="store_true", default=None,
                        help="non-dynamic control: the same digits shuffled across tasks "
                             "(default: class-incremental)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"directory with the MNIST IDX files (default: {DATA_DIR_DEFAULT})")
    _add_device_options(parser, d["device.name"])
    parser.add_argument("--tuned", nargs="+", metavar="FAMILY=SOURCE",
                        help="each family's tuned network (families diehl-cook, asp, "
                             "spikedyn): a `spikedyn run tune` trial table .nc, a tuned-set "
                             ".toml or a shipped set's name (e.g. spikedyn=spikedyn-N200) "
                             "(default: each family's shipped set, or its published "
                             "constants)")
    parser.add_argument("--build-dir", metavar="DIR",
                        help=f"root of compiled builds (default: {BUILD_DIR_DEFAULT})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="existing Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=_positive_int,
                        help="LocalCluster worker processes (default: one per core)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a merged results file that exists (finished per-run "
                             "files are still reused; default: refuse)")
    parser.add_argument("--out", metavar="FILE.nc",
                        help=f"merged results file (default {COMPARISON_OUTPUT})")
    parser.set_defaults(handler=_run_comparison)


#: Columns of the comparison summary: (metric, heading).
_COMPARISON_COLUMNS = (("recent_task_accuracy", "recent task"),
                       ("later_recent_task_accuracy", "recent w/o task 0"),
                       ("previous_tasks_accuracy", "earlier tasks (stream)"),
                       ("final_previous_tasks_accuracy", "earlier tasks (end)"),
                       ("average_forgetting", "forgetting"))


def _points(mean, half_width, sign=""):
    """``mean ± half-width`` in points; the mean alone where there is no interval (one seed)."""
    text = f"{100 * float(mean):{sign}5.1f}"
    return text if math.isnan(float(half_width)) else f"{text} ± {100 * float(half_width):4.1f}"


def _print_comparison(dataset):
    """The merged comparison as a table: each variant, then SpikeDyn minus each baseline."""
    seeds = int(dataset.sizes["seed"])
    print(f"accuracy in %, {'mean ± 95 % CI over ' if seeds > 1 else ''}{seeds} "
          f"seed{'s' if seeds > 1 else ''}:")
    print(f"{'':38s}" + " | ".join(f"{heading:>17s}" for _, heading in _COMPARISON_COLUMNS))
    for variant in dataset.variant.values:
        row = dataset.sel(variant=variant)
        print(f"{str(variant):38s}" + " | ".join(
            f"{_points(row[f'{name}_mean'], row[f'{name}_ci95']):>17s}"
            for name, _ in _COMPARISON_COLUMNS))
    if "baseline" in dataset.dims:
        print("SpikeDyn minus baseline, paired over seeds (points):")
        for baseline in dataset.baseline.values:
            row = dataset.sel(baseline=baseline)
            print(f"  vs {str(baseline):34s}" + " | ".join(
                f"{_points(row[f'{name}_difference_mean'], row[f'{name}_difference_ci95'], '+'):>17s}"
                for name, _ in _COMPARISON_COLUMNS[:4]))


def _run_comparison(args):
    from spikedyn_brian.protocols import continual_comparison

    base = read_mapping(args.config, option_overrides(args, COMPARISON_OPTIONS))
    tuned = {}
    for item in args.tuned or ():
        family, separator, path = item.partition("=")
        if not separator or family not in TUNING_FAMILIES:
            raise ConfigError(f"--tuned takes FAMILY=SOURCE with FAMILY one of "
                              f"{', '.join(TUNING_FAMILIES)}; got {item!r}")
        tuned[family] = path
    plan = continual_comparison.ComparisonPlan(base=base, tuned=tuned)
    if args.variants:
        plan.variants = args.variants
    if args.seeds:
        plan.seeds = args.seeds
    if args.scheduler:
        plan.scheduler = args.scheduler
    if args.workers:
        plan.workers = args.workers
    if args.out:
        plan.output = args.out
    plan.overwrite = bool(args.overwrite)
    dataset = continual_comparison.run(plan)
    _print_comparison(dataset)
    print(f"results written to {plan.output}")
    return 0


def _add_codegen(commands):
    parser = commands.add_parser(
        "codegen",
        help="write the generated project of a training stream (no compiling, no running)",
        description=(
            "Writes the project that a standalone device generates for a training stream "
            "of the network to DIR, without compiling or running it: this is how code is "
            "handed to a GPU machine. cpp_standalone and cuda projects take the pixels, "
            "weights, thresholds and seed through Brian2's run_args; a genn project "
            "(generated in the environment of `make genn-venv`) holds them as initial "
            "values. See docs/models.md (Devices)."
        ),
    )
    d = _defaults("static-mnist")
    parser.add_argument("--device", choices=STANDALONE_DEVICES, required=True,
                        help="standalone device")
    parser.add_argument("--device-option", action="append", type=_key_value,
                        dest="device_options", metavar="KEY=VALUE",
                        help="an option of the device ([device.options]; repeat for several; "
                             "default: none)")
    parser.add_argument("--network", choices=NETWORK_VARIANTS,
                        help=f"network variant (default {d['network.variant']})")
    parser.add_argument("--neurons", type=_positive_int, metavar="N",
                        help=f"excitatory neurons (default {d['network.n_neurons']})")
    parser.add_argument("--out", metavar="DIR", required=True, help="project directory")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML configuration to start from (default: "
                             "protocols/static_mnist.toml alone)")
    parser.add_argument("--stream-samples", type=_positive_int, metavar="K",
                        help="samples one run presents (default: device.chunk_samples, "
                             f"{d['device.chunk_samples']})")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the initial weights of a genn project (default 0)")
    parser.add_argument("--slots-per-sample", type=float, metavar="R",
                        help="genn, cuda: slot budget of a run (default "
                             f"{DEFAULT_SLOTS_PER_SAMPLE})")
    parser.add_argument("--compute-capability", type=float, metavar="X.Y",
                        help="cuda: GPU architecture (default "
                             "$SPIKEDYN_CUDA_COMPUTE_CAPABILITY or 9.0, H100)")
    parser.add_argument("--gpu-id", type=int, metavar="ID",
                        help="cuda: GPU to run on (default $SPIKEDYN_CUDA_GPU_ID or 0)")
    parser.set_defaults(handler=_run_codegen)


def _run_codegen(args):
    from spikedyn_brian.engine import generate_project

    experiment = load_experiment(args.config, option_overrides(args, CODEGEN_OPTIONS),
                                 defaults=PROTOCOL_CONFIGS["static-mnist"])
    capacity = args.stream_samples or experiment.device.chunk_samples
    try:
        directory = generate_project(
            experiment.network, experiment.device.name, args.out, stream_capacity=capacity,
            seed=args.seed, options=experiment.device.options,
        )
    except DeviceError as error:
        print(f"spikedyn: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.device} project of a {capacity}-sample training stream of "
          f"{experiment.network.variant} (N = {experiment.network.n_neurons}) written to "
          f"{directory} (not compiled)")
    return 0


def build_parser():
    """The argument parser of ``spikedyn``."""
    parser = argparse.ArgumentParser(
        prog="spikedyn",
        description=(
            "SpikeDyn and Diehl & Cook spiking networks in Brian2: unsupervised "
            "(continual) digit learning. Results are xarray Datasets in netCDF."
        ),
        epilog=(
            "examples:\n"
            "  spikedyn run static-mnist --network {diehl-cook,asp,spikedyn} --neurons N \\\n"
            "      --train-samples K --test-samples M \\\n"
            "      --device {cpp_dense,cpp_standalone,runtime} --seed S [--data-dir DIR] \\\n"
            "      --out FILE.nc\n"
            "'spikedyn run static-mnist --help' lists every option.\n"
            "  spikedyn run dynamic-digits | continual-comparison | tune | model-search\n"
            "  spikedyn codegen --device {cpp_standalone,genn,cuda} --network NET \\\n"
            "      --neurons N --out DIR   (generated project, not compiled)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="run a protocol", description="Run a protocol.")
    protocols = run.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    _add_static_mnist(protocols)
    _add_dynamic_digits(protocols)
    _add_comparison(protocols)
    _add_model_search(protocols)
    _add_tune(protocols)
    _add_estimate(commands)
    _add_codegen(commands)
    add_data_parser(commands)
    _add_cache(commands)
    return parser


def _add_model_search(subparsers):
    parser = subparsers.add_parser(
        "model-search",
        help="most accurate network within a memory and energy budget (Dask)",
        description=(
            "Constrained model search: candidates over network variant, size and weight "
            "precision; analytical memory and energy per sample filter them; survivors are "
            "trained and tested on a short stream as tasks on Dask (a LocalCluster using "
            "every core, or --scheduler ADDRESS); the Pareto front over (accuracy, energy, "
            "memory) and the selected model are written as one Dataset over 'candidate' "
            "(netCDF) with a figure. Defaults: model_search.toml; docs/energy.md."
        ),
    )
    d = _defaults("model-search")

    def listed(key):
        return " ".join(map(str, d[key]))

    parser.add_argument("--config", metavar="FILE.toml",
                        help="TOML configuration to start from (default: "
                             "protocols/model_search.toml alone)")
    parser.add_argument("--variants", nargs="+", choices=SEARCH_VARIANTS,
                        help=f"network variants (default {listed('search.variants')})")
    parser.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N",
                        help=f"excitatory neurons of the candidates (default "
                             f"{listed('search.sizes')})")
    parser.add_argument("--weight-bits", type=_positive_int, nargs="+", metavar="B",
                        help=f"weight precisions of the candidates (default "
                             f"{listed('search.weight_bits')})")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="S",
                        help=f"seeds per candidate (default {listed('search.seeds')})")
    parser.add_argument("--max-memory-kb", type=float, metavar="M",
                        help="memory limit in kB (1 kB = 1000 bytes; 0: none; default "
                             f"{d['search.max_memory_kb']:g})")
    parser.add_argument("--max-energy", type=float, metavar="E",
                        help="energy limit in joules per sample (0: none; default "
                             f"{d['search.max_energy_joules_per_sample']:g})")
    parser.add_argument("--energy-constraint", choices=("train", "inference"),
                        help="phase the energy limit applies to (default "
                             f"{d['search.energy_constraint']})")
    parser.add_argument("--train-samples", type=_positive_int, metavar="K",
                        help=f"training digits of each candidate (default "
                             f"{d['stream.train_samples']})")
    parser.add_argument("--assignment-samples", type=int, metavar="A",
                        help="training digits that label the neurons (0: all; default "
                             f"{d['stream.assignment_samples']})")
    parser.add_argument("--test-samples", type=_positive_int, metavar="M",
                        help=f"evaluation digits of each candidate (default "
                             f"{d['stream.test_samples']})")
    _add_device_options(parser, d["device.name"])
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"directory with the MNIST IDX files (default: {DATA_DIR_DEFAULT})")
    parser.add_argument("--evaluation", choices=("validation", "test"),
                        help="split the candidates are selected on (default "
                             f"{d['stream.evaluation']})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="existing Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=_positive_int,
                        help="LocalCluster worker processes (default: one per core)")
    parser.add_argument("--overwrite", action="store_true", default=None,
                        help="replace a results file that exists (default: refuse)")
    parser.add_argument("--out", metavar="FILE.nc",
                        help=f"results file (netCDF; default {d['output.path']})")
    parser.set_defaults(handler=_run_model_search)


def _run_model_search(args):
    from spikedyn_brian.protocols import model_search

    plan = model_search.load_plan(args.config, option_overrides(args, MODEL_SEARCH_OPTIONS))
    dataset = model_search.run(plan)
    for name in dataset.candidate.values:
        row = dataset.sel(candidate=name)
        accuracy = (f"accuracy {float(row.accuracy):.3f}" if bool(row.trained)
                    else "not trained (outside the constraints)")
        print(f"{name:24s} {int(row.memory_bytes) / 1000:9.1f} kB  "
              f"train {float(row.train_energy_joules_per_sample) * 1e6:8.2f} µJ  "
              f"inference {float(row.inference_energy_joules_per_sample) * 1e6:8.2f} µJ  "
              f"{accuracy}{'  [Pareto]' if bool(row.pareto) else ''}")
    print(f"selected: {dataset.attrs['selected'] or 'none'} ({dataset.attrs['selection_rule']})")
    print(f"search took {dataset.attrs['search_seconds']:.0f} s on "
          f"{dataset.attrs['dask_workers']} Dask workers")
    print(f"results written to {plan.output.path}")
    return 0


def _add_tune(subparsers):
    d = _defaults("dynamic-digits")
    parser = subparsers.add_parser(
        "tune",
        help="equal-budget tuning of one variant on the validation split (Optuna on Dask)",
        description=(
            "Tunes one variant's documented search space with Optuna's TPE sampler: every "
            "trial is a dynamic-digits run that trains outside the fixed validation split and "
            "is evaluated on validation digits only; the objective is the mean of recent- and "
            "previous-task accuracy. Trials run as Dask tasks (a LocalCluster using every "
            "core, or --scheduler ADDRESS). Every trial is stored (OUT.db, OUT_trials/); the "
            "trial table goes to OUT; re-running the same command continues the study."
        ),
    )
    parser.add_argument("--variant", required=True, choices=TUNING_FAMILIES,
                        help="variant to tune (its search space: protocols/tuning.py)")
    parser.add_argument("--trials", type=_positive_int, required=True, metavar="T",
                        help="budget: trials run, the same for every compared variant")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="base dynamic-digits configuration (default: "
                             "protocols/dynamic_digits.toml alone)")
    parser.add_argument("--neurons", type=_positive_int, metavar="N",
                        help=f"excitatory neurons (default {d['network.n_neurons']})")
    parser.add_argument("--samples-per-task", type=_positive_int, metavar="K",
                        help=f"training digits per task (default {d['stream.samples_per_task']})")
    parser.add_argument("--validation-per-class", type=_positive_int, metavar="V",
                        help="validation digits per seen class after every task (default "
                             f"{d['stream.test_per_class']})")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="S",
                        help="stream seeds of every trial; its objective is their mean "
                             f"(default {' '.join(map(str, TRIAL_SEEDS))})")
    parser.add_argument("--sampler-seed", type=int, default=0, metavar="S",
                        help="seed of the TPE sampler (default 0)")
    _add_device_options(parser, d["device.name"])
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"directory with the MNIST IDX files (default: {DATA_DIR_DEFAULT})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="existing Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=_positive_int,
                        help="LocalCluster worker processes (default: one per core)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a file at --out that is not this study's trial table "
                             "(the table of the study being continued is always rewritten; "
                             "default: refuse)")
    parser.add_argument("--out", metavar="FILE.nc", required=True, help="trial table (netCDF)")
    parser.set_defaults(handler=_run_tune)


def _run_tune(args):
    from spikedyn_brian.protocols import tuning

    base = read_mapping(args.config, option_overrides(args, TUNE_OPTIONS))
    plan = tuning.TuningPlan(variant=args.variant, trials=args.trials, base=base,
                             output=args.out, scheduler=args.scheduler,
                             workers=args.workers or 0, sampler_seed=args.sampler_seed,
                             seeds=tuple(args.seeds or tuning.TRIAL_SEEDS),
                             overwrite=bool(args.overwrite))
    plan.experiment({})  # validate the base configuration before anything runs
    dataset = tuning.run(plan, progress=True)
    best = dataset.attrs["best_trial"]
    print(f"{args.variant}: {int(dataset.sizes['trial'])} trials; best trial {best}, "
          f"objective {float(dataset.objective.sel(trial=best)) if best >= 0 else float('nan'):.4f}")
    print(f"best parameters: {dataset.attrs['best_params']}")
    print(f"trial table written to {args.out} (study {plan.study_path})")
    return 0


def _add_cache(commands):
    parser = commands.add_parser(
        "cache", help="show or clean the cache of compiled builds",
        description="Compiled builds are cached per configuration under $SPIKEDYN_BUILD_DIR "
                    "or ~/.cache/spikedyn_brian/builds (an unchanged configuration is not "
                    "compiled again). A build a running process holds is never removed.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="list the cached builds, their size and last use")
    clean = actions.add_parser("clean", help="remove cached builds")
    clean.add_argument("--older-than", type=float, default=0.0, metavar="DAYS",
                       help="only builds not used for DAYS days (default 0: all)")
    for action in (info, clean):
        action.add_argument("--build-dir", metavar="DIR",
                            help="build root (default: $SPIKEDYN_BUILD_DIR or the user cache)")
    parser.set_defaults(handler=_run_cache)


def _run_cache(args):
    from spikedyn_brian.cache import cache_info, clean_cache, default_build_root

    root = args.build_dir or default_build_root()
    if args.action == "info":
        entries = cache_info(root)
        for entry in entries:
            print(f"{entry.bytes / 1e6:9.1f} MB  {entry.age_days:7.1f} days  {entry.path.name}")
        total = sum(entry.bytes for entry in entries)
        print(f"{len(entries)} builds, {total / 1e6:.1f} MB in {root}")
        return 0
    try:
        removed, in_use = clean_cache(root, args.older_than)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    print(f"removed {len(removed)} builds ({sum(e.bytes for e in removed) / 1e6:.1f} MB) "
          f"from {root}" + (f"; kept {len(in_use)} in use" if in_use else ""))
    return 0


def _add_estimate(commands):
    parser = commands.add_parser(
        "estimate",
        help="memory and energy per training and inference sample, before simulating",
        description=(
            "Analytical memory (bytes) and energy per training and per inference sample of a "
            "network, from the memory model and the operation counts at calibrated activity "
            "rates times a per-operation energy table (default: 45 nm CMOS, Horowitz "
            "ISSCC 2014). See docs/energy.md."
        ),
    )
    parser.add_argument("--network", choices=NETWORK_VARIANTS, default="diehl-cook",
                        help="network variant (default diehl-cook; its shipped tuned set, or "
                             "its published constants)")
    parser.add_argument("--neurons", type=_positive_int, default=400, metavar="N",
                        help="excitatory neurons (default 400)")
    parser.add_argument("--weight-bits", type=_positive_int, default=32, metavar="B",
                        help="bits per input weight (default 32)")
    parser.add_argument("--state-bits", type=_positive_int, default=32, metavar="B",
                        help="bits per neuron state variable (default 32)")
    parser.add_argument("--energy-table", metavar="FILE.toml",
                        help="energy per primitive operation of a platform (pJ; default: "
                             "45 nm CMOS, Horowitz ISSCC 2014)")
    parser.add_argument("--breakdown", action="store_true",
                        help="print memory and energy per component and operation "
                             "(default: totals only)")
    parser.set_defaults(handler=_run_estimate)


def _run_estimate(args):
    from spikedyn_brian.analysis import energy

    table = energy.HOROWITZ_45NM
    if args.energy_table:
        try:
            table = energy.EnergyTable.from_toml(args.energy_table)
        except (OSError, ValueError) as error:
            raise ConfigError(str(error)) from None
    parameters = network_from_mapping({"variant": args.network, "n_neurons": args.neurons})
    memory, train, inference = energy.analytical_profile(
        parameters, weight_bits=args.weight_bits, table=table, state_bits=args.state_bits)
    print(f"network {args.network}, N = {args.neurons}, {args.weight_bits}-bit weights, "
          f"{args.state_bits}-bit state")
    print(f"memory: {memory.total_bytes} bytes ({memory.total_bytes / 1000:.1f} kB)")
    if args.breakdown:
        for component, nbytes in memory.by_component().items():
            print(f"  {component:24s} {nbytes:12d} bytes")
    for label, estimate in (("training", train), ("inference", inference)):
        print(f"energy per {label} sample: {estimate.joules:.4e} J "
              f"({estimate.joules * 1e6:.2f} µJ)")
        if args.breakdown:
            for name, joules in estimate.joules_by_operation.items():
                if joules:
                    print(f"  {name:24s} {estimate.counts.per_sample[name]:14.1f} ops "
                          f"{joules * 1e6:10.3f} µJ")
    print(f"energy table: {table.name}; operation counts from {train.counts.source}")
    return 0


def _expected_errors():
    """Errors that are the user's to fix: shown as one line, exit status 2."""
    errors = [ConfigError, MNISTFileError, DeviceError]
    if "spikedyn_brian.state" in sys.modules:
        from spikedyn_brian.state import StateError

        errors.append(StateError)
    if "spikedyn_brian.devices.backends" in sys.modules:  # where Brian2 ran, its errors
        from spikedyn_brian.devices.backends import RunawayError
        from spikedyn_brian.devices.dense import DenseDeviceError

        errors += [RunawayError, DenseDeviceError]
    return tuple(errors)


def main(argv=None):
    """Entry point of the ``spikedyn`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        where = f" (the checkpoint next to {out} keeps every finished chunk)" if out else ""
        print(f"\nspikedyn: interrupted; run the same command again to resume{where}",
              file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, _expected_errors()):
            print(f"spikedyn: error: {error}", file=sys.stderr)
            return 2
        # Not Brian2's "please report this to Brian 2" banner for our errors.
        sys.excepthook = sys.__excepthook__
        raise
    finally:
        if "brian2" in sys.modules:
            sys.excepthook = sys.__excepthook__


if __name__ == "__main__":
    sys.exit(main())

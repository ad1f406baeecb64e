"""The ``spikedyn`` command: a thin layer over the protocols.

Examples
--------
Train a 400-neuron Diehl & Cook network on the embedded digits and test it::

    spikedyn run static-mnist --network diehl-cook --neurons 400 \\
        --train-samples 4000 --test-samples 1000 --device cpp_standalone \\
        --seed 0 --out results/dc400.nc

Start from a TOML file and override some keys::

    spikedyn run static-mnist --config my.toml --epochs 3 --out results/run.nc
"""

import argparse
import sys

from spikedyn_brian.config import ConfigError, load_experiment
from spikedyn_brian.data import MNIST_DIRECTORY_ENVIRONMENT_VARIABLE, MNISTFileError
from spikedyn_brian.engine import DEVICES
from spikedyn_brian.models.parameters import NETWORK_VARIANTS

__all__ = ["main", "build_parser"]


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_static_mnist(subparsers):
    from spikedyn_brian.protocols import static_mnist

    parser = subparsers.add_parser(
        "static-mnist",
        help="train without labels on MNIST digits, label neurons, test",
        description=(
            "Static MNIST protocol: unsupervised training on a digit stream, neuron "
            "labelling with learning off, test with the all-activity and "
            "proportion-weighting rules. Writes one xarray Dataset (netCDF). "
            f"Defaults: {static_mnist.DEFAULT_CONFIG.name} (embedded 4,000/1,000 split)."
        ),
    )
    parser.add_argument("--config", metavar="FILE.toml", help="TOML configuration to start from")
    parser.add_argument("--network", choices=NETWORK_VARIANTS, help="network variant")
    parser.add_argument("--neurons", type=_positive_int, metavar="N", help="excitatory neurons")
    parser.add_argument("--train-samples", type=_positive_int, metavar="K",
                        help="training digits per epoch")
    parser.add_argument("--epochs", type=_positive_int, help="passes over the training digits")
    parser.add_argument("--test-samples", type=_positive_int, metavar="M", help="test digits")
    parser.add_argument("--assignment-samples", type=int, metavar="A",
                        help="training digits used to label neurons (0: all)")
    parser.add_argument("--device", choices=DEVICES, help="simulation device")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of data order, weights, inputs")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=(
            "directory with the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
            f"default: ${MNIST_DIRECTORY_ENVIRONMENT_VARIABLE} or the embedded 5,000 digits"
        ),
    )
    parser.add_argument("--build-dir", metavar="DIR", help="root of compiled builds")
    parser.add_argument("--evaluate-each-epoch", action="store_true", default=None,
                        help="label and test after every epoch")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--out", metavar="FILE.nc", help="results file (netCDF)")
    parser.set_defaults(handler=_run_static_mnist)


def _static_mnist_overrides(args):
    network, stream, device, output = {}, {}, {}, {}
    for target, key, value in (
        (network, "variant", args.network),
        (network, "n_neurons", args.neurons),
        (stream, "train_samples", args.train_samples),
        (stream, "epochs", args.epochs),
        (stream, "test_samples", args.test_samples),
        (stream, "assignment_samples", args.assignment_samples),
        (stream, "seed", args.seed),
        (stream, "data_dir", args.data_dir),
        (stream, "evaluate_each_epoch", args.evaluate_each_epoch),
        (device, "name", args.device),
        (device, "build_dir", args.build_dir),
        (output, "path", args.out),
    ):
        if value is not None:
            target[key] = value
    if args.no_progress:
        output["progress"] = False
    return {"network": network, "stream": stream, "device": device, "output": output}


def _run_static_mnist(args):
    from spikedyn_brian.protocols import static_mnist

    experiment = load_experiment(
        args.config or static_mnist.DEFAULT_CONFIG, _static_mnist_overrides(args)
    )
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


def build_parser():
    """The argument parser of ``spikedyn``."""
    parser = argparse.ArgumentParser(
        prog="spikedyn",
        description=(
            "SpikeDyn and Diehl & Cook spiking networks in Brian2: unsupervised "
            "(continual) digit learning. Results are xarray Datasets in netCDF."
        ),
        epilog=(
            "example:\n"
            "  spikedyn run static-mnist --network {diehl-cook,spikedyn} --neurons N \\\n"
            "      --train-samples K --test-samples M --device {runtime,cpp_standalone} \\\n"
            "      --seed S [--data-dir DIR] --out FILE.nc\n"
            "'spikedyn run static-mnist --help' lists every option."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="run a protocol", description="Run a protocol.")
    protocols = run.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    _add_static_mnist(protocols)
    return parser


def main(argv=None):
    """Entry point of the ``spikedyn`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, MNISTFileError) as error:
        print(f"spikedyn: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

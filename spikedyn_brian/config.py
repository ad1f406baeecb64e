"""Experiment configuration: validated dataclasses read from TOML.

An `Experiment` groups what one protocol run needs: the network
(:class:`~spikedyn_brian.models.parameters.NetworkParameters`), the stream,
the device and the output. Every key of a TOML file is checked: an unknown
key, or a value of the wrong type, raises `ConfigError` naming the key.
"""

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from spikedyn_brian.models.parameters import NetworkParameters, as_dict

__all__ = [
    "ConfigError",
    "StreamConfig",
    "DeviceConfig",
    "OutputConfig",
    "Experiment",
    "load_experiment",
    "experiment_from_mapping",
    "read_mapping",
]


#: Values of ``stream.evaluation``.
EVALUATION_SPLITS = ("test", "validation")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


@dataclass
class StreamConfig:
    """Which digits are shown, how often, and in which order."""

    #: Digit classes used (train, labelling and test); default all ten.
    classes: list[int] = field(default_factory=lambda: list(range(10)))
    #: Training digits taken (seeded shuffle) from the training split.
    train_samples: int = 4000
    #: Passes over the training digits (each pass reshuffled).
    epochs: int = 1
    #: Test digits taken (in order) from the test split.
    test_samples: int = 1000
    #: Training digits presented with learning off to assign neuron labels
    #: (0: all training digits).
    assignment_samples: int = 0
    #: Directory with the four MNIST IDX files; empty: ``$SPIKEDYN_MNIST_DIR``
    #: or, if unset, the embedded 5,000 digits.
    data_dir: str = ""
    seed: int = 0
    #: Label, test and record the accuracy after every epoch (costs one
    #: labelling and one test pass per epoch).
    evaluate_each_epoch: bool = False
    #: Rule of the scalar ``accuracy`` in the results (both are always stored):
    #: 'all_activity' (Diehl & Cook) or 'proportion_weighting' (Hazan et al.).
    prediction_rule: str = "all_activity"
    #: Evaluation split: 'test' (final reports; training digits from the whole
    #: training split) or 'validation' (tuning; training digits from outside
    #: the fixed validation split, see ``spikedyn_brian.data``).
    evaluation: str = "test"


@dataclass
class ContinualStreamConfig:
    """A class-incremental digit stream (the ``dynamic-digits`` protocol)."""

    #: Digit classes in the order they arrive.
    task_order: list[int] = field(default_factory=lambda: list(range(10)))
    #: Consecutive classes of ``task_order`` that form one task (1: one digit
    #: class per task; 2: pairs).
    classes_per_task: int = 1
    #: Training digits per task (equal for every task; taken in a seeded
    #: order from the training digits of the task's classes).
    samples_per_task: int = 400
    #: Labelled training digits per class seen so far, presented with learning
    #: off after each task to assign neuron labels (the only labels used).
    probe_per_class: int = 20
    #: Test digits per class (every class is tested after every task).
    test_per_class: int = 50
    #: Non-dynamic control: the same training digits, shuffled across all
    #: tasks, in segments of ``samples_per_task``.
    control: bool = False
    data_dir: str = ""
    seed: int = 0
    #: Rule of the accuracy matrix: 'all_activity' or 'proportion_weighting'.
    prediction_rule: str = "all_activity"
    #: Evaluation split: 'test' (final reports) or 'validation' (tuning; the
    #: training digits then come from outside the fixed validation split).
    evaluation: str = "test"


@dataclass
class DeviceConfig:
    """Where and how the network is simulated."""

    name: str = "cpp_standalone"
    #: Root of the compiled builds (empty: ``$SPIKEDYN_BUILD_DIR`` or the user cache).
    build_dir: str = ""
    #: Most samples one compiled run presents (checkpoint granularity).
    chunk_samples: int = 1000
    #: OpenMP threads of the compiled program (0: none).
    threads: int = 0


@dataclass
class OutputConfig:
    """Where results go."""

    path: str = "results/static_mnist.nc"
    #: Keep a checkpoint next to the output and resume from it.
    checkpoint: bool = True
    #: Show progress bars.
    progress: bool = True


@dataclass
class Experiment:
    """One protocol run: network, stream, device and output."""

    network: NetworkParameters = field(default_factory=NetworkParameters)
    stream: StreamConfig = field(default_factory=StreamConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self):
        """Nested plain dict (TOML/JSON-able)."""
        return as_dict(self)

    def to_json(self):
        """The whole configuration as a JSON string (stored in results attrs)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _type_name(kind):
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        kind, str(kind)
    )


def _convert(value, kind, key):
    if typing.get_origin(kind) is list:
        (item_kind,) = typing.get_args(kind)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"key '{key}' must be a list of {_type_name(item_kind)} values, got {value!r}"
            )
        return [_convert(item, item_kind, f"{key}[{position}]") for position, item in enumerate(value)]
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above are used
        return value
    raise ConfigError(f"key '{key}' must be {_type_name(kind)}, got {value!r}")


def _build(cls, mapping, prefix):
    if not isinstance(mapping, dict):
        raise ConfigError(f"key '{prefix}' must be a table of keys, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in mapping:
        if key not in known:
            where = f"'{prefix}.{key}'" if prefix else f"'{key}'"
            raise ConfigError(
                f"unknown configuration key {where}; known keys here: "
                f"{', '.join(sorted(known))}"
            )
    values = {}
    for name, value in mapping.items():
        key = f"{prefix}.{name}" if prefix else name
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, value, key)
        else:
            values[name] = _convert(value, kind, key)
    if cls is NetworkParameters:
        _check_network_keys(values, prefix)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(f"in '{prefix or 'configuration'}': {error}") from None


def _check_network_keys(mapping, prefix):
    from spikedyn_brian.models.parameters import NETWORK_VARIANTS

    variant = mapping.get("variant", NetworkParameters.variant)
    if variant not in NETWORK_VARIANTS:
        raise ConfigError(
            f"key '{prefix}.variant' is {variant!r}; choose one of {', '.join(NETWORK_VARIANTS)}"
        )
    n_neurons = mapping.get("n_neurons", NetworkParameters.n_neurons)
    if isinstance(n_neurons, bool) or not isinstance(n_neurons, int) or n_neurons < 1:
        raise ConfigError(f"key '{prefix}.n_neurons' must be a positive integer, got {n_neurons!r}")


def _validate(experiment):
    stream = experiment.stream
    for key in ("train_samples", "test_samples", "epochs"):
        if getattr(stream, key) < 1:
            raise ConfigError(f"key 'stream.{key}' must be at least 1, got {getattr(stream, key)}")
    if not stream.classes or any(c < 0 or c > 9 for c in stream.classes):
        raise ConfigError(
            f"key 'stream.classes' must list digit classes 0..9, got {stream.classes!r}"
        )
    if len(set(stream.classes)) != len(stream.classes):
        raise ConfigError(f"key 'stream.classes' lists a class twice: {stream.classes!r}")
    if stream.seed < 0:
        raise ConfigError(f"key 'stream.seed' must be >= 0, got {stream.seed}")
    if stream.assignment_samples < 0:
        raise ConfigError("key 'stream.assignment_samples' must be >= 0 (0 means all)")
    _validate_common(experiment)
    return experiment


def _validate_common(experiment):
    """Checks shared by every protocol's experiment."""
    stream = experiment.stream
    from spikedyn_brian.analysis.labelling import PREDICTION_RULES
    from spikedyn_brian.engine import DEVICES

    if stream.evaluation not in EVALUATION_SPLITS:
        raise ConfigError(
            f"key 'stream.evaluation' is {stream.evaluation!r}; choose one of "
            f"{', '.join(EVALUATION_SPLITS)}"
        )
    if stream.prediction_rule not in PREDICTION_RULES:
        raise ConfigError(
            f"key 'stream.prediction_rule' is {stream.prediction_rule!r}; choose one of "
            f"{', '.join(PREDICTION_RULES)}"
        )

    if experiment.device.name not in DEVICES:
        raise ConfigError(
            f"key 'device.name' is {experiment.device.name!r}; choose one of {', '.join(DEVICES)}"
        )
    if experiment.device.chunk_samples < 1:
        raise ConfigError("key 'device.chunk_samples' must be at least 1")
    network = experiment.network
    if network.inputs.maximum_intensity < network.inputs.start_intensity:
        raise ConfigError(
            "key 'network.inputs.maximum_intensity' must be >= 'network.inputs.start_intensity'"
        )
    if network.n_inputs != 784:
        raise ConfigError("key 'network.n_inputs' must be 784 (28 × 28 MNIST pixels)")
    return experiment


@dataclass
class ContinualExperiment:
    """One continual-learning run: network, class-incremental stream, device, output."""

    network: NetworkParameters = field(default_factory=NetworkParameters)
    stream: ContinualStreamConfig = field(default_factory=ContinualStreamConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(path="results/dynamic_digits.nc"))

    to_dict = Experiment.to_dict
    to_json = Experiment.to_json


def _validate_continual(experiment):
    stream = experiment.stream
    order = stream.task_order
    if not order or any(c < 0 or c > 9 for c in order) or len(set(order)) != len(order):
        raise ConfigError(
            f"key 'stream.task_order' must list distinct digit classes 0..9, got {order!r}"
        )
    if stream.classes_per_task < 1 or len(order) % stream.classes_per_task:
        raise ConfigError(
            f"key 'stream.classes_per_task' ({stream.classes_per_task}) must divide the "
            f"number of classes in 'stream.task_order' ({len(order)})"
        )
    for key in ("samples_per_task", "probe_per_class", "test_per_class"):
        if getattr(stream, key) < 1:
            raise ConfigError(f"key 'stream.{key}' must be at least 1, got {getattr(stream, key)}")
    if stream.seed < 0:
        raise ConfigError(f"key 'stream.seed' must be >= 0, got {stream.seed}")
    _validate_common(experiment)
    return experiment


def experiment_from_mapping(mapping, experiment_class=None):
    """Build and validate an experiment from a nested mapping (parsed TOML).

    ``experiment_class`` is `Experiment` (static protocol, default) or
    `ContinualExperiment`.
    """
    experiment_class = experiment_class or Experiment
    experiment = _build(experiment_class, mapping, "")
    if experiment_class is ContinualExperiment:
        return _validate_continual(experiment)
    return _validate(experiment)


def load_experiment(path=None, overrides=None, experiment_class=None):
    """Read a TOML configuration file, apply overrides, validate.

    Parameters
    ----------
    path : str or Path, optional
        TOML file; None starts from the defaults.
    overrides : dict, optional
        Nested mapping merged over the file's content (e.g. from CLI options).
    """
    return experiment_from_mapping(read_mapping(path, overrides), experiment_class)


def read_mapping(path=None, overrides=None):
    """The nested mapping of a TOML file (empty for None) with ``overrides`` merged over it.

    Raises
    ------
    ConfigError
        If the file does not exist or is not valid TOML.
    """
    mapping = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"configuration file '{path}' does not exist")
        try:
            mapping = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"configuration file '{path}' is not valid TOML: {error}") from None
    if overrides:
        mapping = merge(mapping, overrides)
    return mapping


def merge(base, overrides):
    """Recursively merge ``overrides`` into a copy of ``base``."""
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result

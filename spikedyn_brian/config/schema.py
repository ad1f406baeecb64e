"""What a configuration is: the dataclasses of an experiment, and a mapping turned into them.

`from_mapping` builds a dataclass from a nested mapping (parsed TOML): an
unknown key or a value of the wrong type raises `ConfigError` naming the key.
The values' ranges are `spikedyn_brian.config.bounds`' concern, the paths'
`spikedyn_brian.config.files`'.
"""

import dataclasses
import json
import typing
from dataclasses import dataclass, field

from spikedyn_brian.devices.registry import DEFAULT_DEVICE
from spikedyn_brian.errors import ConfigError, show
from spikedyn_brian.models.parameters import (
    NETWORK_VARIANTS,
    TIMER_READINGS,
    NetworkParameters,
    as_dict,
)

__all__ = ["EVALUATION_SPLITS", "StreamConfig", "ContinualStreamConfig", "DeviceConfig",
           "OutputConfig", "Experiment", "ContinualExperiment", "task_sample_counts",
           "from_mapping"]


#: Values of ``stream.evaluation``.
EVALUATION_SPLITS = ("test", "validation")


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
    #: Training digits per task (taken in a seeded order from the training
    #: digits of the task's classes).
    samples_per_task: int = 400
    #: One count per task instead (e.g. ASP's protocol note: more samples of
    #: earlier classes); empty: every task gets ``samples_per_task``.
    samples_by_task: list[int] = field(default_factory=list)
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
    #: Stop the run (an error) when a chunk's digits needed more presentations
    #: each on average: the network has fallen silent. 0: never (the tuner
    #: sets 4).
    max_presentations_per_sample: float = 0.0



@dataclass
class DeviceConfig:
    """Where and how the network is simulated."""

    #: One of `spikedyn_brian.devices.DEVICES`; a network the device cannot run
    #: runs on the device's fallback (``cpp_dense`` → ``cpp_standalone`` for
    #: input delays), with a one-line message.
    name: str = DEFAULT_DEVICE
    #: Root of the compiled builds (empty: ``$SPIKEDYN_BUILD_DIR`` or the user cache).
    build_dir: str = ""
    #: Most samples one compiled run presents (checkpoint granularity).
    chunk_samples: int = 1000
    #: OpenMP threads of the compiled program (0: none).
    threads: int = 0
    #: The device's own options (``[device.options]``: the fields of its options
    #: dataclass, `spikedyn_brian.devices.registry`), e.g. ``gpu_id`` of ``cuda``.
    options: dict = field(default_factory=dict)


@dataclass
class OutputConfig:
    """Where results go."""

    path: str = "results/static_mnist.nc"
    #: Keep a checkpoint next to the output and resume from it.
    checkpoint: bool = True
    #: Show progress bars.
    progress: bool = True
    #: Replace a results file that exists (otherwise a run refuses to start).
    overwrite: bool = False
    #: Discard this output's checkpoint (damaged, or not fitting the run) and
    #: start afresh instead of resuming (``--restart``).
    restart: bool = False



@dataclass
class Experiment:
    """One protocol run: network, stream, device and output."""

    network: NetworkParameters = field(default_factory=NetworkParameters)
    stream: StreamConfig = field(default_factory=StreamConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self):
        """Nested plain dict (TOML/JSON-able).

        Empty device options are left out: a configuration without any is
        written (and compared with stored results) as before they existed.
        """
        data = as_dict(self)
        if not data["device"]["options"]:
            del data["device"]["options"]
        return data

    def to_json(self):
        """The whole configuration as a JSON string (stored in results attrs)."""
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass
class ContinualExperiment:
    """One continual-learning run: network, class-incremental stream, device, output."""

    network: NetworkParameters = field(default_factory=NetworkParameters)
    stream: ContinualStreamConfig = field(default_factory=ContinualStreamConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(path="results/dynamic_digits.nc"))

    to_dict = Experiment.to_dict
    to_json = Experiment.to_json


def task_sample_counts(stream):
    """Training digits of each task of a `ContinualStreamConfig`."""
    tasks = len(stream.task_order) // stream.classes_per_task
    return list(stream.samples_by_task) or [stream.samples_per_task] * tasks


def _type_name(kind):
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        kind, str(kind)
    )


def _convert(value, kind, key):
    if typing.get_origin(kind) is list:
        (item_kind,) = typing.get_args(kind)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"key '{key}' must be a list of {_type_name(item_kind)} values, got {show(value)}"
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
            try:
                return float(value)
            except OverflowError:
                raise ConfigError(
                    f"key '{key}' is an integer too large for a number: {show(value)}"
                ) from None
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(f"key '{key}' must be a table of keys, got {show(value)}")
    else:  # pragma: no cover - only the types above are used
        return value
    raise ConfigError(f"key '{key}' must be {_type_name(kind)}, got {show(value)}")


def from_mapping(cls, mapping, prefix=""):
    """An instance of dataclass ``cls`` from a nested mapping: every key known, every type right.

    ``prefix`` is the mapping's key in the whole configuration (``'device.options'``),
    for the messages. Nested dataclass fields are built from nested tables;
    a ``ValueError`` of the dataclass itself becomes a `ConfigError` naming
    ``prefix``.

    Raises
    ------
    ConfigError
        Naming an unknown key (with the known ones) or a value of the wrong type.
    """
    if not isinstance(mapping, dict):
        if not prefix:
            raise ConfigError(
                f"the configuration must be a table of keys, got {show(mapping)}"
            )
        raise ConfigError(f"key '{prefix}' must be a table of keys, got {show(mapping)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in mapping:
        if key not in known:
            where = f"'{prefix}.{key}'" if prefix else f"'{key}'"
            if not isinstance(key, str):
                where = f"{show(key)} in '{prefix or 'the configuration'}'"
            raise ConfigError(
                f"unknown configuration key {where}; known keys here: "
                f"{', '.join(sorted(known))}"
            )
    values = {}
    for name, value in mapping.items():
        key = f"{prefix}.{name}" if prefix else name
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = from_mapping(kind, value, key)
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
    variant = mapping.get("variant", NetworkParameters.variant)
    if variant not in NETWORK_VARIANTS:
        raise ConfigError(
            f"key '{prefix}.variant' is {variant!r}; choose one of {', '.join(NETWORK_VARIANTS)}"
        )
    n_neurons = mapping.get("n_neurons", NetworkParameters.n_neurons)
    if isinstance(n_neurons, bool) or not isinstance(n_neurons, int) or n_neurons < 1:
        raise ConfigError(
            f"key '{prefix}.n_neurons' must be a positive integer, got {show(n_neurons)}"
        )
    excitatory = mapping.get("excitatory")
    if excitatory is not None and excitatory.timer not in TIMER_READINGS:
        raise ConfigError(
            f"key '{prefix}.excitatory.timer' is {excitatory.timer!r}; choose one of "
            f"{', '.join(TIMER_READINGS)}"
        )


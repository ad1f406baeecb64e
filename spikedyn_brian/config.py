"""Experiment configuration: validated dataclasses read from TOML.

An `Experiment` groups what one protocol run needs: the network
(:class:`~spikedyn_brian.models.parameters.NetworkParameters`), the stream,
the device and the output. Every key of a TOML file is checked: an unknown
key, a value of the wrong type, or a value outside its range
(`NETWORK_BOUNDS` for the network, `STREAM_LIMITS` for the stream and the
device) raises `ConfigError` naming the key, the value, the allowed range and
the fix. A data directory, build directory, output path or checkpoint that
cannot be used is reported the same way, at validation time: before anything
is built or simulated.
"""

import dataclasses
import json
import math
import os
import sys
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from spikedyn_brian.models.parameters import TIMER_READINGS, NetworkParameters, as_dict

__all__ = [
    "ConfigError",
    "StreamConfig",
    "DeviceConfig",
    "OutputConfig",
    "Experiment",
    "load_experiment",
    "experiment_from_mapping",
    "read_mapping",
    "Bound",
    "NETWORK_BOUNDS",
    "INTEGRATION_METHODS",
    "STREAM_LIMITS",
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
                f"key '{key}' must be a list of {_type_name(item_kind)} values, got {_show(value)}"
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
                    f"key '{key}' is an integer too large for a number: {_show(value)}"
                ) from None
    elif kind is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above are used
        return value
    raise ConfigError(f"key '{key}' must be {_type_name(kind)}, got {_show(value)}")


def _build(cls, mapping, prefix):
    if not isinstance(mapping, dict):
        if not prefix:
            raise ConfigError(
                f"the configuration must be a table of keys, got {_show(mapping)}"
            )
        raise ConfigError(f"key '{prefix}' must be a table of keys, got {_show(mapping)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in mapping:
        if key not in known:
            where = f"'{prefix}.{key}'" if prefix else f"'{key}'"
            if not isinstance(key, str):
                where = f"{_show(key)} in '{prefix or 'the configuration'}'"
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
        raise ConfigError(
            f"key '{prefix}.n_neurons' must be a positive integer, got {_show(n_neurons)}"
        )
    excitatory = mapping.get("excitatory")
    if excitatory is not None and excitatory.timer not in TIMER_READINGS:
        raise ConfigError(
            f"key '{prefix}.excitatory.timer' is {excitatory.timer!r}; choose one of "
            f"{', '.join(TIMER_READINGS)}"
        )


# --------------------------------------------------------------------------
# Ranges of the network parameters
# --------------------------------------------------------------------------

#: Brian2 integration methods accepted for ``network.integration_method``.
INTEGRATION_METHODS = ("euler", "exponential_euler", "rk2", "rk4")

#: Largest value of an ``int`` or ``float`` that is a time, a count of
#: presentations or similar "long" quantity (1e12 ms is 31 years).
_LONG = 1e12


@dataclass(frozen=True)
class Bound:
    """Allowed values of one numeric network parameter.

    A value is allowed if it is finite and ``low <= value <= high`` (``low <
    value`` where `low_open`). A `time_constant` must moreover be at least one
    time step, ``network.inputs.dt_ms``.
    """

    low: float
    high: float
    meaning: str
    unit: str = ""
    low_open: bool = False
    time_constant: bool = False
    #: Why the range is what it is (part of the error message).
    reason: str = ""
    #: An integer field (the range is then said "an integer in ...").
    integer: bool = False

    def allows(self, value):
        """Whether ``value`` lies in the range (NaN and infinities never do)."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if value < self.low or value > self.high:
            return False
        return not (self.low_open and value == self.low)

    def describe(self):
        """The range in words, e.g. ``'a finite number in (0, 1e+12] ms'``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.low == self.high:
            return f"{_number(self.low)}{unit}"
        opening = "(" if self.low_open else "["
        kind = "an integer" if self.integer else "a finite number"
        text = f"{kind} in {opening}{_number(self.low)}, {_number(self.high)}]{unit}"
        if self.time_constant:
            text += " and at least one time step (network.inputs.dt_ms)"
        return text


def _number(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:g}"


def _time_constant(meaning):
    return Bound(0.0, _LONG, meaning, "ms", low_open=True, time_constant=True,
                 reason="a time constant divides the state: 0 or less is a division by zero "
                        "or a runaway in the generated code, less than a time step is unstable")


def _voltage(meaning):
    return Bound(-1000.0, 1000.0, meaning, "mV",
                 reason="potentials of a neuron model lie within ±1000 mV")


def _nonnegative(meaning, high, unit="", reason=""):
    return Bound(0.0, high, meaning, unit, reason=reason)


def _positive(meaning, high, unit="", reason=""):
    return Bound(0.0, high, meaning, unit, low_open=True, reason=reason)


def _fraction(meaning):
    return Bound(0.0, 1.0, meaning, reason="a fraction per sample or per spike")


#: Constraints on every numeric field of `NetworkParameters`, by key below
#: ``network.`` (`_check_network` applies them, then the relations between
#: fields listed in its docstring). The upper limits are far beyond any
#: useful value; they catch typing slips (1e300) that would overflow the
#: generated code or run for ever.
#:
#: ======================================== ======================================
#: keys                                     allowed values
#: ======================================== ======================================
#: n_neurons                                integer in [1, 100000]
#: n_inputs                                 784 (28 × 28 pixels)
#: \*.tau_\*_ms (every time constant)       (0, 1e12] ms and >= inputs.dt_ms
#: \*.v_\*_mV, \*.e_\*_mV, theta_offset_mV, [-1000, 1000] mV
#: theta_initial_mV, spikedyn.theta_max_mV
#: \*.refractory_ms                         [0, 1e5] ms and < inputs.presentation_ms
#: excitatory.theta_plus_mV                 [0, 1000] mV
#: excitatory.timer_rate                    (0, 1000] (s per s)
#: excitatory.timer_threshold_ms            [0, 1e5] ms
#: plasticity.nu_pre, nu_post               [0, 100]
#: plasticity.w_max                         (0, 1000]
#: plasticity.initial_weight_scale          (0, 1000]
#: plasticity.normalisation_total           (0, 1e6]
#: plasticity.max_input_delay_ms            [0, 1000] ms
#: plasticity.w_exc_to_inh, w_inh_to_exc    [0, 1e4]
#: inputs.rate_divisor                      (0, 1e6]
#: inputs.start_intensity                   (0, 1000]
#: inputs.maximum_intensity                 (0, 1000] and >= start_intensity
#: inputs.minimum_spikes                    integer in [0, 1e9]
#: inputs.presentation_ms, rest_ms          (0, 1e5] ms
#: inputs.dt_ms                             [0.001, 1] ms and < presentation_ms
#: inputs.runaway_spikes_per_neuron         (0, 1e6]
#: spikedyn.w_lateral                       [0, 1e4]
#: spikedyn.consolidation_spikes            (0, 1e9]
#: spikedyn.activity_tau_presentations      (0, 1e12]
#: spikedyn.theta_rate_mV                   [0, 1000] mV
#: spikedyn.target_response                 (0, 1e6]
#: spikedyn.theta_max_mV                    > excitatory.theta_initial_mV
#: spikedyn.weight_decay_per_sample         [0, 1] and < plasticity.w_max
#: spikedyn.x_target                        [0, 1]
#: asp.leak_per_sample, significance_rate   [0, 1]
#: asp.baseline_weight                      [0, 1000] and <= plasticity.w_max
#: asp.learning_rate_tau_presentations      (0, 1e12]
#: asp.frequency_gain                       [0, 1e6]
#: asp.frequency_tau_presentations          [1, 1e12]
#: ======================================== ======================================
#:
#: NaN and ±inf are never allowed. Strings: ``variant`` in `NETWORK_VARIANTS`,
#: ``excitatory.timer`` in `TIMER_READINGS`, ``integration_method`` in
#: `INTEGRATION_METHODS`.
NETWORK_BOUNDS = {
    "n_neurons": Bound(1, 100_000, "the number of excitatory neurons", integer=True,
                       reason="each neuron costs 784 input synapses; beyond 100,000 the "
                              "weights alone need more than 600 MB"),
    "n_inputs": Bound(784, 784, "the number of input neurons, one per pixel of a "
                                "28 × 28 MNIST digit", integer=True),
    # Excitatory neurons.
    "excitatory.v_rest_mV": _voltage("the resting potential of the excitatory neurons"),
    "excitatory.v_reset_mV": _voltage("the reset potential of the excitatory neurons"),
    "excitatory.v_threshold_mV": _voltage("the threshold of the excitatory neurons "
                                          "(spike when v > v_threshold - theta_offset + theta)"),
    "excitatory.tau_membrane_ms": _time_constant("the membrane time constant of the "
                                                 "excitatory neurons"),
    "excitatory.tau_ge_ms": _time_constant("the decay time constant of the excitatory "
                                           "neurons' excitatory conductance"),
    "excitatory.tau_gi_ms": _time_constant("the decay time constant of the excitatory "
                                           "neurons' inhibitory conductance"),
    "excitatory.e_excitatory_mV": _voltage("the excitatory reversal potential of the "
                                           "excitatory neurons"),
    "excitatory.e_inhibitory_mV": _voltage("the inhibitory reversal potential of the "
                                           "excitatory neurons"),
    "excitatory.refractory_ms": _nonnegative("the refractory period of the excitatory "
                                             "neurons", 1e5, "ms"),
    "excitatory.theta_plus_mV": _nonnegative("the threshold increase per spike (theta)",
                                             1000.0, "mV"),
    "excitatory.tau_theta_ms": _time_constant("the decay time constant of the adaptive "
                                              "threshold theta"),
    "excitatory.theta_offset_mV": _voltage("the offset subtracted from the threshold "
                                           "(v_threshold - theta_offset + theta)"),
    "excitatory.theta_initial_mV": _voltage("the initial value of the adaptive threshold "
                                            "theta"),
    "excitatory.timer_rate": _positive("the timer rate of the 'brian2-port' timer reading "
                                       "(s per s)", 1000.0,
                                       reason="a timer that does not advance blocks every "
                                              "spike"),
    "excitatory.timer_threshold_ms": _nonnegative("the timer threshold of the "
                                                  "'brian2-port' timer reading", 1e5, "ms"),
    # Inhibitory neurons.
    "inhibitory.v_rest_mV": _voltage("the resting potential of the inhibitory neurons"),
    "inhibitory.v_reset_mV": _voltage("the reset potential of the inhibitory neurons"),
    "inhibitory.v_threshold_mV": _voltage("the threshold of the inhibitory neurons"),
    "inhibitory.tau_membrane_ms": _time_constant("the membrane time constant of the "
                                                 "inhibitory neurons"),
    "inhibitory.tau_ge_ms": _time_constant("the decay time constant of the inhibitory "
                                           "neurons' excitatory conductance"),
    "inhibitory.tau_gi_ms": _time_constant("the decay time constant of the inhibitory "
                                           "neurons' inhibitory conductance"),
    "inhibitory.e_excitatory_mV": _voltage("the excitatory reversal potential of the "
                                           "inhibitory neurons"),
    "inhibitory.e_inhibitory_mV": _voltage("the inhibitory reversal potential of the "
                                           "inhibitory neurons"),
    "inhibitory.refractory_ms": _nonnegative("the refractory period of the inhibitory "
                                             "neurons", 1e5, "ms"),
    # Plasticity.
    "plasticity.tau_pre_ms": _time_constant("the decay time constant of the presynaptic "
                                            "STDP trace"),
    "plasticity.tau_post1_ms": _time_constant("the decay time constant of the first "
                                              "postsynaptic STDP trace"),
    "plasticity.tau_post2_ms": _time_constant("the decay time constant of the second "
                                              "postsynaptic STDP trace"),
    "plasticity.nu_pre": _nonnegative("the depression learning rate", 100.0,
                                      reason="a learning rate is >= 0 (a weight change per "
                                             "spike, clipped to [0, w_max])"),
    "plasticity.nu_post": _nonnegative("the potentiation learning rate", 100.0,
                                       reason="a learning rate is >= 0 (a weight change "
                                              "per spike, clipped to [0, w_max])"),
    "plasticity.w_max": _positive("the largest input weight", 1000.0,
                                  reason="weights are clipped to [0, w_max]: 0 forbids "
                                         "learning"),
    "plasticity.initial_weight_scale": _positive("the scale of the random initial input "
                                                 "weights", 1000.0,
                                                 reason="zero initial weights stay zero "
                                                        "under normalisation: nothing is "
                                                        "ever learned"),
    "plasticity.normalisation_total": _positive("the sum each neuron's input weights are "
                                                "scaled to", 1e6,
                                                reason="a zero sum silences the network"),
    "plasticity.max_input_delay_ms": _nonnegative("the largest input delay (0: no delays)",
                                                  1000.0, "ms"),
    "plasticity.w_exc_to_inh": _nonnegative("the excitatory → inhibitory weight", 1e4),
    "plasticity.w_inh_to_exc": _nonnegative("the inhibitory → excitatory weight", 1e4),
    # Inputs and presentation schedule.
    "inputs.rate_divisor": _positive("the divisor of the pixel rates (rate = pixel / "
                                     "rate_divisor * intensity Hz)", 1e6,
                                     reason="0 is a division by zero"),
    "inputs.start_intensity": _positive("the input intensity of a first presentation",
                                        1000.0,
                                        reason="a zero intensity draws no input spike"),
    "inputs.minimum_spikes": Bound(0, 10**9, "the fewest excitatory spikes that accept a "
                                             "presentation", integer=True),
    "inputs.maximum_intensity": _positive("the highest input intensity tried before a "
                                          "sample is accepted anyway", 1000.0,
                                          reason="each step up from start_intensity is one "
                                                 "more presentation of the sample: an "
                                                 "unbounded cap repeats a silent digit for "
                                                 "hours"),
    "inputs.runaway_spikes_per_neuron": _positive(
        "the excitatory spikes per neuron in one presentation above which the run stops as "
        "a runaway integration", 1e6,
        reason="0 would stop every run at its first spike"),
    "inputs.presentation_ms": _positive("the duration of one presentation", 1e5, "ms"),
    "inputs.rest_ms": _positive("the rest between two presentations", 1e5, "ms"),
    "inputs.dt_ms": Bound(0.001, 1.0, "the simulation time step", "ms",
                          reason="a time step above 1 ms makes the 1 ms conductances "
                                 "unstable, one below 1 µs makes a run last for ever"),
    # SpikeDyn.
    "spikedyn.w_lateral": _nonnegative("the weight of SpikeDyn's direct lateral inhibition",
                                       1e4),
    "spikedyn.consolidation_spikes": _positive("the activity scale of the adaptive learning "
                                               "rate (k = exp(-activity / "
                                               "consolidation_spikes))", 1e9,
                                               reason="0 is a division by zero"),
    "spikedyn.activity_tau_presentations": _positive("the decay time constant of the "
                                                     "activity, in training presentations",
                                                     _LONG,
                                                     reason="0 is a division by zero"),
    "spikedyn.theta_rate_mV": _nonnegative("the step of SpikeDyn's adaptive threshold",
                                           1000.0, "mV"),
    "spikedyn.target_response": _positive("the layer's target spike count per presentation",
                                          1e6),
    "spikedyn.theta_max_mV": _voltage("the ceiling of SpikeDyn's adaptive threshold theta"),
    "spikedyn.weight_decay_per_sample": _fraction("the weight decay per training sample"),
    "spikedyn.x_target": _fraction("the presynaptic trace target of SpikeDyn's update rule "
                                   "(traces lie in [0, 1])"),
    # ASP.
    "asp.leak_per_sample": _fraction("ASP's weight leak per training sample"),
    "asp.significance_rate": _fraction("ASP's significance update rate"),
    "asp.baseline_weight": _nonnegative("the baseline ASP's decay phase leaks the weights "
                                        "toward", 1000.0),
    "asp.learning_rate_tau_presentations": _positive(
        "the time constant of ASP's time-dependent learning rate, in training presentations",
        _LONG, reason="0 is a division by zero"),
    "asp.frequency_gain": _nonnegative("the gain of ASP's frequency-dependent potentiation "
                                       "(1 + gain × input frequency)", 1e6),
    "asp.frequency_tau_presentations": Bound(
        1.0, _LONG, "the averaging window of ASP's input frequencies, in training "
                    "presentations",
        reason="a moving average over less than one presentation overshoots"),
}


def _show(value, limit=60):
    """``repr`` of a value for a message, shortened (an int may have thousands of digits)."""
    try:
        text = repr(value)
    except ValueError:  # int too large to print
        text = f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= limit else text[:limit - 20] + "…" + text[-10:]


def _show_path(text):
    return _show(text, limit=300)


def _numeric_fields(instance, prefix=""):
    """``(relative key, value, type)`` of every int/float field of a parameter dataclass."""
    hints = typing.get_type_hints(type(instance))
    for item in dataclasses.fields(instance):
        value = getattr(instance, item.name)
        key = f"{prefix}{item.name}"
        if dataclasses.is_dataclass(value):
            yield from _numeric_fields(value, key + ".")
        elif hints[item.name] in (int, float):
            yield key, value, hints[item.name]


def _default_of(key):
    value = NetworkParameters()
    for name in key.split("."):
        value = getattr(value, name)
    return value


def _bound_error(prefix, key, value, bound, extra=""):
    where = f"{prefix}.{key}" if prefix else key
    if bound.low == bound.high:
        message = f"key '{where}' must be {bound.describe()} ({bound.meaning}), got {_show(value)}"
        return ConfigError(message)
    problem = ""
    if isinstance(value, float) and math.isnan(value):
        problem = " (NaN is not a number)"
    elif isinstance(value, float) and math.isinf(value):
        problem = " (an infinite value is not allowed)"
    message = (
        f"key '{where}' is {_show(value)}{problem}; {bound.meaning} must be "
        f"{bound.describe()}{extra}"
    )
    if bound.reason:
        message += f" ({bound.reason})"
    message += f". Fix: set it within that range (default {_show(_default_of(key))})"
    return ConfigError(message)


def _relation_error(prefix, key, message, fix):
    where = f"{prefix}.{key}" if prefix else key
    return ConfigError(f"key '{where}' {message}. Fix: {fix}")


def _check_network(parameters, prefix="network"):
    """Check every numeric field of ``parameters`` against `NETWORK_BOUNDS`, then their relations.

    Relations (checked once every field is in its range):

    * ``inputs.dt_ms < inputs.presentation_ms``, every time constant
      ``>= inputs.dt_ms``, every refractory period ``< inputs.presentation_ms``;
    * ``inputs.maximum_intensity >= inputs.start_intensity``;
    * excitatory neurons: the initial threshold ``v_threshold - theta_offset +
      theta_initial`` above ``v_rest`` and ``v_reset`` and below
      ``e_excitatory``; ``e_inhibitory < e_excitatory``;
    * inhibitory neurons: ``v_threshold`` above ``v_rest`` and ``v_reset``
      and below ``e_excitatory``;
    * ``spikedyn.theta_max_mV > excitatory.theta_initial_mV``;
    * ``spikedyn.weight_decay_per_sample < plasticity.w_max``;
    * ``asp.baseline_weight <= plasticity.w_max``.

    Raises
    ------
    ConfigError
        Naming the first offending key (``'network.excitatory.tau_ge_ms'``),
        its value, the allowed range and the fix.
    """
    if parameters.variant not in _network_variants():
        raise ConfigError(
            f"key '{prefix}.variant' is {parameters.variant!r}; choose one of "
            f"{', '.join(_network_variants())}"
        )
    if parameters.excitatory.timer not in TIMER_READINGS:
        raise ConfigError(
            f"key '{prefix}.excitatory.timer' is {parameters.excitatory.timer!r}; choose one "
            f"of {', '.join(TIMER_READINGS)}"
        )
    if parameters.integration_method not in INTEGRATION_METHODS:
        raise ConfigError(
            f"key '{prefix}.integration_method' is {parameters.integration_method!r}; choose "
            f"one of {', '.join(INTEGRATION_METHODS)} ('euler', the default, is what the "
            "original code used; 'exponential_euler' stays stable for large networks)"
        )
    fields = list(_numeric_fields(parameters))
    for key, value, kind in fields:
        bound = NETWORK_BOUNDS.get(key)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            where = f"{prefix}.{key}"
            raise ConfigError(f"key '{where}' must be an integer, got {_show(value)}")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            where = f"{prefix}.{key}"
            raise ConfigError(f"key '{where}' must be a number, got {_show(value)}")
        if bound is None:  # a field without an entry: at least finite
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(
                    f"key '{prefix}.{key}' is {_show(value)}; it must be a finite number"
                )
            continue
        if not bound.allows(value):
            raise _bound_error(prefix, key, value, bound)

    inputs = parameters.inputs
    dt = inputs.dt_ms
    if not dt < inputs.presentation_ms:
        raise _relation_error(
            prefix, "inputs.dt_ms",
            f"is {_show(dt)} ms, not shorter than a presentation "
            f"({prefix}.inputs.presentation_ms = {_show(inputs.presentation_ms)} ms)",
            "use a time step of at most 1 ms (default 0.5) and presentations of many steps")
    for key, value, _ in fields:
        bound = NETWORK_BOUNDS.get(key)
        if bound is not None and bound.time_constant and value < dt:
            raise _bound_error(
                prefix, key, value, bound,
                extra=f" = {_show(dt)} ms here")
    for layer in ("excitatory", "inhibitory"):
        refractory = getattr(parameters, layer).refractory_ms
        if not refractory < inputs.presentation_ms:
            raise _relation_error(
                prefix, f"{layer}.refractory_ms",
                f"is {_show(refractory)} ms, not shorter than a presentation "
                f"({prefix}.inputs.presentation_ms = {_show(inputs.presentation_ms)} ms)",
                "a refractory period of a few ms (default "
                f"{_show(_default_of(f'{layer}.refractory_ms'))})")
    if inputs.maximum_intensity < inputs.start_intensity:
        raise ConfigError(
            f"key '{prefix}.inputs.maximum_intensity' must be >= "
            f"'{prefix}.inputs.start_intensity' (got {_show(inputs.maximum_intensity)} < "
            f"{_show(inputs.start_intensity)}); raise the maximum or lower the start intensity "
            "(defaults 32 and 2)"
        )

    exc = parameters.excitatory
    threshold = exc.v_threshold_mV - exc.theta_offset_mV + exc.theta_initial_mV
    initial = (f"the initial threshold v_threshold_mV - theta_offset_mV + theta_initial_mV "
               f"= {_number(float(threshold))} mV")
    fix = ("keep v_rest_mV and v_reset_mV below the threshold and e_excitatory_mV above it "
           "(defaults: rest -65, reset -65, initial threshold -52, e_excitatory 0 mV)")
    if not threshold > exc.v_rest_mV:
        raise _relation_error(prefix, "excitatory.v_threshold_mV",
                              f"gives {initial}, not above v_rest_mV = "
                              f"{_show(exc.v_rest_mV)} mV: the neurons would fire at rest", fix)
    if not threshold > exc.v_reset_mV:
        raise _relation_error(prefix, "excitatory.v_threshold_mV",
                              f"gives {initial}, not above v_reset_mV = "
                              f"{_show(exc.v_reset_mV)} mV: a neuron would fire again right "
                              "after its reset", fix)
    if not exc.e_excitatory_mV > threshold:
        raise _relation_error(prefix, "excitatory.e_excitatory_mV",
                              f"is {_show(exc.e_excitatory_mV)} mV, not above {initial}: "
                              "excitatory input could never make a neuron fire", fix)
    if not exc.e_inhibitory_mV < exc.e_excitatory_mV:
        raise _relation_error(prefix, "excitatory.e_inhibitory_mV",
                              f"is {_show(exc.e_inhibitory_mV)} mV, not below e_excitatory_mV "
                              f"= {_show(exc.e_excitatory_mV)} mV", fix)
    inh = parameters.inhibitory
    fix = ("keep v_rest_mV and v_reset_mV below v_threshold_mV and e_excitatory_mV above it "
           "(defaults: rest -60, reset -45, threshold -40, e_excitatory 0 mV)")
    for name in ("v_rest_mV", "v_reset_mV"):
        if not inh.v_threshold_mV > getattr(inh, name):
            raise _relation_error(prefix, "inhibitory.v_threshold_mV",
                                  f"is {_show(inh.v_threshold_mV)} mV, not above {name} = "
                                  f"{_show(getattr(inh, name))} mV", fix)
    if not inh.e_excitatory_mV > inh.v_threshold_mV:
        raise _relation_error(prefix, "inhibitory.e_excitatory_mV",
                              f"is {_show(inh.e_excitatory_mV)} mV, not above v_threshold_mV "
                              f"= {_show(inh.v_threshold_mV)} mV: excitatory input could "
                              "never make an inhibitory neuron fire", fix)
    spikedyn = parameters.spikedyn
    if not spikedyn.theta_max_mV > exc.theta_initial_mV:
        raise _relation_error(prefix, "spikedyn.theta_max_mV",
                              f"is {_show(spikedyn.theta_max_mV)} mV, not above "
                              f"{prefix}.excitatory.theta_initial_mV = "
                              f"{_show(exc.theta_initial_mV)} mV (theta is clipped to "
                              "[theta_initial, theta_max])",
                              "a ceiling above the initial theta (defaults 100 and 20 mV)")
    if not spikedyn.weight_decay_per_sample < parameters.plasticity.w_max:
        raise _relation_error(prefix, "spikedyn.weight_decay_per_sample",
                              f"is {_show(spikedyn.weight_decay_per_sample)}, not below "
                              f"{prefix}.plasticity.w_max = "
                              f"{_show(parameters.plasticity.w_max)}: every weight would "
                              "decay to 0 at each sample",
                              "a small decay (default 0.0002)")
    asp = parameters.asp
    if not asp.baseline_weight <= parameters.plasticity.w_max:
        raise _relation_error(prefix, "asp.baseline_weight",
                              f"is {_show(asp.baseline_weight)}, above "
                              f"{prefix}.plasticity.w_max = "
                              f"{_show(parameters.plasticity.w_max)} (weights are clipped to "
                              "[0, w_max])",
                              "a baseline within the weight range (default 0.1)")
    return parameters


def _network_variants():
    from spikedyn_brian.models.parameters import NETWORK_VARIANTS

    return NETWORK_VARIANTS


#: Largest accepted values of the stream and device counts (the digits or
#: presentations of one run; beyond them the index arrays alone need
#: gigabytes, and the simulation would last months).
STREAM_LIMITS = {
    "train_samples": 10**7,
    "test_samples": 10**7,
    "assignment_samples": 10**7,
    "epochs": 10**4,
    "samples_per_task": 10**7,
    "probe_per_class": 10**7,
    "test_per_class": 10**7,
    #: train_samples × epochs, or samples_per_task × tasks.
    "presentations": 10**7,
    "seed": 2**31 - 1,
    "chunk_samples": 10**6,
    "threads": 1024,
}


def _check_count(section, key, value, low, high, why=""):
    if value < low:
        raise ConfigError(f"key '{section}.{key}' must be at least {low}, got {_show(value)}{why}")
    if value > high:
        raise ConfigError(
            f"key '{section}.{key}' is {_show(value)}; it must be at most {high:,}{why}. "
            "Fix: lower it"
        )


def _validate(experiment):
    stream = experiment.stream
    for key in ("train_samples", "test_samples", "epochs"):
        _check_count("stream", key, getattr(stream, key), 1, STREAM_LIMITS[key])
    if stream.train_samples * stream.epochs > STREAM_LIMITS["presentations"]:
        raise ConfigError(
            f"keys 'stream.train_samples' × 'stream.epochs' give "
            f"{stream.train_samples * stream.epochs:,} training presentations, more than "
            f"{STREAM_LIMITS['presentations']:,}. Fix: fewer samples or epochs"
        )
    if not stream.classes or any(c < 0 or c > 9 for c in stream.classes):
        raise ConfigError(
            f"key 'stream.classes' must list digit classes 0..9, got {_show(stream.classes)}"
        )
    if len(set(stream.classes)) != len(stream.classes):
        raise ConfigError(f"key 'stream.classes' lists a class twice: {_show(stream.classes)}")
    if stream.assignment_samples < 0:
        raise ConfigError("key 'stream.assignment_samples' must be >= 0 (0 means all)")
    _check_count("stream", "assignment_samples", stream.assignment_samples, 0,
                 STREAM_LIMITS["assignment_samples"], " (0 means all)")
    longest = max(stream.train_samples, stream.test_samples, stream.assignment_samples)
    _validate_common(experiment, longest)
    return experiment


def _validate_common(experiment, longest_phase=None):
    """Checks shared by every protocol's experiment.

    ``longest_phase`` is the most samples one phase (one stream run) presents,
    which bounds the samples of one compiled run with ``device.chunk_samples``.
    Filesystem checks (data directory, build directory, output path, an
    existing checkpoint) come last, once every value is known to be sound.
    """
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
    if stream.seed < 0:
        raise ConfigError(f"key 'stream.seed' must be >= 0, got {_show(stream.seed)}")
    if stream.seed > STREAM_LIMITS["seed"]:
        raise ConfigError(
            f"key 'stream.seed' is {_show(stream.seed)}; seeds must be below 2**31 "
            f"(at most {STREAM_LIMITS['seed']}). Fix: use a smaller seed"
        )

    device = experiment.device
    if device.name not in DEVICES:
        raise ConfigError(
            f"key 'device.name' is {device.name!r}; choose one of {', '.join(DEVICES)}"
        )
    if device.chunk_samples < 1:
        raise ConfigError(
            f"key 'device.chunk_samples' must be at least 1, got {_show(device.chunk_samples)}"
        )
    _check_count("device", "chunk_samples", device.chunk_samples, 1,
                 STREAM_LIMITS["chunk_samples"])
    _check_count("device", "threads", device.threads, 0, STREAM_LIMITS["threads"],
                 " (OpenMP threads of the compiled program; 0: none)")
    if device.threads > 1:
        from spikedyn_brian.devices.errors import MULTITHREADING_REFUSAL

        raise ConfigError(f"key 'device.threads' is {device.threads}: {MULTITHREADING_REFUSAL}")

    network = experiment.network
    _check_network(network, "network")
    _check_run_duration(experiment, longest_phase)

    _check_data_dir(stream)
    _check_build_dir(device)
    _check_output(experiment.output)
    return experiment


def _check_run_duration(experiment, longest_phase):
    """Worst case of one run: every sample shown at every intensity up to the cap.

    A run stops when its stream is done, at the latest after the engine's
    maximum duration (1e6 s of simulated time); a stream that could need more
    would end with samples never presented. A compiled run presents at most
    ``device.chunk_samples`` samples, a ``runtime`` run a whole phase.
    Fixed-duration devices (GeNN, CUDA) have a slot budget of their own,
    checked by the engine.
    """
    from spikedyn_brian.devices.backends import BACKENDS, MAXIMUM_RUN_DURATION

    backend = BACKENDS[experiment.device.name]
    if backend.formulation.end_of_stream == "idle":
        return
    maximum = float(MAXIMUM_RUN_DURATION)
    inputs = experiment.network.inputs
    samples = experiment.device.chunk_samples
    runtime = not backend.builds_once
    if longest_phase is not None:
        samples = longest_phase if runtime else min(samples, longest_phase)
    presentations = math.ceil(inputs.maximum_intensity - inputs.start_intensity) + 1
    slot_seconds = (inputs.presentation_ms + inputs.rest_ms) / 1000.0
    worst = samples * presentations * slot_seconds
    if worst > maximum:
        if runtime:
            lead = (f"keys 'network.inputs.maximum_intensity' and 'network.inputs.presentation_ms' "
                    f"with device 'runtime' (which runs a whole phase, here up to {samples} "
                    "samples, at once)")
            fix = ("lower network.inputs.maximum_intensity or the presentation and rest times, "
                   "present fewer samples, or use a compiled device")
        else:
            lead = (f"key 'device.chunk_samples' ({experiment.device.chunk_samples}) with "
                    "'network.inputs.maximum_intensity'")
            fix = ("lower device.chunk_samples, network.inputs.maximum_intensity or the "
                   "presentation and rest times")
        raise ConfigError(
            f"{lead}: one run of {samples} samples may need "
            f"{presentations} presentations of each (intensity {_show(inputs.start_intensity)} "
            f"up to {_show(inputs.maximum_intensity)}) of {_show(inputs.presentation_ms)} + "
            f"{_show(inputs.rest_ms)} ms, {worst:.3g} s of simulated time, more than the "
            f"{maximum:g} s a run may last: samples would never be presented. Fix: {fix}"
        )


def _check_path_text(key, text):
    if "\0" in text:
        raise ConfigError(f"key '{key}' is {_show_path(text)}, which holds a NUL character; give a "
                          "valid path")


def _check_data_dir(stream):
    """A data directory that is set must exist and hold the IDX files the run reads."""
    if not stream.data_dir:
        return
    from spikedyn_brian.data import MNISTFileError, check_idx_directory

    _check_path_text("stream.data_dir", stream.data_dir)
    splits = ("train", "test") if stream.evaluation == "test" else ("train",)
    try:
        check_idx_directory(stream.data_dir, splits)
    except MNISTFileError as error:
        raise ConfigError(
            f"key 'stream.data_dir' is {_show_path(stream.data_dir)}: {error}"
        ) from None


def _check_build_dir(device):
    """The build root (``device.build_dir``, else ``$SPIKEDYN_BUILD_DIR``) must be usable:
    a directory, or one that can be created in a writable directory."""
    text, key = device.build_dir, "key 'device.build_dir'"
    if not text:
        text, key = os.environ.get("SPIKEDYN_BUILD_DIR", ""), "$SPIKEDYN_BUILD_DIR"
        if not text:
            return
    _check_path_text(key.removeprefix("key ").strip("'"), text)
    path = Path(text)
    try:
        is_file = path.exists() and not path.is_dir()
        dangling = path.is_symlink() and not path.exists()
        parent = path.absolute()
        while not (parent.exists() or parent.is_symlink()):
            parent = parent.parent
        blocked = None if parent == path.absolute() else parent
    except OSError as error:
        raise ConfigError(f"{key} is {_show_path(text)}, which cannot be accessed: "
                          f"{error.strerror or error}. Fix: give a usable directory") from None
    if is_file:
        raise ConfigError(
            f"{key} is {_show_path(text)}, an existing file, not a directory. Fix: give a "
            "directory (it is created if missing), or leave it empty"
        )
    if dangling:
        raise ConfigError(
            f"{key} is {_show_path(text)}, a symbolic link to '{os.readlink(path)}', which "
            "does not exist. Fix: create the link's target, or give another directory")
    if blocked is not None and not blocked.is_dir():
        raise ConfigError(
            f"{key} is {_show_path(text)}, but '{blocked}' is "
            f"{'a link to nowhere' if blocked.is_symlink() else 'a file'}, not a directory, so "
            "the build directory cannot be created. Fix: give another directory")
    if blocked is not None and not os.access(blocked, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{key} is {_show_path(text)}, but directory '{blocked}' is read-only (the build "
            "directory cannot be created in it). Fix: give a writable directory")


def _check_output(output):
    """The results file must be creatable: a file name in a directory that exists or can be made.

    Then, if checkpointing is on and a checkpoint of this output exists, it
    must be readable (`spikedyn_brian.checkpoint.Checkpoint.verify`).
    """
    text = output.path
    key = "output.path"
    if not text.strip():
        raise ConfigError(
            f"key '{key}' is empty; give the results file to write, e.g. "
            "'results/static_mnist.nc' (--out FILE.nc)"
        )
    _check_path_text(key, text)
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise ConfigError(
            f"key '{key}' is {_show_path(text)}, a directory name; give a file in it, e.g. "
            f"'{text.rstrip('/' + os.sep) or '.'}/results.nc'"
        )
    path = Path(text)
    try:
        if path.is_dir():
            raise ConfigError(
                f"key '{key}' is {_show_path(text)}, an existing directory; give a file, e.g. "
                f"'{path / 'results.nc'}'"
            )
        # The nearest existing ancestor must be a writable directory (missing
        # ones are created when the results are written).
        parent = path.absolute().parent
        missing = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(
                f"key '{key}' is {_show_path(text)}, but '{parent}' is a file, not a directory, so "
                "the results cannot be written there. Fix: choose another output path"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            where = f"cannot create '{missing[-1]}' in it" if missing else "cannot write in it"
            raise ConfigError(
                f"key '{key}' is {_show_path(text)}, but directory '{parent}' is read-only "
                f"({where}). Fix: choose an output path in a writable directory"
            )
    except OSError as error:
        raise ConfigError(
            f"key '{key}' is {_show_path(text)}, which cannot be used: {error.strerror or error}. "
            "Fix: choose another output path"
        ) from None
    if output.checkpoint and not output.restart:
        from spikedyn_brian.checkpoint import Checkpoint, checkpoint_path

        try:
            stored = checkpoint_path(path)
        except ValueError:  # no name a suffix can be put on: nothing to resume from
            return
        Checkpoint(stored, key="").verify()


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
            f"key 'stream.task_order' must list distinct digit classes 0..9, got {_show(order)}"
        )
    if stream.classes_per_task < 1 or len(order) % stream.classes_per_task:
        raise ConfigError(
            f"key 'stream.classes_per_task' ({_show(stream.classes_per_task)}) must divide the "
            f"number of classes in 'stream.task_order' ({len(order)})"
        )
    for key in ("samples_per_task", "probe_per_class", "test_per_class"):
        _check_count("stream", key, getattr(stream, key), 1, STREAM_LIMITS[key])
    tasks = len(order) // stream.classes_per_task
    if stream.samples_by_task:
        if len(stream.samples_by_task) != tasks:
            raise ConfigError(
                f"key 'stream.samples_by_task' lists {len(stream.samples_by_task)} counts for "
                f"{tasks} tasks; give one count per task (or none: samples_per_task each)")
        for position, count in enumerate(stream.samples_by_task):
            _check_count("stream", f"samples_by_task[{position}]", count, 1,
                         STREAM_LIMITS["samples_per_task"])
    limit = stream.max_presentations_per_sample
    if not (limit == 0 or 1 <= limit <= 1e6):
        raise ConfigError(
            f"key 'stream.max_presentations_per_sample' is {_show(limit)}; it must be 0 (no "
            "limit) or a number of presentations per digit in [1, 1e6] (every digit needs "
            "at least one)")
    total = sum(task_sample_counts(stream))
    if total > STREAM_LIMITS["presentations"]:
        key = "samples_by_task" if stream.samples_by_task else "samples_per_task"
        raise ConfigError(
            f"key 'stream.{key}' gives {total:,} training digits over {tasks} tasks, more "
            f"than {STREAM_LIMITS['presentations']:,} training presentations. "
            "Fix: fewer samples per task"
        )
    longest = max(*task_sample_counts(stream), stream.probe_per_class * len(order),
                  stream.test_per_class * len(order))
    _validate_common(experiment, longest)
    return experiment


def task_sample_counts(stream):
    """Training digits of each task of a `ContinualStreamConfig`."""
    tasks = len(stream.task_order) // stream.classes_per_task
    return list(stream.samples_by_task) or [stream.samples_per_task] * tasks


def experiment_from_mapping(mapping, experiment_class=None):
    """Build and validate an experiment from a nested mapping (parsed TOML).

    ``experiment_class`` is `Experiment` (static protocol, default) or
    `ContinualExperiment`. The network starts from the constants
    ``network.parameter_set`` chooses (`spikedyn_brian.parameter_sets`).
    """
    from spikedyn_brian.parameter_sets import with_parameter_set

    experiment_class = experiment_class or Experiment
    if not isinstance(mapping, dict):
        raise ConfigError(f"the configuration must be a table of keys, got {_show(mapping)}")
    experiment = _build(experiment_class, with_parameter_set(mapping), "")
    if experiment_class is ContinualExperiment:
        return _validate_continual(experiment)
    return _validate(experiment)


def load_experiment(path=None, overrides=None, experiment_class=None, defaults=None):
    """Read a TOML configuration file, apply overrides, validate.

    Parameters
    ----------
    path : str or Path, optional
        TOML file; None starts from the defaults.
    overrides : dict, optional
        Nested mapping merged over the file's content (e.g. from CLI options).
    defaults : str or Path, optional
        A protocol's own TOML defaults (``protocols/<protocol>.toml``), beneath
        the file: a key the file leaves out takes the protocol's value, not the
        dataclass default.
    """
    mapping = read_mapping(path, overrides)
    if defaults is not None:
        mapping = merge(read_mapping(defaults), mapping)
    return experiment_from_mapping(mapping, experiment_class)


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
        try:
            is_file = path.is_file()
        except (OSError, ValueError) as error:
            raise ConfigError(f"configuration file '{path}' cannot be accessed: {error}") from None
        if not is_file:
            raise ConfigError(f"configuration file '{path}' does not exist")
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as error:
            raise ConfigError(
                f"configuration file '{path}' cannot be read: {error.strerror or error}; "
                "check its permissions"
            ) from None
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"configuration file '{path}' is not valid TOML: it is not UTF-8 text "
                f"({error.reason} at byte {error.start})"
            ) from None
        try:
            mapping = tomllib.loads(text)
        except (ValueError, RecursionError) as error:  # TOMLDecodeError, or a huge integer
            raise ConfigError(f"configuration file '{path}' is not valid TOML: {error}") from None
        _check_sections(mapping, f"configuration file '{path}': ")
    if overrides:
        if not isinstance(overrides, dict):
            raise ConfigError(
                f"overrides must be a nested table (dict) of keys, got {_show(overrides)}"
            )
        mapping = merge(mapping, overrides)
    return mapping


#: Top-level keys of every protocol's configuration: each is a table (a section).
SECTIONS = ("network", "stream", "device", "output", "search", "dask")


def _check_sections(mapping, where=""):
    """Every section of a configuration (`SECTIONS`) is a table of keys.

    ``network = 5`` or ``output = "x.nc"`` would otherwise be replaced by the
    defaults as soon as anything (a command-line option, the protocol's
    defaults) is merged with it. Other top-level keys are left to the
    configuration reader (an unknown key).
    """
    for key, value in mapping.items():
        if key in SECTIONS and not isinstance(value, dict):
            raise ConfigError(
                f"{where}key '{key}' must be a table of keys (a [{key}] section), got "
                f"{_show(value)}; write it as [{key}] followed by its keys")


def merge(base, overrides, _prefix=""):
    """Recursively merge ``overrides`` into a copy of ``base``.

    Raises
    ------
    ConfigError
        If a key is a table (a section) on one side and a plain value on the
        other (``network = 5`` merged with ``[network]`` keys): the value is
        never silently replaced by the table, nor the table by the value.
    """
    result = dict(base)
    for key, value in overrides.items():
        where = f"{_prefix}.{key}" if _prefix else str(key)
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value, where)
        elif key in result and isinstance(value, dict) != isinstance(result[key], dict):
            plain = result[key] if isinstance(value, dict) else value
            raise ConfigError(
                f"key '{where}' must be a table of keys (a [{where}] section), got "
                f"{_show(plain)}; write it as [{where}] followed by its keys")
        else:
            result[key] = value
    return result

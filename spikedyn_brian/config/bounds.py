"""The allowed values of a configuration: ranges, relations between them, the device.

Every numeric network parameter has a range (`NETWORK_BOUNDS`), every stream
and device count a limit (`STREAM_LIMITS`); the checks here raise
`ConfigError` naming the key, the value, the allowed range and the fix.
`check_static` and `check_continual` check a whole experiment's values (not
its paths: `spikedyn_brian.config.files`).
"""

import dataclasses
import math
import typing
from dataclasses import dataclass

from spikedyn_brian.analysis.labelling import PREDICTION_RULES
from spikedyn_brian.config.schema import EVALUATION_SPLITS, from_mapping, task_sample_counts
from spikedyn_brian.devices.errors import MULTITHREADING_REFUSAL
from spikedyn_brian.devices.registry import MAXIMUM_RUN_SECONDS, SPECS
from spikedyn_brian.errors import ConfigError, show
from spikedyn_brian.models.parameters import NETWORK_VARIANTS, TIMER_READINGS, NetworkParameters

__all__ = ["Bound", "NETWORK_BOUNDS", "INTEGRATION_METHODS", "STREAM_LIMITS", "check_network",
           "check_device", "check_static", "check_continual"]


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
#: ``network.`` (`check_network` applies them, then the relations between
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
        message = f"key '{where}' must be {bound.describe()} ({bound.meaning}), got {show(value)}"
        return ConfigError(message)
    problem = ""
    if isinstance(value, float) and math.isnan(value):
        problem = " (NaN is not a number)"
    elif isinstance(value, float) and math.isinf(value):
        problem = " (an infinite value is not allowed)"
    message = (
        f"key '{where}' is {show(value)}{problem}; {bound.meaning} must be "
        f"{bound.describe()}{extra}"
    )
    if bound.reason:
        message += f" ({bound.reason})"
    message += f". Fix: set it within that range (default {show(_default_of(key))})"
    return ConfigError(message)


def _relation_error(prefix, key, message, fix):
    where = f"{prefix}.{key}" if prefix else key
    return ConfigError(f"key '{where}' {message}. Fix: {fix}")


def check_network(parameters, prefix="network"):
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
    if parameters.variant not in NETWORK_VARIANTS:
        raise ConfigError(
            f"key '{prefix}.variant' is {parameters.variant!r}; choose one of "
            f"{', '.join(NETWORK_VARIANTS)}"
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
            raise ConfigError(f"key '{where}' must be an integer, got {show(value)}")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            where = f"{prefix}.{key}"
            raise ConfigError(f"key '{where}' must be a number, got {show(value)}")
        if bound is None:  # a field without an entry: at least finite
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(
                    f"key '{prefix}.{key}' is {show(value)}; it must be a finite number"
                )
            continue
        if not bound.allows(value):
            raise _bound_error(prefix, key, value, bound)

    inputs = parameters.inputs
    dt = inputs.dt_ms
    if not dt < inputs.presentation_ms:
        raise _relation_error(
            prefix, "inputs.dt_ms",
            f"is {show(dt)} ms, not shorter than a presentation "
            f"({prefix}.inputs.presentation_ms = {show(inputs.presentation_ms)} ms)",
            "use a time step of at most 1 ms (default 0.5) and presentations of many steps")
    for key, value, _ in fields:
        bound = NETWORK_BOUNDS.get(key)
        if bound is not None and bound.time_constant and value < dt:
            raise _bound_error(
                prefix, key, value, bound,
                extra=f" = {show(dt)} ms here")
    for layer in ("excitatory", "inhibitory"):
        refractory = getattr(parameters, layer).refractory_ms
        if not refractory < inputs.presentation_ms:
            raise _relation_error(
                prefix, f"{layer}.refractory_ms",
                f"is {show(refractory)} ms, not shorter than a presentation "
                f"({prefix}.inputs.presentation_ms = {show(inputs.presentation_ms)} ms)",
                "a refractory period of a few ms (default "
                f"{show(_default_of(f'{layer}.refractory_ms'))})")
    if inputs.maximum_intensity < inputs.start_intensity:
        raise ConfigError(
            f"key '{prefix}.inputs.maximum_intensity' must be >= "
            f"'{prefix}.inputs.start_intensity' (got {show(inputs.maximum_intensity)} < "
            f"{show(inputs.start_intensity)}); raise the maximum or lower the start intensity "
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
                              f"{show(exc.v_rest_mV)} mV: the neurons would fire at rest", fix)
    if not threshold > exc.v_reset_mV:
        raise _relation_error(prefix, "excitatory.v_threshold_mV",
                              f"gives {initial}, not above v_reset_mV = "
                              f"{show(exc.v_reset_mV)} mV: a neuron would fire again right "
                              "after its reset", fix)
    if not exc.e_excitatory_mV > threshold:
        raise _relation_error(prefix, "excitatory.e_excitatory_mV",
                              f"is {show(exc.e_excitatory_mV)} mV, not above {initial}: "
                              "excitatory input could never make a neuron fire", fix)
    if not exc.e_inhibitory_mV < exc.e_excitatory_mV:
        raise _relation_error(prefix, "excitatory.e_inhibitory_mV",
                              f"is {show(exc.e_inhibitory_mV)} mV, not below e_excitatory_mV "
                              f"= {show(exc.e_excitatory_mV)} mV", fix)
    inh = parameters.inhibitory
    fix = ("keep v_rest_mV and v_reset_mV below v_threshold_mV and e_excitatory_mV above it "
           "(defaults: rest -60, reset -45, threshold -40, e_excitatory 0 mV)")
    for name in ("v_rest_mV", "v_reset_mV"):
        if not inh.v_threshold_mV > getattr(inh, name):
            raise _relation_error(prefix, "inhibitory.v_threshold_mV",
                                  f"is {show(inh.v_threshold_mV)} mV, not above {name} = "
                                  f"{show(getattr(inh, name))} mV", fix)
    if not inh.e_excitatory_mV > inh.v_threshold_mV:
        raise _relation_error(prefix, "inhibitory.e_excitatory_mV",
                              f"is {show(inh.e_excitatory_mV)} mV, not above v_threshold_mV "
                              f"= {show(inh.v_threshold_mV)} mV: excitatory input could "
                              "never make an inhibitory neuron fire", fix)
    spikedyn = parameters.spikedyn
    if not spikedyn.theta_max_mV > exc.theta_initial_mV:
        raise _relation_error(prefix, "spikedyn.theta_max_mV",
                              f"is {show(spikedyn.theta_max_mV)} mV, not above "
                              f"{prefix}.excitatory.theta_initial_mV = "
                              f"{show(exc.theta_initial_mV)} mV (theta is clipped to "
                              "[theta_initial, theta_max])",
                              "a ceiling above the initial theta (defaults 100 and 20 mV)")
    if not spikedyn.weight_decay_per_sample < parameters.plasticity.w_max:
        raise _relation_error(prefix, "spikedyn.weight_decay_per_sample",
                              f"is {show(spikedyn.weight_decay_per_sample)}, not below "
                              f"{prefix}.plasticity.w_max = "
                              f"{show(parameters.plasticity.w_max)}: every weight would "
                              "decay to 0 at each sample",
                              "a small decay (default 0.0002)")
    asp = parameters.asp
    if not asp.baseline_weight <= parameters.plasticity.w_max:
        raise _relation_error(prefix, "asp.baseline_weight",
                              f"is {show(asp.baseline_weight)}, above "
                              f"{prefix}.plasticity.w_max = "
                              f"{show(parameters.plasticity.w_max)} (weights are clipped to "
                              "[0, w_max])",
                              "a baseline within the weight range (default 0.1)")
    return parameters


# --------------------------------------------------------------------------
# Stream and device
# --------------------------------------------------------------------------

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
        raise ConfigError(f"key '{section}.{key}' must be at least {low}, got {show(value)}{why}")
    if value > high:
        raise ConfigError(
            f"key '{section}.{key}' is {show(value)}; it must be at most {high:,}{why}. "
            "Fix: lower it"
        )


def check_static(experiment):
    """Every value of a static experiment (`Experiment`): stream, device, network."""
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
            f"key 'stream.classes' must list digit classes 0..9, got {show(stream.classes)}"
        )
    if len(set(stream.classes)) != len(stream.classes):
        raise ConfigError(f"key 'stream.classes' lists a class twice: {show(stream.classes)}")
    if stream.assignment_samples < 0:
        raise ConfigError("key 'stream.assignment_samples' must be >= 0 (0 means all)")
    _check_count("stream", "assignment_samples", stream.assignment_samples, 0,
                 STREAM_LIMITS["assignment_samples"], " (0 means all)")
    longest = max(stream.train_samples, stream.test_samples, stream.assignment_samples)
    _check_common(experiment, longest)
    return experiment


def _check_common(experiment, longest_phase=None):
    """Checks shared by every protocol's experiment.

    ``longest_phase`` is the most samples one phase (one stream run) presents,
    which bounds the samples of one compiled run with ``device.chunk_samples``.
    """
    stream = experiment.stream
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
        raise ConfigError(f"key 'stream.seed' must be >= 0, got {show(stream.seed)}")
    if stream.seed > STREAM_LIMITS["seed"]:
        raise ConfigError(
            f"key 'stream.seed' is {show(stream.seed)}; seeds must be below 2**31 "
            f"(at most {STREAM_LIMITS['seed']}). Fix: use a smaller seed"
        )

    device = experiment.device
    check_device(device)
    if device.chunk_samples < 1:
        raise ConfigError(
            f"key 'device.chunk_samples' must be at least 1, got {show(device.chunk_samples)}"
        )
    _check_count("device", "chunk_samples", device.chunk_samples, 1,
                 STREAM_LIMITS["chunk_samples"])
    _check_count("device", "threads", device.threads, 0, STREAM_LIMITS["threads"],
                 " (OpenMP threads of the compiled program; 0: none)")
    if device.threads > 1:
        raise ConfigError(f"key 'device.threads' is {device.threads}: {MULTITHREADING_REFUSAL}")

    check_network(experiment.network, "network")
    _check_run_duration(experiment, longest_phase)
    return experiment


def check_device(device, prefix="device"):
    """``name`` one of the registry's devices, ``options`` the fields of its options dataclass.

    ``device`` is a `DeviceConfig` (or any object with ``name`` and ``options``).
    """
    spec = SPECS.get(device.name)
    if spec is None:
        raise ConfigError(
            f"key '{prefix}.name' is {device.name!r}; choose one of {', '.join(SPECS)}"
        )
    options = getattr(device, "options", {})
    if not spec.option_names() and options:
        raise ConfigError(
            f"key '{prefix}.options' sets {', '.join(map(repr, options))}, but device "
            f"{device.name!r} has no options")
    from_mapping(spec.options, options, f"{prefix}.options")


def _check_run_duration(experiment, longest_phase):
    """Worst case of one run: every sample shown at every intensity up to the cap.

    A run stops when its stream is done, at the latest after the engine's
    maximum duration (1e6 s of simulated time); a stream that could need more
    would end with samples never presented. A compiled run presents at most
    ``device.chunk_samples`` samples, a ``runtime`` run a whole phase.
    Fixed-duration devices (GeNN, CUDA) have a slot budget of their own,
    checked by the engine.
    """
    spec = SPECS[experiment.device.name]
    if spec.formulation.end_of_stream == "idle":
        return
    maximum = MAXIMUM_RUN_SECONDS
    inputs = experiment.network.inputs
    samples = experiment.device.chunk_samples
    runtime = not spec.builds_once
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
            f"{presentations} presentations of each (intensity {show(inputs.start_intensity)} "
            f"up to {show(inputs.maximum_intensity)}) of {show(inputs.presentation_ms)} + "
            f"{show(inputs.rest_ms)} ms, {worst:.3g} s of simulated time, more than the "
            f"{maximum:g} s a run may last: samples would never be presented. Fix: {fix}"
        )


def check_continual(experiment):
    """Every value of a continual experiment (`ContinualExperiment`): stream, device, network."""
    stream = experiment.stream
    order = stream.task_order
    if not order or any(c < 0 or c > 9 for c in order) or len(set(order)) != len(order):
        raise ConfigError(
            f"key 'stream.task_order' must list distinct digit classes 0..9, got {show(order)}"
        )
    if stream.classes_per_task < 1 or len(order) % stream.classes_per_task:
        raise ConfigError(
            f"key 'stream.classes_per_task' ({show(stream.classes_per_task)}) must divide the "
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
            f"key 'stream.max_presentations_per_sample' is {show(limit)}; it must be 0 (no "
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
    _check_common(experiment, longest)
    return experiment


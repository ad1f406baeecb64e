"""Parameter sets of the models, as plain dataclasses (no Brian2 objects, no I/O).

Values are stored as floats in the unit named by the field's suffix (``_mV``,
``_ms``, ``_Hz``), so that a parameter set round-trips through TOML and netCDF
attributes unchanged. :mod:`spikedyn_brian.models.equations` attaches the units.

Defaults are those of Diehl & Cook's original code (``Diehl&Cook_spiking_MNIST.py``,
2015); the SpikeDyn defaults are documented reconstructions (``docs/models.md``).
"""

from dataclasses import dataclass, field, fields

__all__ = [
    "ExcitatoryNeuronParameters",
    "InhibitoryNeuronParameters",
    "PlasticityParameters",
    "InputParameters",
    "SpikeDynParameters",
    "ASPParameters",
    "NetworkParameters",
    "NETWORK_VARIANTS",
    "TIMER_READINGS",
    "PRECISIONS",
    "network_parameters",
]

#: The network variants that can be built.
NETWORK_VARIANTS = ("diehl-cook", "asp", "spikedyn")

#: Readings of the original code's excitatory ``timer`` (`ExcitatoryNeuronParameters.timer`).
TIMER_READINGS = ("original", "brian2-port")

#: Values of `NetworkParameters.precision`.
PRECISIONS = ("double", "single")


@dataclass
class ExcitatoryNeuronParameters:
    """Conductance-based LIF excitatory neuron with adaptive threshold ``theta``.

    The spike condition is ``v > v_threshold - theta_offset + theta`` (with the
    ``timer`` condition of the Brian2-port reading, see `timer`); ``theta`` starts at
    `theta_initial_mV` = `theta_offset_mV`, so the initial threshold is −52 mV.
    """

    v_rest_mV: float = -65.0
    v_reset_mV: float = -65.0
    v_threshold_mV: float = -52.0
    tau_membrane_ms: float = 100.0
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    e_excitatory_mV: float = 0.0
    e_inhibitory_mV: float = -100.0
    refractory_ms: float = 5.0
    theta_plus_mV: float = 0.05
    tau_theta_ms: float = 1e7
    theta_offset_mV: float = 20.0
    theta_initial_mV: float = 20.0
    #: How the original code's ``timer`` is read (``docs/models.md``). The
    #: original (Brian 1, ``brian_no_units``) writes ``dtimer/dt = 100.0 : ms``
    #: and spikes only if ``timer > refrac_e`` (5 ms); without units the timer
    #: grows by 100 per second and passes 0.005 s 0.05 ms after its reset, one
    #: step later: it never blocks a spike, the 5 ms refractory period acts.
    #: ``'original'`` (default): that behaviour, so no timer is simulated.
    #: ``'brian2-port'``: the reading of the Brian2 ports (Brian2's own example
    #: included), 0.1 s per s, an effective refractoriness of 50 ms.
    timer: str = "original"
    #: Timer rate of the ``'brian2-port'`` reading, in s per s, and its threshold.
    timer_rate: float = 0.1
    timer_threshold_ms: float = 5.0
    #: Whether ``v`` is held at ``v_reset`` during the refractory period. The
    #: original code's excitatory reset is a code string, for which Brian 1
    #: applies no refractory clamp: ``v`` integrates from ``v_reset`` while
    #: spikes are blocked. Its inhibitory neurons are clamped.
    clamp_refractory: bool = False

    @property
    def uses_timer(self):
        """Whether the ``timer`` variable is simulated (the Brian2-port reading)."""
        return self.timer == "brian2-port"


@dataclass
class InhibitoryNeuronParameters:
    """Conductance-based LIF inhibitory neuron (Diehl & Cook layer ``Ai``)."""

    v_rest_mV: float = -60.0
    v_reset_mV: float = -45.0
    v_threshold_mV: float = -40.0
    tau_membrane_ms: float = 10.0
    tau_ge_ms: float = 1.0
    tau_gi_ms: float = 2.0
    e_excitatory_mV: float = 0.0
    e_inhibitory_mV: float = -85.0
    refractory_ms: float = 2.0


@dataclass
class PlasticityParameters:
    """Trace STDP of the input → excitatory synapses, and weight normalisation."""

    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    w_max: float = 1.0
    #: Initial weights are ``(U[0, 1) + 0.01) * initial_weight_scale``.
    initial_weight_scale: float = 0.3
    #: Input weights of each excitatory neuron are scaled to sum to this value
    #: before every training presentation.
    normalisation_total: float = 78.0
    #: Input → excitatory delays drawn from U(0, max_input_delay_ms); 0 disables
    #: them (default: heterogeneous delays make propagation ~10× dearer).
    max_input_delay_ms: float = 0.0
    #: Excitatory → inhibitory (one-to-one) and inhibitory → excitatory
    #: (all but self) weights of the Diehl & Cook network.
    w_exc_to_inh: float = 10.4
    w_inh_to_exc: float = 17.0


@dataclass
class InputParameters:
    """Poisson pixel encoding and the presentation schedule."""

    #: rate = pixel / rate_divisor * intensity Hz (pixels 0..255).
    rate_divisor: float = 8.0
    start_intensity: float = 2.0
    #: Fewer than this many excitatory spikes in a presentation: present the
    #: same sample again with intensity + 1.
    minimum_spikes: int = 5
    #: Highest intensity tried; a sample is accepted at this intensity whatever
    #: the response (the original code has no cap and can loop forever).
    maximum_intensity: float = 32.0
    presentation_ms: float = 350.0
    rest_ms: float = 150.0
    dt_ms: float = 0.5
    #: Guard: a presentation that drives more than this many spikes per
    #: excitatory neuron ends the run with an error naming the sample (the
    #: integration ran away; a working network fires a few per digit).
    runaway_spikes_per_neuron: float = 25.0


@dataclass
class SpikeDynParameters:
    """SpikeDyn mechanisms: each is a switch, so that it can be ablated.

    SpikeDyn's paper names its mechanisms but gives no formula; each form
    here is a documented reconstruction (``docs/models.md``, with its source
    or reasoning), and its constants are tuned on the validation split with
    the same budget as the baselines' (``protocols/tuning.py``).
    """

    #: Direct lateral inhibition: exc → exc (i ≠ j), ``gi_post += w_lateral``.
    w_lateral: float = 17.0
    #: Adaptive learning rate (an adaptive potentiation factor from spiking
    #: activity, after FSpiNN): the STDP factor of neuron j is
    #: k_j = exp(−activity_j / consolidation_spikes), where ``activity_j``
    #: counts the neuron's training spikes, decaying by exp(−1/τ) per training
    #: presentation (τ = ``activity_tau_presentations``). A neuron that has
    #: answered many digits learns slowly and keeps what it learned; a fresh
    #: one learns fast (metaplastic consolidation).
    adaptive_learning_rate: bool = True
    consolidation_spikes: float = 100.0
    activity_tau_presentations: float = 1e4
    #: Adaptive threshold (set-point homeostasis, not Diehl & Cook's theta):
    #: after every training presentation theta_j += theta_rate × (spikes_j −
    #: target), target = ``target_response`` / N spikes per neuron, clipped to
    #: [theta_initial, theta_max]. A neuron above its share of the layer's
    #: response becomes harder to fire, one below it easier, with no decay in
    #: time. Off: theta stays at its initial value.
    adaptive_threshold: bool = True
    theta_rate_mV: float = 0.05
    target_response: float = 20.0
    theta_max_mV: float = 100.0
    #: Weight decay: before every training presentation each input weight
    #: loses ``weight_decay_per_sample`` (subtractive, floored at 0), removing
    #: weak, old information; normalisation then restores the total.
    weight_decay: bool = True
    weight_decay_per_sample: float = 2e-4
    #: Reduction of spurious updates: no depression at every input spike;
    #: at a postsynaptic spike, Δw = η_post k (x_pre − x_target).
    spurious_update_reduction: bool = True
    x_target: float = 0.1


@dataclass
class ASPParameters:
    """ASP (Panda et al. 2018, adaptive synaptic plasticity), reconstructed.

    Sources: ASP's abstract and a survey written with SpikeDyn's authors
    (``docs/models.md``, section ASP, quotes each sentence a choice rests on).
    The network and the STDP rule are Diehl & Cook's; the weights are updated
    in **two phases**: a *recovery* phase, the STDP change at spikes, and a
    *decay* phase, before every training presentation, in which each weight
    leaks **toward a baseline value**, ``w -= leak_per_sample (1 - s)
    (w - baseline_weight)``, at a rate modulated by its *significance* ``s``
    in [0, 1], which moves towards the presynaptic trace at every
    postsynaptic spike, ``s += significance_rate (x_pre - s)`` (the temporal
    correlation of pre- and postsynaptic spikes). The **time-dependent
    learning rate** scales both STDP rates by ``1 / (1 + n /
    learning_rate_tau_presentations)``, ``n`` the training presentations so
    far. **Frequency-dependent updates**: the potentiation of input ``i`` is
    scaled by ``1 + frequency_gain f_i``, ``f_i`` the fraction of recent
    training presentations in which input ``i`` spiked (a moving average over
    ``frequency_tau_presentations``): inputs that many patterns share get a
    larger update than rare ones. Each mechanism is a switch (or, for the
    baseline, ``baseline_weight = 0``): all off is the earlier reconstruction
    (``protocols/asp_leak_to_zero.toml``).
    """

    leak_per_sample: float = 0.01
    significance_rate: float = 0.1
    #: The value the decay phase leaks each weight toward (0: toward zero, the
    #: earlier reconstruction). Default: the mean input weight that Diehl &
    #: Cook's normalisation keeps (78 / 784 ≈ 0.1), an unlearned receptive field.
    baseline_weight: float = 0.1
    time_dependent_learning_rate: bool = True
    learning_rate_tau_presentations: float = 1e4
    frequency_dependent_updates: bool = True
    frequency_gain: float = 1.0
    frequency_tau_presentations: float = 1000.0


@dataclass
class NetworkParameters:
    """Everything that defines one network (and therefore one compiled build)."""

    variant: str = "diehl-cook"
    n_neurons: int = 400
    n_inputs: int = 784
    excitatory: ExcitatoryNeuronParameters = field(default_factory=ExcitatoryNeuronParameters)
    inhibitory: InhibitoryNeuronParameters = field(default_factory=InhibitoryNeuronParameters)
    plasticity: PlasticityParameters = field(default_factory=PlasticityParameters)
    inputs: InputParameters = field(default_factory=InputParameters)
    spikedyn: SpikeDynParameters = field(default_factory=SpikeDynParameters)
    asp: ASPParameters = field(default_factory=ASPParameters)
    #: Brian2 integration method of the neurons' equations. The original code
    #: is integrated with forward Euler (Brian 1's choice for its non-linear
    #: model), which is stable at dt = 0.5 ms only while dt (1 + ge + gi) /
    #: tau_m < 2: synchronous inhibition breaks that (about 24 inhibitory
    #: spikes in one step), and without the original's input delays
    #: (``plasticity.max_input_delay_ms = 10``), which spread the inputs'
    #: arrival, it does: at N = 400, 11,600 excitatory spikes per digit
    #: instead of 12 (``docs/models.md``). ``'exponential_euler'`` (default)
    #: is stable without delays; ``'euler'`` with 10 ms delays is the
    #: original's numerics (``protocols/diehl_cook_original.toml``).
    integration_method: str = "exponential_euler"
    #: Floating-point precision of the learned weights and the neurons'
    #: fast state: ``'double'`` (default, float64 everywhere) or ``'single'``
    #: (float32 for the input weights, ASP's significance, and the membrane
    #: potentials, conductances and STDP traces of the excitatory and
    #: inhibitory neurons; times, thresholds, counters and the inputs stay
    #: float64). Accuracy effect: ``docs/performance.md``.
    precision: str = "double"

    def __post_init__(self):
        if self.variant not in NETWORK_VARIANTS:
            raise ValueError(
                f"network variant {self.variant!r} is unknown; choose one of "
                f"{', '.join(NETWORK_VARIANTS)}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision {self.precision!r} is unknown; choose one of {', '.join(PRECISIONS)}"
            )
        if self.excitatory.timer not in TIMER_READINGS:
            raise ValueError(
                f"excitatory.timer {self.excitatory.timer!r} is unknown; choose one of "
                f"{', '.join(TIMER_READINGS)}"
            )
        if int(self.n_neurons) != self.n_neurons or self.n_neurons < 1:
            raise ValueError(
                f"n_neurons must be a positive integer, got {self.n_neurons!r}"
            )

    @property
    def has_inhibitory_layer(self):
        """Whether the network has Diehl & Cook's inhibitory layer."""
        return self.variant in ("diehl-cook", "asp")

    @property
    def uses_asp(self):
        """Whether the ASP significance-modulated weight leak applies."""
        return self.variant == "asp"

    @property
    def uses_spikedyn_learning(self):
        """Whether SpikeDyn's learning mechanisms (and switches) apply."""
        return self.variant == "spikedyn"


def network_parameters(variant="diehl-cook", n_neurons=400, **overrides):
    """Return the default `NetworkParameters` of a variant.

    Parameters
    ----------
    variant : {'diehl-cook', 'spikedyn'}
    n_neurons : int
        Number of excitatory neurons.
    **overrides
        Top-level fields of `NetworkParameters` to replace.
    """
    return NetworkParameters(variant=variant, n_neurons=n_neurons, **overrides)


def as_dict(parameters):
    """Nested plain-dict form of a parameter dataclass (for TOML/netCDF attrs)."""
    result = {}
    for item in fields(parameters):
        value = getattr(parameters, item.name)
        if hasattr(value, "__dataclass_fields__"):
            value = as_dict(value)
        result[item.name] = value
    return result

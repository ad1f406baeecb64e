"""Equation-defined Brian2 models of the Diehl & Cook and SpikeDyn networks.

Every function returns pure descriptions (a `ModelDescription`: Brian2
`Equations`, threshold/reset/event code strings and the namespace of
constants) and never creates Brian2 groups: the engine
(:mod:`spikedyn_brian.network`) does that, on whichever device.

Model code is written so that the compiled program has no per-synapse
exponential: the STDP traces are clock-driven variables of the neurons
(``pre`` on the input neurons, ``post1``/``post2`` on the excitatory neurons),
not event-driven variables of the 313,600 synapses. With the trace rule of
Diehl & Cook (a trace is *set* to 1 at each spike, not incremented) every
synapse of one presynaptic neuron holds the same trace value, so the two
formulations are identical (tested in ``tests/test_models.py``).
"""

import re
from dataclasses import dataclass, field

import numpy as np

from brian2 import Equations, mV, ms
from brian2.stateupdaters.base import StateUpdateMethod

from spikedyn_brian.models.formulation import END_OF_STREAM_MODES, STANDARD

__all__ = [
    "ModelDescription",
    "excitatory_neuron",
    "inhibitory_neuron",
    "poisson_input",
    "presentation_controller",
    "input_synapses",
    "input_synapses_with_synaptic_traces",
    "SLOT_EVENT_ORDER",
    "END_OF_STREAM_MODES",
]

#: Order (``when='start'``) of the operations run once per presentation slot.
#: The controller decides first; then the inputs draw their first spike (ASP:
#: after averaging their frequency over the slot that ended), SpikeDyn's
#: neurons update threshold and activity and ASP's count the training
#: presentations, from the slot that ended (while ``normalise_flag`` still
#: says whether it was a training slot); then
#: the flag for the new slot and the learning-rate factor; then weight decay + column sums,
#: normalisation factors, scaling, and clean-up.
SLOT_EVENT_ORDER = {
    "controller": 0,
    "inputs": 1,
    "spike_history": 1,
    "presentation_count": 1,
    "normalise_flag": 2,
    "learning_rate_factor": 2,
    "weight_sum": 3,
    "normalisation_factor": 4,
    "normalisation_scale": 5,
    "weight_sum_reset": 6,
}


@dataclass
class ModelDescription:
    """What Brian2 needs to create one group or one set of synapses.

    Attributes
    ----------
    equations : brian2.Equations or str
        Model equations (``model`` for synapses).
    threshold, reset : str or None
        Spike condition and reset code (neurons).
    refractory : brian2.Quantity, str or None
    on_pre, on_post : str or None
        Event code (synapses).
    namespace : dict
        Constants the code refers to, with units.
    method : str or None
        Integration method.
    events : dict
        Extra code run on events, ``{event: (code, when)}`` (neurons).
    """

    equations: object
    threshold: str | None = None
    reset: str | None = None
    refractory: object = None
    on_pre: str | None = None
    on_post: str | None = None
    namespace: dict = field(default_factory=dict)
    method: str | None = None
    events: dict = field(default_factory=dict)

    def __repr__(self):
        eqs = str(self.equations).strip().replace("\n", "; ")
        parts = [f"equations='{eqs}'"]
        for name in ("threshold", "reset", "on_pre", "on_post"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}='{value.strip()}'")
        return f"ModelDescription({', '.join(parts)})"


class EulerWithExactTraces(StateUpdateMethod):
    """Forward Euler, except for some linear traces, which decay exactly.

    The original code integrates its neurons with Brian 1's forward Euler
    (their equations are non-linear), but keeps the STDP traces in separate
    groups of linear equations, which Brian 1 integrates exactly. Here the
    traces ``post1``/``post2`` live on the excitatory neurons, so one group
    needs both: this state updater applies Brian2's ``euler`` to every
    equation but those named in ``exact``, which must be linear decays
    ``dx/dt = a x`` (``a`` constant) and are updated as ``x exp(a dt)``.

    Parameters
    ----------
    exact : iterable of str
        Variables integrated exactly.
    """

    def __init__(self, exact):
        self.exact = tuple(exact)

    def __call__(self, equations, variables=None, method_options=None):
        import sympy
        from brian2.parsing.sympytools import str_to_sympy, sympy_to_str

        rest = Equations([eq for eq in equations.ordered if eq.varname not in self.exact])
        code = [StateUpdateMethod.stateupdaters["euler"](rest, variables, method_options)]
        for eq in equations.ordered:
            if eq.varname not in self.exact:
                continue
            # dx/dt = a*x with a constant: x(t + dt) = x(t) exp(a dt).
            x = sympy.Symbol(eq.varname, real=True)
            rate = str_to_sympy(eq.expr.code)
            a = sympy.diff(rate, x)
            if x in a.free_symbols or sympy.simplify(rate - a * x) != 0:
                raise ValueError(f"{eq.varname} is not a linear decay: d{eq.varname}/dt = "
                                 f"{eq.expr.code}")
            code.append(f"_{eq.varname} = {eq.varname}*exp(dt*({sympy_to_str(a)}))\n"
                        f"{eq.varname} = _{eq.varname}")
        return "\n".join(code)

    def __repr__(self):
        return f"EulerWithExactTraces(exact={self.exact!r})"


def _integration_method(network, traces):
    """The neurons' state updater: ``network.integration_method``, with forward
    Euler's traces ``traces`` decaying exactly (`EulerWithExactTraces`)."""
    if network.integration_method == "euler" and traces:
        return EulerWithExactTraces(traces)
    return network.integration_method


def _theta_rule(network):
    """(theta_plus in mV, tau_theta in ms) of Diehl & Cook's theta, or None.

    None for SpikeDyn, whose threshold follows its own rule
    (`excitatory_slot_code`, event ``spike_history``).
    """
    if network.uses_spikedyn_learning:
        return None
    exc = network.excitatory
    return exc.theta_plus_mV, exc.tau_theta_ms


def learned_synapse_variables(network):
    """Input-synapse variables besides ``w`` that carry learning between runs."""
    return ("significance",) if network.uses_asp else ()


def learned_neuron_variables(network):
    """Excitatory-neuron variables besides ``theta`` that carry learning between runs."""
    if network.uses_spikedyn_learning and network.spikedyn.adaptive_learning_rate:
        return ("activity",)
    if uses_asp_learning_rate(network):
        return ("training_presentations",)
    return ()


def learned_input_variables(network):
    """Input-neuron variables that carry learning between runs (ASP's input frequencies)."""
    return ("feature_frequency",) if uses_asp_frequency(network) else ()


def uses_asp_learning_rate(network):
    """Whether ASP's time-dependent learning rate applies."""
    return network.uses_asp and network.asp.time_dependent_learning_rate


def uses_asp_frequency(network):
    """Whether ASP's frequency-dependent potentiation applies."""
    return network.uses_asp and network.asp.frequency_dependent_updates


def uses_learning_rate_factor(network):
    """Whether the STDP rates are scaled by the neurons' ``learning_rate_factor``
    (SpikeDyn's adaptive learning rate, ASP's time-dependent one)."""
    return (network.uses_spikedyn_learning and network.spikedyn.adaptive_learning_rate) \
        or uses_asp_learning_rate(network)


def uses_spike_history(network):
    """Whether the excitatory neurons count their spikes per slot (SpikeDyn's
    adaptive threshold and adaptive learning rate read the count)."""
    spikedyn = network.spikedyn
    return network.uses_spikedyn_learning and (
        spikedyn.adaptive_threshold or spikedyn.adaptive_learning_rate)


def uses_pre_spike_depression(network):
    """Whether every input spike depresses the input weights (Diehl & Cook)."""
    return not (network.uses_spikedyn_learning and network.spikedyn.spurious_update_reduction)


def excitatory_neuron(network, formulation=STANDARD):
    """Conductance-based LIF with adaptive threshold (Diehl & Cook layer ``Ae``).

    ``dv/dt = ((v_rest - v) + ge (E_exc - v) + gi (E_inh - v)) / tau_m``;
    ``ge``, ``gi`` are conductances in units of the leak conductance and
    decay with 1 ms and 2 ms. Diehl & Cook: ``theta`` rises by ``theta_plus``
    per spike while learning (``plastic`` = 1) and decays with ``tau_theta``;
    it is frozen while testing. SpikeDyn: ``theta`` follows its set-point rule
    once per slot (`excitatory_slot_code`), and the neurons count their spikes
    per slot (``slot_spikes``) and, for the adaptive learning rate, their
    activity. The traces ``post1``/``post2`` serve Diehl & Cook's STDP rule
    (left out where the synapses hold their own, ``formulation.synaptic_traces``).
    """
    exc = network.excitatory
    theta_rule = _theta_rule(network)
    clamp = " (unless refractory)" if exc.clamp_refractory else ""
    lines = [
        "dv/dt = ((v_rest - v) + ge*(E_exc - v) + gi*(E_inh - v)) / tau_membrane"
        f" : volt{clamp}",
        "dge/dt = -ge/tau_ge : 1",
        "dgi/dt = -gi/tau_gi : 1",
        "plastic : 1 (shared)",
        "normalise_now : 1" + (" (linked)" if formulation.linked_variables else ""),
        # Copy of the controller's flag: Brian2 synapses cannot read a linked
        # variable of their target.
        "normalise_flag : 1",
        "input_weight_sum : 1",
        "normalisation_factor : 1",
    ]
    namespace = {
        "v_rest": exc.v_rest_mV * mV,
        "v_reset": exc.v_reset_mV * mV,
        "E_exc": exc.e_excitatory_mV * mV,
        "E_inh": exc.e_inhibitory_mV * mV,
        "tau_membrane": exc.tau_membrane_ms * ms,
        "tau_ge": exc.tau_ge_ms * ms,
        "tau_gi": exc.tau_gi_ms * ms,
        "threshold_base": (exc.v_threshold_mV - exc.theta_offset_mV) * mV,
    }
    reset = ["v = v_reset"]
    if theta_rule is None:
        # SpikeDyn: theta changes once per slot (`excitatory_slot_code`).
        lines.append("theta : volt")
    else:
        theta_plus, tau_theta = theta_rule
        lines.append("dtheta/dt = -plastic*theta/tau_theta : volt")
        namespace["tau_theta"] = tau_theta * ms
        namespace["theta_plus"] = theta_plus * mV
        reset.append("theta += plastic*theta_plus")
    threshold = "v > threshold_base + theta"
    if exc.uses_timer:
        lines.append("dtimer/dt = timer_rate : second")
        namespace["timer_rate"] = exc.timer_rate
        namespace["timer_threshold"] = exc.timer_threshold_ms * ms
        threshold += " and timer > timer_threshold"
        reset.append("timer = 0*ms")
    plasticity = network.plasticity
    if uses_pre_spike_depression(network) and not formulation.synaptic_traces:
        lines += ["dpost1/dt = -post1/tau_post1 : 1", "dpost2/dt = -post2/tau_post2 : 1"]
        namespace["tau_post1"] = plasticity.tau_post1_ms * ms
        namespace["tau_post2"] = plasticity.tau_post2_ms * ms
        # Reset runs after the synaptic pathways, so on_post still sees the
        # trace value just before the spike ("post2before" of the original).
        reset += ["post1 = 1", "post2 = 1"]
    if uses_spike_history(network):
        spikedyn = network.spikedyn
        lines.append("slot_spikes : 1")
        reset.append("slot_spikes += 1")
        if spikedyn.adaptive_threshold:
            namespace.update(
                theta_rate=spikedyn.theta_rate_mV * mV,
                target_spikes=spikedyn.target_response / network.n_neurons,
                theta_floor=exc.theta_initial_mV * mV,
                theta_max=spikedyn.theta_max_mV * mV,
            )
        if spikedyn.adaptive_learning_rate:
            # Brian2 synapses cannot read a value computed in a slot operation
            # of their target unless it is a plain variable: the factor is one.
            lines += ["activity : 1", "learning_rate_factor : 1"]
            namespace["activity_decay"] = float(
                np.exp(-1.0 / spikedyn.activity_tau_presentations))
            namespace["consolidation_spikes"] = float(spikedyn.consolidation_spikes)
    if uses_asp_learning_rate(network):
        # Training presentations so far (the same in every neuron), counted
        # once per slot, and the factor they give.
        lines += ["training_presentations : 1", "learning_rate_factor : 1"]
        namespace["learning_rate_tau"] = float(network.asp.learning_rate_tau_presentations)
    traces = [name for name in ("post1", "post2") if f"d{name}/dt" in "\n".join(lines)]
    return ModelDescription(
        equations=Equations("\n".join(lines)),
        threshold=threshold,
        reset="\n".join(reset),
        refractory=exc.refractory_ms * ms,
        namespace=namespace,
        method=_integration_method(network, traces),
    )


def inhibitory_neuron(network):
    """Conductance-based LIF inhibitory neuron (Diehl & Cook layer ``Ai``).

    Nothing inhibits the inhibitory neurons in Diehl & Cook's network, so the
    inhibitory conductance is left out (it would stay 0).
    """
    inh = network.inhibitory
    equations = Equations(
        "dv/dt = ((v_rest - v) + ge*(E_exc - v)) / tau_membrane : volt (unless refractory)\n"
        "dge/dt = -ge/tau_ge : 1"
    )
    return ModelDescription(
        equations=equations,
        threshold="v > v_threshold",
        reset="v = v_reset",
        refractory=inh.refractory_ms * ms,
        namespace={
            "v_rest": inh.v_rest_mV * mV,
            "v_reset": inh.v_reset_mV * mV,
            "v_threshold": inh.v_threshold_mV * mV,
            "E_exc": inh.e_excitatory_mV * mV,
            "tau_membrane": inh.tau_membrane_ms * ms,
            "tau_ge": inh.tau_ge_ms * ms,
        },
        method=network.integration_method,
    )


def poisson_input(network, formulation=STANDARD):
    """Poisson pixel neurons driven by the presentation controller.

    Pixel ``i`` of the sample at stream position ``sample`` fires as a
    Bernoulli process with ``p = rate * dt`` per time step during the
    presentation, ``rate = pixel / rate_divisor * intensity`` Hz. Instead of
    one random draw per input per step (784k draws per sample) the number of
    steps to the next spike is drawn from its exact geometric distribution
    once per spike: ``k = ceil(E / -log(1 - p))`` with ``E ~ Exp(1)``. The
    spike trains have the same law as Brian2's ``PoissonGroup`` (one spike
    per step at most), at ~1/300 of the random draws.

    The description needs the TimedArray ``stimulus(sample*second, i)`` of
    pixel values in its namespace (added by the engine). The presynaptic STDP
    trace ``pre`` is left out where the synapses hold their own
    (``formulation.synaptic_traces``); the controller's values are plain
    variables where there are no linked variables.
    """
    inputs = network.inputs
    plasticity = network.plasticity
    linked = " (linked)" if formulation.linked_variables else ""
    lines = [] if formulation.synaptic_traces else ["dpre/dt = -pre/tau_pre : 1"]
    lines += [
        "next_spike : second",
        "hazard : 1",
        f"sample : integer{linked}",
        f"intensity : 1{linked}",
        f"slot_start : second{linked}",
    ]
    frequency = uses_asp_frequency(network)
    if frequency:
        # ASP: whether the input spiked in this slot, its moving average over
        # training slots, and the controller's flag of the slot that ended.
        lines += ["slot_spiked : 1", "feature_frequency : 1", f"trained_slot : 1{linked}"]
    equations = Equations("\n".join(lines))
    # Clipped to 1e9 steps (beyond any run): Brian2's runtime casts ceil() to a
    # 32-bit integer, and a silent pixel (hazard 0) would overflow it.
    draw_steps = "ceil(clip(-log(1 - rand()) / (hazard + 1e-30), 0, 1e9))"
    # A spike drawn after the presentation window is put off beyond any run
    # (the next slot draws afresh): the threshold then needs no look at the
    # window, a test the compiler vectorises.
    past_window = "next_spike += int(next_spike - slot_start >= presentation - 0.5*dt) * 1e9*second"
    slot_code = (
        "hazard = -log(1 - clip(stimulus(sample*second, i) / rate_divisor * intensity"
        " * Hz * dt, 0, 0.999))\n"
        f"next_spike = t + dt*({draw_steps} - 1)\n" + past_window
    )
    spike_code = f"next_spike = t + dt*{draw_steps}\n" + past_window
    if not formulation.synaptic_traces:
        spike_code = "pre = 1\n" + spike_code
    namespace = {
        "tau_pre": plasticity.tau_pre_ms * ms,
        "rate_divisor": inputs.rate_divisor,
        "presentation": inputs.presentation_ms * ms,
    }
    if frequency:
        spike_code = "slot_spiked = 1\n" + spike_code
        slot_code = ("feature_frequency += trained_slot*(slot_spiked - feature_frequency)"
                     "*frequency_rate\nslot_spiked = 0\n" + slot_code)
        namespace["frequency_rate"] = 1.0 / network.asp.frequency_tau_presentations
    return ModelDescription(
        equations=equations,
        threshold="t >= next_spike - 0.5*dt",
        namespace=namespace,
        method="exact",
        # The trace is set before the synaptic pathways run, so that a pre
        # and a post spike in the same step see pre = 1 in on_post, as when
        # the original on_pre (which runs first) set it.
        events={"spike": (spike_code, "before_synapses"), "slot": (slot_code, "start")},
    )


def presentation_controller(network, formulation=STANDARD):
    """The one-neuron controller that sequences a stream inside the simulation.

    At the start of each slot (presentation + rest) it decides whether the
    previous presentation is accepted (``count >= minimum_spikes`` or the
    intensity reached its cap): then it advances ``index`` and resets the
    intensity, else it presents the same sample again at intensity + 1. When
    ``index`` reaches ``n_stream`` it stops the simulation
    (``end_of_stream='stop'``; ``stop_at`` is a Brian2 `Function` added by the
    engine) or idles (``'idle'``): the intensity stays 0, so the inputs are
    silent, ``index`` stays at ``n_stream`` and nothing is normalised or
    learned until the run's fixed duration is over. Normalisation and decay
    happen before every training presentation (``normalise_now``).
    """
    end_of_stream = formulation.end_of_stream
    inputs = network.inputs
    # ASP's inputs average their frequency over training slots: the flag of
    # the slot that has just ended.
    trained_slot = uses_asp_frequency(network)
    equations = Equations(
        ("trained_slot : 1\n" if trained_slot else "") +
        "index : integer\n"
        "intensity : 1\n"
        "count : integer\n"
        "slot_start : second\n"
        "n_stream : integer\n"
        "started : integer\n"
        "plastic : 1\n"
        "normalise_now : 1\n"
        "stopped : integer\n"
        "random_seed : integer\n"
        "reported : integer\n"
        "input_spike_total : integer\n"
        "inhibitory_spike_total : integer\n"
    )
    slot_code = (
        # A presentation that drove more spikes than a working network can
        # (the integration ran away) ends the stream here; the engine reports it.
        "runaway = int(count > runaway_spikes)\n"
        "advance = int(count >= minimum_spikes or intensity >= maximum_intensity) * started"
        " * (1 - runaway)\n"
        "index += advance\n"
        "intensity = started*(advance*start_intensity + (1 - advance)*(intensity + 1))"
        " + (1 - started)*start_intensity\n"
        "count = 0\n"
        "slot_start = t\n"
        "started = 1\n"
        + ("trained_slot = normalise_now\n" if trained_slot else "")
        + "normalise_now = plastic*int(index < n_stream)\n"
    )
    if formulation.progress_reports:
        # ``report_position`` (a Brian2 Function added by the engine) prints
        # the position at most once per second of wall-clock time.
        slot_code += "reported = report_position(index)\n"
    if end_of_stream == "stop":
        slot_code += "stopped = stop_at(int(index >= n_stream) + runaway)"
    else:
        # A zero intensity never reaches the cap and draws no input spike, so
        # the controller stays here: index == n_stream (or the runaway
        # sample), intensity 0.
        slot_code += ("stopped = int(index >= n_stream or runaway > 0 or stopped > 0)\n"
                      "intensity = intensity*int(stopped == 0)")
    return ModelDescription(
        equations=equations,
        namespace={
            "minimum_spikes": int(inputs.minimum_spikes),
            "maximum_intensity": float(inputs.maximum_intensity),
            "start_intensity": float(inputs.start_intensity),
            "runaway_spikes": runaway_spikes(network),
        },
        events={"slot": (slot_code, "start")},
    )


def runaway_spikes(network):
    """Excitatory spikes of one presentation beyond which the integration ran away.

    ``inputs.runaway_spikes_per_neuron × N``: a working winner-take-all layer
    answers a digit with tens of spikes; a layer whose integration has run
    away fires every neuron at every refractory period (forward Euler without
    input delays at N = 400: 11,600 spikes per digit).
    """
    return int(network.inputs.runaway_spikes_per_neuron * network.n_neurons)


def input_synapses(network, formulation=STANDARD):
    """Input → excitatory synapses: conductance jump, STDP, decay, normalisation.

    Where the synapses hold their own traces (``formulation.synaptic_traces``)
    this is `input_synapses_with_synaptic_traces`.

    Diehl & Cook (``plastic`` = 1 while training)::

        on_pre:  ge += w;  w = clip(w - nu_pre * post1, 0, w_max)
        on_post: w = clip(w + nu_post * pre * post2_before, 0, w_max)

    SpikeDyn replaces them according to its switches (``docs/models.md``):
    with *reduction of spurious updates* the input spike only conducts and
    the update happens at the postsynaptic spike,
    ``w = clip(w + k nu_post (pre - x_target), 0, w_max)``; with the
    *adaptive learning rate* ``k = exp(-activity / consolidation_spikes)``
    (``k = 1`` otherwise), held by the excitatory neurons as
    ``learning_rate_factor`` and refreshed at every slot.

    ASP (``docs/models.md``): Diehl & Cook's rule, and a per-synapse
    *significance* ``s`` that tracks the pre-post correlation at every
    postsynaptic spike, ``s += rate (pre - s)``; before every training
    presentation each weight leaks, ``w -= leak (1 - s) w``.

    Slot code (returned in ``events``) decays or leaks the weights (SpikeDyn,
    ASP), sums each neuron's input weights and scales them to
    ``normalisation_total``.
    """
    if formulation.synaptic_traces:
        return input_synapses_with_synaptic_traces(network)
    plasticity = network.plasticity
    namespace = {
        "nu_pre": plasticity.nu_pre,
        "nu_post": plasticity.nu_post,
        "w_max": plasticity.w_max,
    }
    rate_factor = "1"
    spikedyn = network.spikedyn if network.uses_spikedyn_learning else None
    if uses_learning_rate_factor(network):
        rate_factor = "learning_rate_factor_post"
    # ASP: inputs that many patterns share get larger updates.
    frequency = "(1 + frequency_gain*feature_frequency_pre)*" if uses_asp_frequency(network) else ""
    if uses_pre_spike_depression(network):
        on_pre = (
            "ge_post += w\n"
            f"w = clip(w - plastic_post*{rate_factor}*nu_pre*post1_post, 0, w_max)"
        )
        on_post = (f"w = clip(w + plastic_post*{rate_factor}*nu_post*{frequency}pre_pre*post2_post,"
                   " 0, w_max)")
    else:
        on_pre = "ge_post += w"
        on_post = (
            f"w = clip(w + plastic_post*{rate_factor}*nu_post*(pre_pre - x_target), 0, w_max)"
        )
        namespace["x_target"] = float(spikedyn.x_target)
    equations = "w : 1"
    if network.uses_asp:
        asp = network.asp
        equations += "\nsignificance : 1"
        # The significance follows the temporal correlation of the pre- and
        # postsynaptic spikes: at every postsynaptic spike it moves towards
        # the presynaptic trace. It changes only when the neuron fires, so
        # what a neuron learned long ago stays significant until the neuron
        # answers other inputs.
        on_post += "\nsignificance += plastic_post*significance_rate*(pre_pre - significance)"
        namespace.update(asp_leak=asp.leak_per_sample, significance_rate=asp.significance_rate)
        if frequency:
            namespace["frequency_gain"] = float(asp.frequency_gain)
        # The decay phase: each weight leaks toward the baseline at a rate
        # its insignificance sets (toward 0 with a zero baseline).
        if asp.baseline_weight:
            leak = "(w - asp_baseline)"
            namespace["asp_baseline"] = float(asp.baseline_weight)
        else:
            leak = "w"
        sum_code = (
            f"w = clip(w - normalise_flag_post*asp_leak*(1 - significance)*{leak}, 0, w_max)\n"
            "input_weight_sum_post += w"
        )
    elif spikedyn is not None and spikedyn.weight_decay:
        sum_code = (
            "w = clip(w - normalise_flag_post*weight_decay, 0, w_max)\n"
            "input_weight_sum_post += w"
        )
        namespace["weight_decay"] = float(spikedyn.weight_decay_per_sample)
    else:
        sum_code = "input_weight_sum_post += w"
    namespace["normalisation_total"] = float(plasticity.normalisation_total)
    events = {
        "weight_sum": (sum_code, "start"),
        "normalisation_scale": ("w = w*normalisation_factor_post", "start"),
    }
    return ModelDescription(
        equations=Equations(equations),
        on_pre=on_pre,
        on_post=on_post,
        namespace=namespace,
        events=events,
    )


#: Per-synapse variables of `input_synapses_with_synaptic_traces`, by the
#: name the rule of `input_synapses` reads them under.
SYNAPTIC_FORM_NAMES = {
    "pre_pre": "pre_trace",
    "post1_post": "post1_trace",
    "post2_post": "post2_trace",
    "plastic_post": "learning_on",
    "learning_rate_factor_post": "rate_factor",
}


def input_synapses_with_synaptic_traces(network):
    """The rule of `input_synapses` with every value it reads held by the synapse.

    The form of devices whose ``on_post`` cannot read postsynaptic variables
    and whose neurons are reset before the synapses run (GeNN,
    ``docs/models.md``, section Devices). The same rule, the same code, with:

    * event-driven per-synapse traces ``pre_trace``, ``post1_trace``,
      ``post2_trace`` (Diehl & Cook's original form) instead of the neurons'
      ``pre``, ``post1``, ``post2``. ``on_pre`` sets ``pre_trace`` (the
      pre pathway runs before the post pathway: a post spike in the same step
      sees 1); ``on_post`` applies the rule first and then sets the post
      traces, so it reads ``post2`` just before the spike, and ``on_pre``
      reads ``post1`` before a post spike of the same step;
    * ``learning_on`` (shared) instead of the neurons' ``plastic``: set with
      the learned state before the run (constant over a stream);
    * ``rate_factor`` (per synapse) instead of the neurons'
      ``learning_rate_factor``: copied from the postsynaptic neuron at every
      slot by the weight-sum slot code, which runs after the factor is
      computed (`SLOT_EVENT_ORDER`).
    """
    base = input_synapses(network)
    plasticity = network.plasticity

    def synaptic(code):
        for name, synapse_name in SYNAPTIC_FORM_NAMES.items():
            code = re.sub(rf"\b{name}\b", synapse_name, code)
        return code

    lines = [
        str(base.equations).strip(),
        "dpre_trace/dt = -pre_trace/tau_pre : 1 (event-driven)",
        "learning_on : 1 (shared)",
    ]
    namespace = dict(base.namespace, tau_pre=plasticity.tau_pre_ms * ms)
    on_pre = synaptic(base.on_pre).split("\n")
    # Right after the conductance jump (the first line: brian2genn's output).
    on_pre.insert(1, "pre_trace = 1")
    on_post = [synaptic(base.on_post)]
    if uses_pre_spike_depression(network):
        lines += [
            "dpost1_trace/dt = -post1_trace/tau_post1 : 1 (event-driven)",
            "dpost2_trace/dt = -post2_trace/tau_post2 : 1 (event-driven)",
        ]
        namespace["tau_post1"] = plasticity.tau_post1_ms * ms
        namespace["tau_post2"] = plasticity.tau_post2_ms * ms
        on_post += ["post1_trace = 1", "post2_trace = 1"]
    events = dict(base.events)
    if "rate_factor" in "\n".join(on_pre + on_post):
        lines.append("rate_factor : 1")
        code, when = events["weight_sum"]
        events["weight_sum"] = ("rate_factor = learning_rate_factor_post\n" + code, when)
    return ModelDescription(
        equations=Equations("\n".join(lines)),
        on_pre="\n".join(on_pre),
        on_post="\n".join(on_post),
        namespace=namespace,
        events=events,
    )


#: Per-slot code run on the excitatory group around the synaptic slot code.
#: (``spike_history`` and ``learning_rate_factor`` only exist in SpikeDyn.)
EXCITATORY_SLOT_CODE = {
    "normalise_flag": "normalise_flag = normalise_now",
    # SpikeDyn's adaptive learning rate (ASP's time-dependent one: `excitatory_slot_code`).
    "learning_rate_factor": "learning_rate_factor = exp(-activity/consolidation_spikes)",
    "normalisation_factor": (
        "normalisation_factor = normalise_now*normalisation_total"
        "/(input_weight_sum + int(input_weight_sum == 0)) + (1 - normalise_now)"
    ),
    "weight_sum_reset": "input_weight_sum = 0",
}


def excitatory_slot_events(network):
    """Names of the per-slot excitatory events of ``network`` (in `SLOT_EVENT_ORDER`)."""
    events = ["normalise_flag", "normalisation_factor", "weight_sum_reset"]
    if uses_spike_history(network):
        events.append("spike_history")
    if uses_asp_learning_rate(network):
        events.append("presentation_count")
    if uses_learning_rate_factor(network):
        events.append("learning_rate_factor")
    return events


def excitatory_slot_code(network, event):
    """Code of the per-slot excitatory event ``event`` (`excitatory_slot_events`).

    ``spike_history`` (SpikeDyn) closes the slot that has just ended: with
    the adaptive threshold, ``theta`` moves towards the set point,
    ``theta += theta_rate (slot_spikes - target_spikes)`` clipped to
    ``[theta_initial, theta_max]`` (the threshold never falls below Diehl &
    Cook's initial −52 mV); with the adaptive learning rate, ``activity`` counts
    the neuron's training spikes with a decay per training slot. Both only
    after a training presentation: ``normalise_flag`` still holds the flag of
    the slot that has ended (0 at the start of a run, in testing and in the
    idle slots after a stream).
    """
    if uses_asp_learning_rate(network):
        # ASP's time-dependent learning rate: n training presentations so far
        # (the slot that has ended counts if it was one), factor 1 / (1 + n / tau).
        if event == "presentation_count":
            return "training_presentations += normalise_flag"
        if event == "learning_rate_factor":
            return "learning_rate_factor = 1/(1 + training_presentations/learning_rate_tau)"
    if event != "spike_history":
        return EXCITATORY_SLOT_CODE[event]
    spikedyn = network.spikedyn
    lines = []
    if spikedyn.adaptive_threshold:
        lines.append("theta = clip(theta + normalise_flag*theta_rate*(slot_spikes - target_spikes),"
                     " theta_floor, theta_max)")
    if spikedyn.adaptive_learning_rate:
        lines.append("activity = activity*(1 - normalise_flag*(1 - activity_decay))"
                     " + normalise_flag*slot_spikes")
    lines.append("slot_spikes = 0")
    return "\n".join(lines)


#: Variables stored in float32 with ``precision = 'single'``, per group.
SINGLE_PRECISION_VARIABLES = {
    "excitatory": ("v", "ge", "gi", "post1", "post2"),
    "inhibitory": ("v", "ge"),
    "input_synapses": ("w", "significance", "pre_trace", "post1_trace", "post2_trace"),
}


def dtypes(network, group):
    """Brian2's ``dtype`` argument for ``group`` (None: the default float64)."""
    if network.precision == "double":
        return None
    import numpy

    return {name: numpy.float32 for name in SINGLE_PRECISION_VARIABLES[group]}


def presentation_slot(network):
    """Duration of one slot (presentation + rest) as a Brian2 quantity."""
    inputs = network.inputs
    return (inputs.presentation_ms + inputs.rest_ms) * ms


def time_step(network):
    """Simulation time step as a Brian2 quantity."""
    return network.inputs.dt_ms * ms


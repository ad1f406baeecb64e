"""Build one Brian2 network (groups, synapses, controller, monitors) from models.

The network holds a whole stream: the controller sequences samples, rests,
intensity boosts, normalisation and learning on/off inside the simulation,
so a compiled program runs a stream without a Python round trip per sample.
"""

import numpy as np
from brian2 import (
    Function,
    Network,
    NeuronGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    TimedArray,
    linked_var,
    ms,
    mV,
    second,
)
from brian2.core.magic import stop as _stop_runtime_network

from spikedyn_brian.models import equations as model_equations

__all__ = ["SpikingNetwork", "build_network", "stop_at"]


def _stop_at_numpy(condition):
    if np.any(condition):
        _stop_runtime_network()
    return np.asarray(condition, dtype=np.int32)


#: ``stop_at(condition)``: ends the current ``run`` (at the end of this time
#: step) when ``condition`` is non-zero; returns ``condition``. Works in
#: runtime mode and in C++ standalone, where it sets the flag the network
#: loop checks after every step.
stop_at = Function(
    _stop_at_numpy,
    arg_units=[1],
    return_unit=1,
    arg_types=["integer"],
    return_type="integer",
    stateless=False,
    auto_vectorise=False,
)
stop_at.implementations.add_implementation(
    "cpp",
    """
    int stop_at(int condition)
    {
        if (condition)
            Network::_globally_stopped = true;
        return condition;
    }
    """,
)


class SpikingNetwork:
    """The Brian2 objects of one network, and how to read and set its state.

    Attributes
    ----------
    parameters : NetworkParameters
    network : brian2.Network
    inputs, excitatory, inhibitory, controller : brian2.NeuronGroup
        (``inhibitory`` is None for SpikeDyn's direct lateral inhibition)
    input_synapses, lateral_synapses : brian2.Synapses
    stimulus : brian2.TimedArray
        Pixel values, one row per stream position, ``stream_capacity`` rows.
    spike_monitor, slot_monitor : SpikeMonitor, StateMonitor
    """

    def __init__(self, parameters, stream_capacity, seed_weights, stimulus_values=None):
        self.parameters = parameters
        self.stream_capacity = int(stream_capacity)
        p = parameters
        dt = model_equations.time_step(p)
        slot = model_equations.presentation_slot(p)
        self.slot_duration = slot
        objects = []

        if stimulus_values is None:
            stimulus_values = np.zeros((self.stream_capacity, p.n_inputs))
        self.stimulus = TimedArray(
            np.asarray(stimulus_values, dtype=float), dt=1 * second, name="stimulus"
        )

        controller_model = model_equations.presentation_controller(p)
        self.controller = NeuronGroup(
            1,
            controller_model.equations,
            namespace=dict(controller_model.namespace, stop_at=stop_at),
            dt=dt,
            name="controller",
        )
        code, when = controller_model.events["slot"]
        self.controller.run_regularly(
            code,
            dt=slot,
            when=when,
            order=model_equations.SLOT_EVENT_ORDER["controller"],
            name="controller_slot",
        )
        objects.append(self.controller)

        input_model = model_equations.poisson_input(p)
        self.inputs = NeuronGroup(
            p.n_inputs,
            input_model.equations,
            threshold=input_model.threshold,
            namespace=dict(input_model.namespace, stimulus=self.stimulus),
            method=input_model.method,
            dt=dt,
            name="inputs",
        )
        self.inputs.sample = linked_var(self.controller, "index", index=np.zeros(p.n_inputs, int))
        self.inputs.intensity = linked_var(
            self.controller, "intensity", index=np.zeros(p.n_inputs, int)
        )
        self.inputs.slot_start = linked_var(
            self.controller, "slot_start", index=np.zeros(p.n_inputs, int)
        )
        self.inputs.next_spike = 1e9 * second
        code, when = input_model.events["spike"]
        self.inputs.run_on_event("spike", code, when=when)
        code, when = input_model.events["slot"]
        self.inputs.run_regularly(
            code,
            dt=slot,
            when=when,
            order=model_equations.SLOT_EVENT_ORDER["inputs"],
            name="inputs_slot",
        )
        objects.append(self.inputs)

        exc_model = model_equations.excitatory_neuron(p)
        syn_model = model_equations.input_synapses(p)
        self.excitatory = NeuronGroup(
            p.n_neurons,
            exc_model.equations,
            threshold=exc_model.threshold,
            reset=exc_model.reset,
            refractory=exc_model.refractory,
            method=exc_model.method,
            namespace=dict(
                exc_model.namespace,
                normalisation_total=syn_model.namespace["normalisation_total"],
            ),
            dt=dt,
            name="excitatory",
        )
        zeros_n = np.zeros(p.n_neurons, int)
        self.excitatory.normalise_now = linked_var(self.controller, "normalise_now", index=zeros_n)
        if "intensity" in self.excitatory.equations.names:
            self.excitatory.intensity = linked_var(self.controller, "intensity", index=zeros_n)
        # Every stream (and chunk) starts from rest: a neuron that has not
        # fired yet may fire at once (timer past its threshold).
        self.excitatory.v = p.excitatory.v_rest_mV * mV
        if p.excitatory.use_timer:
            self.excitatory.timer = p.excitatory.timer_threshold_ms * 2 * ms
        slot_events = ["normalise_flag", "normalisation_factor", "weight_sum_reset"]
        if "learning_rate_factor" in self.excitatory.equations.names:
            slot_events.append("learning_rate_factor")
        for event in slot_events:
            self.excitatory.run_regularly(
                model_equations.EXCITATORY_SLOT_CODE[event],
                dt=slot,
                when="start",
                order=model_equations.SLOT_EVENT_ORDER[event],
                name=f"excitatory_{event}",
            )
        objects.append(self.excitatory)

        self.input_synapses = Synapses(
            self.inputs,
            self.excitatory,
            syn_model.equations,
            on_pre=syn_model.on_pre,
            on_post=syn_model.on_post,
            namespace=syn_model.namespace,
            name="input_synapses",
        )
        self.input_synapses.connect()
        for event, (code, when) in syn_model.events.items():
            self.input_synapses.run_regularly(
                code,
                dt=slot,
                when=when,
                order=model_equations.SLOT_EVENT_ORDER[event],
                name=f"input_synapses_{event}",
            )
        if p.plasticity.max_input_delay_ms > 0:
            rng = np.random.default_rng(seed_weights + 1)
            self.input_synapses.delay = (
                rng.uniform(0, p.plasticity.max_input_delay_ms, p.n_inputs * p.n_neurons) * ms
            )
        objects.append(self.input_synapses)

        if p.has_inhibitory_layer:
            inh_model = model_equations.inhibitory_neuron(p)
            self.inhibitory = NeuronGroup(
                p.n_neurons,
                inh_model.equations,
                threshold=inh_model.threshold,
                reset=inh_model.reset,
                refractory=inh_model.refractory,
                method=inh_model.method,
                namespace=inh_model.namespace,
                dt=dt,
                name="inhibitory",
            )
            self.inhibitory.v = p.inhibitory.v_rest_mV * mV
            exc_to_inh = Synapses(
                self.excitatory,
                self.inhibitory,
                on_pre="ge_post += w_exc_to_inh",
                namespace={"w_exc_to_inh": p.plasticity.w_exc_to_inh},
                name="excitatory_to_inhibitory",
            )
            exc_to_inh.connect(j="i")
            inh_to_exc = Synapses(
                self.inhibitory,
                self.excitatory,
                on_pre="gi_post += w_inh_to_exc",
                namespace={"w_inh_to_exc": p.plasticity.w_inh_to_exc},
                name="inhibitory_to_excitatory",
            )
            inh_to_exc.connect(condition="i != j")
            self.lateral_synapses = (exc_to_inh, inh_to_exc)
            objects += [self.inhibitory, exc_to_inh, inh_to_exc]
        else:
            self.inhibitory = None
            lateral = Synapses(
                self.excitatory,
                self.excitatory,
                on_pre="gi_post += w_lateral",
                namespace={"w_lateral": p.spikedyn.w_lateral},
                name="lateral_inhibition",
            )
            lateral.connect(condition="i != j")
            self.lateral_synapses = (lateral,)
            objects.append(lateral)

        counter = Synapses(
            self.excitatory,
            self.controller,
            on_pre="count_post += int(t - slot_start_post < presentation)",
            namespace={"presentation": p.inputs.presentation_ms * ms},
            name="response_counter",
        )
        counter.connect()
        objects.append(counter)
        # Spike totals for operation counts (synaptic events, energy models).
        input_counter = Synapses(
            self.inputs, self.controller, on_pre="input_spike_total_post += 1",
            name="input_spike_counter",
        )
        input_counter.connect()
        objects.append(input_counter)
        if self.inhibitory is not None:
            inhibitory_counter = Synapses(
                self.inhibitory, self.controller, on_pre="inhibitory_spike_total_post += 1",
                name="inhibitory_spike_counter",
            )
            inhibitory_counter.connect()
            objects.append(inhibitory_counter)

        self.spike_monitor = SpikeMonitor(self.excitatory, name="excitatory_spikes")
        # Recorded just before the controller decides: describes the slot
        # that has just ended (sample index, intensity, response count).
        self.slot_monitor = StateMonitor(
            self.controller,
            ["index", "intensity", "count"],
            record=[0],
            dt=slot,
            when="start",
            order=model_equations.SLOT_EVENT_ORDER["controller"] - 1,
            name="slot_monitor",
        )
        objects += [self.spike_monitor, self.slot_monitor]
        self.network = Network(*objects, name="spikedyn_network")

    def __repr__(self):
        p = self.parameters
        lateral = "inhibitory layer" if p.has_inhibitory_layer else "direct lateral inhibition"
        return (
            f"SpikingNetwork(variant={p.variant!r}, n_inputs={p.n_inputs}, "
            f"n_neurons={p.n_neurons}, {lateral}, stream_capacity={self.stream_capacity})"
        )


def initial_weights(parameters, seed):
    """Diehl & Cook's initial input weights (not yet normalised).

    ``(U[0, 1) + 0.01) * initial_weight_scale``, one row per input, one column per
    excitatory neuron; the controller normalises them before the first training
    presentation, as the original code does. Returned flattened in Brian2's
    synapse order for ``connect()`` (i-major).
    """
    rng = np.random.default_rng(seed)
    p = parameters
    weights = (rng.random((p.n_inputs, p.n_neurons)) + 0.01) * p.plasticity.initial_weight_scale
    return weights.ravel()


def build_network(parameters, stream_capacity, seed=0, stimulus_values=None):
    """Create the Brian2 objects of a network (on the current device).

    Parameters
    ----------
    parameters : NetworkParameters
    stream_capacity : int
        Rows of the stimulus TimedArray: the most samples one run can present.
    seed : int
        Seed of the synapse delays (when enabled).
    stimulus_values : ndarray (stream_capacity, n_inputs), optional
        Pixel values (default zeros, to be given per run through ``run_args``).
    """
    return SpikingNetwork(parameters, stream_capacity, seed, stimulus_values)


__all__ += ["initial_weights"]

"""Build one Brian2 network (groups, synapses, controller, monitors) from models.

The network holds a whole stream: the controller sequences samples, rests,
intensity boosts, normalisation and learning on/off inside the simulation,
so a compiled program runs a stream without a Python round trip per sample.
"""

import re

import numpy as np
from brian2 import (
    Equations,
    Quantity,
    Function,
    Network,
    NeuronGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    TimedArray,
    defaultclock,
    linked_var,
    ms,
    mV,
    second,
)
from brian2.core.magic import stop as _stop_runtime_network
from brian2.equations.equations import SingleEquation

from spikedyn_brian import devices
from spikedyn_brian.models import equations as model_equations
from spikedyn_brian.state import LearnedState

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
    device : str
        The device the network is formulated for (``devices.DEVICES``):
        ``genn`` has no linked variables, one clock and no custom events,
        ``cuda`` sums weights with atomic additions; fixed-duration devices
        idle at the end of a stream (``docs/models.md``, section Devices).
    """

    def __init__(
        self, parameters, stream_capacity, seed_weights, stimulus_values=None,
        device="cpp_standalone",
    ):
        self.parameters = parameters
        self.stream_capacity = int(stream_capacity)
        self.device = device
        # brian2genn recognises run_regularly operations by name (it drops
        # the code of any other): on GeNN their names end in _run_regularly.
        # (Same relative order: Brian2 runs operations of one order by name.)
        self._slot_name = (lambda name: f"{name}_run_regularly") if device == "genn" else str
        p = parameters
        dt = model_equations.time_step(p)
        slot = model_equations.presentation_slot(p)
        self.slot_duration = slot
        objects = []
        genn = device == "genn"
        # The STDP traces live on the synapses (event-driven, exact) on GeNN,
        # whose on_post cannot read postsynaptic variables, and with input
        # delays, where the original reads the presynaptic trace of the
        # spikes that have *arrived* (`input_synapses_with_synaptic_traces`).
        synaptic_traces = genn or p.plasticity.max_input_delay_ms > 0
        if genn:
            # brian2genn supports one clock only: every group on defaultclock.
            defaultclock.dt = dt
            clock = {}
        else:
            # Groups run at dt; what has no clock of its own (the synapses'
            # state) stays on Brian2's default clock at its default step, even
            # after a GeNN network of the same process changed it.
            defaultclock.dt = BRIAN2_DEFAULT_DT
            clock = {"dt": dt}

        if stimulus_values is None:
            stimulus_values = np.zeros((self.stream_capacity, p.n_inputs))
        self.stimulus = TimedArray(
            np.asarray(stimulus_values, dtype=float), dt=1 * second, name="stimulus"
        )

        end_of_stream = devices.end_of_stream_mode(device)
        controller_model = model_equations.presentation_controller(p, end_of_stream)
        controller_namespace = dict(controller_model.namespace)
        if end_of_stream == "stop":
            controller_namespace["stop_at"] = stop_at
        self.controller = NeuronGroup(
            1,
            controller_model.equations,
            namespace=controller_namespace,
            name="controller",
            **clock,
        )
        code, when = controller_model.events["slot"]
        self.controller.run_regularly(
            code,
            dt=slot,
            when=when,
            order=model_equations.SLOT_EVENT_ORDER["controller"],
            name=self._slot_name("controller_slot"),
        )
        objects.append(self.controller)

        input_model = model_equations.poisson_input(p)
        spike_code, spike_when = input_model.events["spike"]
        input_equations = input_model.equations
        if synaptic_traces:
            # The synapses hold their own traces: no trace on the inputs.
            input_equations = _without_traces(input_equations, ["pre"])
            spike_code = _without_trace_resets(spike_code, ["pre"])
        if genn:
            input_equations = _without_links(input_equations)
        self.inputs = NeuronGroup(
            p.n_inputs,
            input_equations,
            threshold=input_model.threshold,
            # The spike code (next spike drawn, trace set) is the reset, moved
            # before the synaptic pathways below (GeNN has no other events).
            reset=spike_code,
            namespace=dict(input_model.namespace, stimulus=self.stimulus),
            method=input_model.method,
            name="inputs",
            **clock,
        )
        controller_values = {"sample": "index", "intensity": "intensity",
                             "slot_start": "slot_start"}
        # As on GeNN, where the neuron update (reset included) precedes the
        # synapse update: the input trace is set before the pathways read it.
        self.inputs.resetter["spike"].when = spike_when
        if genn:
            objects.append(self._broadcast(self.inputs, controller_values, slot))
        else:
            for name, source in controller_values.items():
                setattr(self.inputs, name, linked_var(
                    self.controller, source, index=np.zeros(p.n_inputs, int)))
        self.inputs.next_spike = 1e9 * second
        code, when = input_model.events["slot"]
        self.inputs.run_regularly(
            code,
            dt=slot,
            when=when,
            order=model_equations.SLOT_EVENT_ORDER["inputs"],
            name=self._slot_name("inputs_slot"),
        )
        objects.append(self.inputs)

        exc_model = model_equations.excitatory_neuron(p)
        exc_equations, exc_reset = exc_model.equations, exc_model.reset
        if synaptic_traces:
            # The STDP traces, learning flag and rate factor live on the
            # synapses (GeNN also resets neurons before the synapses run).
            syn_model = model_equations.input_synapses_with_synaptic_traces(p)
            exc_equations = _without_traces(exc_equations, GENN_NEURON_TRACES)
            exc_reset = _without_trace_resets(exc_reset, GENN_NEURON_TRACES)
            if isinstance(exc_model.method, model_equations.EulerWithExactTraces):
                exc_model.method = p.integration_method
        else:
            syn_model = model_equations.input_synapses(p)
        if genn:
            exc_equations = _without_links(exc_equations)
        self.excitatory = NeuronGroup(
            p.n_neurons,
            exc_equations,
            threshold=exc_model.threshold,
            reset=exc_reset,
            refractory=exc_model.refractory,
            method=exc_model.method,
            namespace=dict(
                exc_model.namespace,
                normalisation_total=syn_model.namespace["normalisation_total"],
            ),
            name="excitatory",
            **clock,
        )
        controller_values = {"normalise_now": "normalise_now"}
        if genn:
            objects.append(self._broadcast(self.excitatory, controller_values, slot))
        else:
            zeros_n = np.zeros(p.n_neurons, int)
            for name, source in controller_values.items():
                setattr(self.excitatory, name, linked_var(self.controller, source, index=zeros_n))
        # Every stream (and chunk) starts from rest: a neuron that has not
        # fired yet may fire at once (timer past its threshold).
        self.excitatory.v = p.excitatory.v_rest_mV * mV
        if p.excitatory.uses_timer:
            self.excitatory.timer = p.excitatory.timer_threshold_ms * 2 * ms
        for event in model_equations.excitatory_slot_events(p):
            self.excitatory.run_regularly(
                model_equations.excitatory_slot_code(p, event),
                dt=slot,
                when="start",
                order=model_equations.SLOT_EVENT_ORDER[event],
                name=self._slot_name(f"excitatory_{event}"),
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
                name=self._slot_name(f"input_synapses_{event}"),
                # CUDA runs synapse code in parallel: the column sums need atomics.
                codeobj_class=_cuda_atomics_class() if device == "cuda" else None,
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
                name="inhibitory",
                **clock,
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

    # ------------------------------------------------------------ learned state
    def _learned_variables(self):
        """(group, variable name, LearnedState key) of everything learned."""
        p = self.parameters
        variables = [(self.input_synapses, "w", "weights"), (self.excitatory, "theta", "theta")]
        variables += [(self.input_synapses, name, f"synapse.{name}")
                      for name in model_equations.learned_synapse_variables(p)]
        variables += [(self.excitatory, name, f"neuron.{name}")
                      for name in model_equations.learned_neuron_variables(p)]
        return variables

    def _run_values(self, state, plastic, n_stream):
        """(group, variable name, value) of a stream's data: learned state and flags."""
        arrays = state.arrays()
        values = [(self.controller, "n_stream", int(n_stream)),
                  (self.controller, "plastic", float(plastic)),
                  (self.excitatory, "plastic", float(plastic))]
        if "learning_on" in self.input_synapses.variables:
            # GeNN's formulation: the synapses' own learning flag.
            values.append((self.input_synapses, "learning_on", float(plastic)))
        for group, name, key in self._learned_variables():
            dimensions = group.variables[name].dim
            values.append((group, name, Quantity(np.asarray(arrays[key], dtype=float),
                                                 dim=dimensions)))
        return values

    def run_args(self, state, plastic, n_stream, random_seed, stimulus):
        """Brian2 ``run_args`` of a standalone run: stream data, flags, state, seed."""
        run_args = {self.stimulus: stimulus, self.controller.random_seed: int(random_seed)}
        for group, name, value in self._run_values(state, plastic, n_stream):
            run_args[getattr(group, name)] = value
        return run_args

    def apply_state(self, state, plastic, n_stream):
        """Set a stream's flags and learned state as initial values (runtime, GeNN)."""
        for group, name, value in self._run_values(state, plastic, n_stream):
            setattr(group, name, value)

    def read_state(self):
        """The learned state at the end of the last run (a `LearnedState`)."""
        arrays = {
            key: np.asarray(group.variables[name].get_value(), dtype=float).copy()
            for group, name, key in self._learned_variables()
        }
        return LearnedState.from_arrays(arrays)

    def _broadcast(self, target, names, slot):
        """GeNN formulation of linked variables: copy controller values per slot.

        A controller → ``target`` Synapses without pathways whose
        ``run_regularly`` (run on the host by brian2genn, right after the
        controller's decision: same order, later name) sets
        ``target.name = controller.source`` for ``names = {name: source}``.
        """
        broadcast = Synapses(self.controller, target, name=f"controller_to_{target.name}")
        broadcast.connect()
        broadcast.run_regularly(
            "\n".join(f"{name}_post = {source}_pre" for name, source in names.items()),
            dt=slot,
            when="start",
            order=model_equations.SLOT_EVENT_ORDER["controller"],
            name=self._slot_name(f"controller_to_{target.name}_slot"),
        )
        return broadcast

    def __repr__(self):
        p = self.parameters
        lateral = "inhibitory layer" if p.has_inhibitory_layer else "direct lateral inhibition"
        return (
            f"SpikingNetwork(variant={p.variant!r}, n_inputs={p.n_inputs}, "
            f"n_neurons={p.n_neurons}, {lateral}, stream_capacity={self.stream_capacity})"
        )


#: Brian2's default time step (``defaultclock.dt``), restored for every
#: network but GeNN's.
BRIAN2_DEFAULT_DT = 0.1 * ms


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


#: The excitatory neurons' STDP traces, held by the synapses on GeNN.
GENN_NEURON_TRACES = ("post1", "post2")


def _without_traces(equations, names):
    """``equations`` without the (trace) variables ``names``."""
    return Equations([eq for eq in equations.ordered if eq.varname not in names])


def _without_trace_resets(code, names):
    """``code`` without the lines that set a trace of ``names`` to 1."""
    pattern = re.compile(rf"^\s*({'|'.join(names)})\s*=\s*1\s*$")
    return "\n".join(line for line in code.split("\n") if not pattern.match(line))


def _without_links(equations):
    """The same equations with plain variables instead of linked ones (GeNN)."""
    return Equations([
        SingleEquation(
            eq.type, eq.varname, dimensions=eq.dim, var_type=eq.var_type, expr=eq.expr,
            flags=[flag for flag in eq.flags if flag != "linked"],
        )
        for eq in equations.ordered
    ])


def _cuda_atomics_class():
    from brian2cuda.codeobject import CUDAStandaloneAtomicsCodeObject

    return CUDAStandaloneAtomicsCodeObject


def build_network(
    parameters, stream_capacity, seed=0, stimulus_values=None, device="cpp_standalone"
):
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
    device : str
        Device to formulate the network for (`SpikingNetwork`).
    """
    return SpikingNetwork(parameters, stream_capacity, seed, stimulus_values, device)


__all__ += ["initial_weights"]

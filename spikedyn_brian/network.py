"""Build one Brian2 network (groups, synapses, controller, monitors) from models.

The network holds a whole stream: the controller sequences samples, rests,
intensity boosts, normalisation and learning on/off inside the simulation,
so a compiled program runs a stream without a Python round trip per sample.
"""

import numpy as np
from brian2 import (
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

from spikedyn_brian.models import equations as model_equations
from spikedyn_brian.models.formulation import STANDARD
from spikedyn_brian.state import LearnedState

__all__ = ["SpikingNetwork", "build_network", "stop_at", "report_position", "POSITION_PREFIX"]


def _integer_function(numpy_implementation, cpp_code, **cpp_keywords):
    """A stateful Brian2 ``Function`` of one integer returning an integer, with its C++ code."""
    function = Function(
        numpy_implementation,
        arg_units=[1],
        return_unit=1,
        arg_types=["integer"],
        return_type="integer",
        stateless=False,
        auto_vectorise=False,
    )
    function.implementations.add_implementation("cpp", cpp_code, **cpp_keywords)
    return function


def _stop_at_numpy(condition):
    if np.any(condition):
        _stop_runtime_network()
    return np.asarray(condition, dtype=np.int32)


#: ``stop_at(condition)``: ends the current ``run`` (at the end of this time
#: step) when ``condition`` is non-zero; returns ``condition``. Works in
#: runtime mode and in C++ standalone, where it sets the flag the network
#: loop checks after every step.
stop_at = _integer_function(
    _stop_at_numpy,
    """
    int stop_at(int condition)
    {
        if (condition)
            Network::_globally_stopped = true;
        return condition;
    }
    """,
)


def _report_position_numpy(index):
    return np.asarray(index, dtype=np.int32)


#: Prefix of the position lines ``report_position`` prints.
POSITION_PREFIX = "spikedyn-position"

#: ``report_position(index)``: prints ``spikedyn-position <index>`` to the
#: program's standard output, at most once per second of wall-clock time
#: (the engine reads it while a compiled run goes on, for its progress bar);
#: returns ``index``. Does nothing in runtime mode.
report_position = _integer_function(
    _report_position_numpy,
    f"""
    int report_position(int index)
    {{
        static std::chrono::steady_clock::time_point last;
        const std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
        if (now - last >= std::chrono::seconds(1))
        {{
            last = now;
            std::cout << "{POSITION_PREFIX} " << index << std::endl;
        }}
        return index;
    }}
    """,
    compiler_kwds={"headers": ["<chrono>", "<iostream>"]},
)


class SpikingNetwork:
    """The Brian2 objects of one network, and how to read and set its state.

    Parameters
    ----------
    parameters : NetworkParameters
    stream_capacity : int
        Rows of the stimulus table: the most samples one run can present.
    seed_weights : int
        Seed of the input delays (when ``plasticity.max_input_delay_ms`` > 0).
    stimulus_values : ndarray (stream_capacity, n_inputs), optional
        Pixel values (default zeros, to be given per run through ``run_args``).
    formulation : Formulation
        How the models are written for the device
        (:mod:`spikedyn_brian.models.formulation`); input delays add
        synaptic traces (`Formulation.for_network`).

    Attributes
    ----------
    network : brian2.Network
    inputs, excitatory, inhibitory, controller : brian2.NeuronGroup
        (``inhibitory`` is None for SpikeDyn's direct lateral inhibition)
    input_synapses : brian2.Synapses
    lateral_synapses : tuple of brian2.Synapses
    stimulus : brian2.TimedArray
    spike_monitor, slot_monitor : SpikeMonitor, StateMonitor
    """

    def __init__(self, parameters, stream_capacity, seed_weights=0, stimulus_values=None,
                 formulation=STANDARD):
        self.parameters = parameters
        self.stream_capacity = int(stream_capacity)
        self.formulation = formulation.for_network(parameters)
        self.slot_duration = model_equations.presentation_slot(parameters)
        self._objects = []
        self._make_clock()
        self._make_stimulus(stimulus_values)
        self._make_controller()
        self._make_inputs()
        self._make_excitatory()
        self._make_input_synapses(seed_weights)
        self._make_lateral_inhibition()
        self._make_counters()
        self._make_monitors()
        self.network = Network(*self._objects, name="spikedyn_network")

    # ------------------------------------------------------------ building steps
    def _slot_operation(self, group, code, event, name):
        """A per-slot ``run_regularly`` of ``group`` at its `SLOT_EVENT_ORDER`."""
        options = {}
        if self.formulation.atomic_column_sums and isinstance(group, Synapses):
            # CUDA runs synapse code in parallel: the column sums need atomics.
            options["codeobj_class"] = _cuda_atomics_class()
        group.run_regularly(
            code, dt=self.slot_duration, when="start",
            order=model_equations.SLOT_EVENT_ORDER[event],
            name=f"{name}{self.formulation.slot_operation_suffix}", **options,
        )

    def _make_clock(self):
        dt = model_equations.time_step(self.parameters)
        if self.formulation.single_clock:
            defaultclock.dt = dt
            self._clock = {}
        else:
            # Groups run at dt; what has no clock of its own (the synapses'
            # state) stays on Brian2's default clock at its default step, even
            # after a GeNN network of the same process changed it.
            defaultclock.dt = BRIAN2_DEFAULT_DT
            self._clock = {"dt": dt}

    def _make_stimulus(self, stimulus_values):
        if stimulus_values is None:
            stimulus_values = np.zeros((self.stream_capacity, self.parameters.n_inputs))
        self.stimulus = TimedArray(
            np.asarray(stimulus_values, dtype=float), dt=1 * second, name="stimulus"
        )

    def _make_controller(self):
        model = model_equations.presentation_controller(self.parameters, self.formulation)
        namespace = dict(model.namespace)
        if self.formulation.end_of_stream == "stop":
            namespace["stop_at"] = stop_at
        if self.formulation.progress_reports:
            namespace["report_position"] = report_position
        self.controller = NeuronGroup(1, model.equations, namespace=namespace,
                                      name="controller", **self._clock)
        code, _ = model.events["slot"]
        self._slot_operation(self.controller, code, "controller", "controller_slot")
        self._objects.append(self.controller)

    def _link_to_controller(self, group, names):
        """``group.name = controller.source`` for ``names = {name: source}``:
        linked variables, or a broadcast once per slot (no linked variables)."""
        if self.formulation.linked_variables:
            index = np.zeros(len(group), int)
            for name, source in names.items():
                setattr(group, name, linked_var(self.controller, source, index=index))
        else:
            self._objects.append(self._broadcast(group, names))

    def _make_inputs(self):
        p = self.parameters
        model = model_equations.poisson_input(p, self.formulation)
        spike_code, spike_when = model.events["spike"]
        self.inputs = NeuronGroup(
            p.n_inputs,
            model.equations,
            threshold=model.threshold,
            # The spike code (next spike drawn, trace set) is the reset, moved
            # before the synaptic pathways below (GeNN has no other events).
            reset=spike_code,
            namespace=dict(model.namespace, stimulus=self.stimulus),
            method=model.method,
            name="inputs",
            **self._clock,
        )
        # As on GeNN, where the neuron update (reset included) precedes the
        # synapse update: the input trace is set before the pathways read it.
        self.inputs.resetter["spike"].when = spike_when
        links = {"sample": "index", "intensity": "intensity", "slot_start": "slot_start"}
        if model_equations.uses_asp_frequency(p):
            links["trained_slot"] = "trained_slot"
        self._link_to_controller(self.inputs, links)
        self.inputs.next_spike = 1e9 * second
        code, _ = model.events["slot"]
        self._slot_operation(self.inputs, code, "inputs", "inputs_slot")
        self._objects.append(self.inputs)

    def _make_excitatory(self):
        p = self.parameters
        model = model_equations.excitatory_neuron(p, self.formulation)
        self._synapse_model = model_equations.input_synapses(p, self.formulation)
        self.excitatory = NeuronGroup(
            p.n_neurons,
            model.equations,
            threshold=model.threshold,
            reset=model.reset,
            refractory=model.refractory,
            method=model.method,
            namespace=dict(model.namespace,
                           normalisation_total=self._synapse_model.namespace["normalisation_total"]),
            name="excitatory",
            dtype=_present(model_equations.dtypes(p, "excitatory"), model.equations),
            **self._clock,
        )
        self._link_to_controller(self.excitatory, {"normalise_now": "normalise_now"})
        # Every stream (and chunk) starts from rest: a neuron that has not
        # fired yet may fire at once (timer past its threshold).
        self.excitatory.v = p.excitatory.v_rest_mV * mV
        if p.excitatory.uses_timer:
            self.excitatory.timer = p.excitatory.timer_threshold_ms * 2 * ms
        for event in model_equations.excitatory_slot_events(p):
            self._slot_operation(self.excitatory, model_equations.excitatory_slot_code(p, event),
                                 event, f"excitatory_{event}")
        self._objects.append(self.excitatory)

    def _make_input_synapses(self, seed_weights):
        p = self.parameters
        model = self._synapse_model
        self.input_synapses = Synapses(
            self.inputs, self.excitatory, model.equations, on_pre=model.on_pre,
            on_post=model.on_post, namespace=model.namespace, name="input_synapses",
            dtype=_present(model_equations.dtypes(p, "input_synapses"), model.equations),
        )
        self.input_synapses.connect()
        for event, (code, _) in model.events.items():
            self._slot_operation(self.input_synapses, code, event, f"input_synapses_{event}")
        if p.plasticity.max_input_delay_ms > 0:
            rng = np.random.default_rng(seed_weights + 1)
            self.input_synapses.delay = (
                rng.uniform(0, p.plasticity.max_input_delay_ms, p.n_inputs * p.n_neurons) * ms
            )
        self._objects.append(self.input_synapses)

    def _make_lateral_inhibition(self):
        p = self.parameters
        if p.has_inhibitory_layer:
            model = model_equations.inhibitory_neuron(p)
            self.inhibitory = NeuronGroup(
                p.n_neurons, model.equations, threshold=model.threshold, reset=model.reset,
                refractory=model.refractory, method=model.method, namespace=model.namespace,
                name="inhibitory",
                dtype=_present(model_equations.dtypes(p, "inhibitory"), model.equations),
                **self._clock,
            )
            self.inhibitory.v = p.inhibitory.v_rest_mV * mV
            exc_to_inh = Synapses(
                self.excitatory, self.inhibitory, on_pre="ge_post += w_exc_to_inh",
                namespace={"w_exc_to_inh": p.plasticity.w_exc_to_inh},
                name="excitatory_to_inhibitory",
            )
            exc_to_inh.connect(j="i")
            inh_to_exc = Synapses(
                self.inhibitory, self.excitatory, on_pre="gi_post += w_inh_to_exc",
                namespace={"w_inh_to_exc": p.plasticity.w_inh_to_exc},
                name="inhibitory_to_excitatory",
            )
            inh_to_exc.connect(condition="i != j")
            self.lateral_synapses = (exc_to_inh, inh_to_exc)
            self._objects += [self.inhibitory, exc_to_inh, inh_to_exc]
        else:
            self.inhibitory = None
            lateral = Synapses(
                self.excitatory, self.excitatory, on_pre="gi_post += w_lateral",
                namespace={"w_lateral": p.spikedyn.w_lateral}, name="lateral_inhibition",
            )
            lateral.connect(condition="i != j")
            self.lateral_synapses = (lateral,)
            self._objects.append(lateral)

    def _make_counters(self):
        """Response count per slot, and spike totals for operation counts (energy)."""
        counter = Synapses(
            self.excitatory, self.controller,
            on_pre="count_post += int(t - slot_start_post < presentation)",
            namespace={"presentation": self.parameters.inputs.presentation_ms * ms},
            name="response_counter",
        )
        counter.connect()
        self._objects.append(counter)
        sources = [(self.inputs, "input_spike_total", "input_spike_counter")]
        if self.inhibitory is not None:
            sources.append((self.inhibitory, "inhibitory_spike_total", "inhibitory_spike_counter"))
        for source, total, name in sources:
            totaliser = Synapses(source, self.controller, on_pre=f"{total}_post += 1", name=name)
            totaliser.connect()
            self._objects.append(totaliser)

    def _make_monitors(self):
        self.spike_monitor = SpikeMonitor(self.excitatory, name="excitatory_spikes")
        # Recorded just before the controller decides: describes the slot
        # that has just ended (sample index, intensity, response count).
        self.slot_monitor = StateMonitor(
            self.controller, ["index", "intensity", "count"], record=[0],
            dt=self.slot_duration, when="start",
            order=model_equations.SLOT_EVENT_ORDER["controller"] - 1, name="slot_monitor",
        )
        self._objects += [self.spike_monitor, self.slot_monitor]

    # ------------------------------------------------------------ learned state
    def _learned_variables(self):
        """(group, variable name, LearnedState key) of everything learned."""
        p = self.parameters
        variables = [(self.input_synapses, "w", "weights"), (self.excitatory, "theta", "theta")]
        variables += [(self.input_synapses, name, f"synapse.{name}")
                      for name in model_equations.learned_synapse_variables(p)]
        variables += [(self.excitatory, name, f"neuron.{name}")
                      for name in model_equations.learned_neuron_variables(p)]
        variables += [(self.inputs, name, f"input.{name}")
                      for name in model_equations.learned_input_variables(p)]
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

    def _broadcast(self, target, names):
        """Linked variables without linking: copy controller values once per slot.

        A controller → ``target`` Synapses without pathways whose per-slot
        operation (run on the host by brian2genn, right after the controller's
        decision: same order, later name) sets ``target.name = controller.source``
        for ``names = {name: source}``.
        """
        broadcast = Synapses(self.controller, target, name=f"controller_to_{target.name}")
        broadcast.connect()
        broadcast.run_regularly(
            "\n".join(f"{name}_post = {source}_pre" for name, source in names.items()),
            dt=self.slot_duration,
            when="start",
            order=model_equations.SLOT_EVENT_ORDER["controller"],
            name=f"controller_to_{target.name}_slot{self.formulation.slot_operation_suffix}",
        )
        return broadcast

    def __repr__(self):
        p = self.parameters
        lateral = "inhibitory layer" if p.has_inhibitory_layer else "direct lateral inhibition"
        return (
            f"SpikingNetwork(variant={p.variant!r}, n_inputs={p.n_inputs}, "
            f"n_neurons={p.n_neurons}, {lateral}, stream_capacity={self.stream_capacity}, "
            f"{self.formulation})"
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


def _present(dtypes, equations):
    """``dtypes`` restricted to the variables the equations define."""
    if dtypes is None:
        return None
    names = set(equations.names)
    return {name: dtype for name, dtype in dtypes.items() if name in names}


def _cuda_atomics_class():
    from brian2cuda.codeobject import CUDAStandaloneAtomicsCodeObject

    return CUDAStandaloneAtomicsCodeObject


def build_network(parameters, stream_capacity, seed=0, stimulus_values=None,
                  formulation=STANDARD):
    """Create the Brian2 objects of a network on the current device (`SpikingNetwork`)."""
    return SpikingNetwork(parameters, stream_capacity, seed, stimulus_values, formulation)


__all__ += ["initial_weights"]

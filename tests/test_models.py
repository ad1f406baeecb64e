"""Model equations against analytic solutions and the STDP rules, on every device."""

import numpy as np
import pytest
from brian2 import (
    Equations,
    Network,
    NeuronGroup,
    StateMonitor,
    Synapses,
    linked_var,
    mV,
    ms,
    run,
    second,
)
from scipy.integrate import solve_ivp

from spikedyn_brian.models import equations as model_equations
from spikedyn_brian.models.parameters import network_parameters


def _controller_stub():
    """A group providing the controller variables the models link to."""
    return NeuronGroup(1, "normalise_now : 1\nintensity : 1", name="controller_stub")


def _excitatory_group(parameters, threshold=None, extra="", dt=None):
    description = model_equations.excitatory_neuron(parameters)
    equations = description.equations
    if extra:
        equations = equations + Equations(extra)
    group = NeuronGroup(
        1,
        equations,
        threshold=threshold if threshold is not None else description.threshold,
        reset=description.reset,
        refractory=description.refractory,
        method=description.method,
        namespace=dict(description.namespace, normalisation_total=78.0),
        dt=dt if dt is not None else parameters.inputs.dt_ms * ms,
        name="excitatory",
    )
    stub = _controller_stub()
    stub.intensity = parameters.inputs.start_intensity
    group.normalise_now = linked_var(stub, "normalise_now", index=np.zeros(1, int))
    if "intensity" in group.equations.names:
        group.intensity = linked_var(stub, "intensity", index=np.zeros(1, int))
    return group, stub


@pytest.mark.parametrize("method", ["euler", "exponential_euler"])
def test_leak_matches_analytic_solution(brian_device, method):
    """No input: v relaxes to v_rest with tau = 100 ms; forward Euler (the
    original's integrator) as its discrete solution (1 - dt/tau)^n, exponential
    Euler as the exact one."""
    parameters = network_parameters("diehl-cook", 1, integration_method=method)
    group, stub = _excitatory_group(parameters)
    group.v = -55 * mV
    group.theta = 20 * mV
    monitor = StateMonitor(group, "v", record=0)
    run(200 * ms)
    times = monitor.t / second
    if method == "euler":
        decay = (1 - 0.5 / 100) ** np.round(times / 0.5e-3)
    else:
        decay = np.exp(-times / 0.1)
    expected = -65e-3 + 10e-3 * decay
    np.testing.assert_allclose(monitor.v[0] / mV, expected * 1e3, atol=1e-6)


@pytest.mark.parametrize("timer", ["original", "brian2-port"])
def test_timer_readings_set_the_shortest_interspike_interval(brian_device, timer):
    """Under constant strong drive the original's (inert) timer leaves the 5 ms
    refractory period as the shortest interval; the Brian2-port reading (0.1 s
    per s, threshold 5 ms) makes it 50 ms."""
    from brian2 import SpikeMonitor

    parameters = network_parameters("diehl-cook", 1)
    parameters.excitatory.timer = timer
    group, stub = _excitatory_group(parameters, extra="drive : 1")
    group.theta = 20 * mV
    group.plastic = 0.0
    group.run_regularly("ge = 5.0", dt=0.5 * ms)
    spikes = SpikeMonitor(group)
    run(300 * ms)
    intervals = np.diff(np.asarray(spikes.t / ms))
    assert len(intervals) > 3
    shortest = intervals.min()
    if timer == "original":
        assert 5.0 <= shortest < 10.0, intervals
    else:
        assert 50.0 <= shortest < 51.0, intervals


def test_conductance_trajectory_matches_ode_solution(brian_device):
    """A decaying excitatory + inhibitory conductance: v against a tight ODE solution."""
    parameters = network_parameters("diehl-cook", 1)
    exc = parameters.excitatory
    # No spikes: keep the threshold out of reach. A fine time step: the
    # equations are under test here, not the 0.5 ms discretisation (whose
    # exponential-Euler error on this 1 ms conductance pulse is ~3 mV at the
    # peak, documented in docs/models.md).
    group, stub = _excitatory_group(parameters, threshold="v > 100*mV", dt=0.01 * ms)
    group.v = -65 * mV
    group.ge = 30.0
    group.gi = 5.0
    monitor = StateMonitor(group, "v", record=0, dt=0.5 * ms)
    run(30 * ms)

    def rhs(t, y):
        ge = 30.0 * np.exp(-t / (exc.tau_ge_ms * 1e-3))
        gi = 5.0 * np.exp(-t / (exc.tau_gi_ms * 1e-3))
        v = y[0]
        return [((exc.v_rest_mV * 1e-3 - v) + ge * (exc.e_excitatory_mV * 1e-3 - v)
                 + gi * (exc.e_inhibitory_mV * 1e-3 - v)) / (exc.tau_membrane_ms * 1e-3)]

    times = np.asarray(monitor.t / second)
    reference = solve_ivp(rhs, (0, times[-1]), [-65e-3], t_eval=times, rtol=1e-10, atol=1e-13)
    simulated = np.asarray(monitor.v[0] / mV)
    # The excitatory pulse pulls v up by several mV, then it relaxes back.
    assert simulated.max() > -60
    # First-order error at dt = 0.01 ms stays below 0.1 mV, while a wrong
    # reversal potential or time constant is off by millivolts.
    np.testing.assert_allclose(simulated, reference.y[0] * 1e3, atol=0.1)


def _stdp_network(variant, pre_times_ms, post_times_ms, w0=0.5, parameters=None):
    parameters = parameters or network_parameters(variant, 1)
    post_threshold = " or ".join(f"abs(t - {value}*ms) < 0.25*dt" for value in post_times_ms)
    post, stub = _excitatory_group(parameters, threshold=post_threshold)
    post.plastic = 1.0
    post.theta = 20 * mV
    if "learning_rate_factor" in post.equations.names:
        post.learning_rate_factor = 1.0
    pre_threshold = " or ".join(f"abs(t - {value}*ms) < 0.25*dt" for value in pre_times_ms)
    description = model_equations.poisson_input(parameters)
    pre = NeuronGroup(
        1,
        "dpre/dt = -pre/tau_pre : 1"
        + ("\nfeature_frequency : 1" if model_equations.uses_asp_frequency(parameters) else ""),
        threshold=pre_threshold,
        namespace={"tau_pre": parameters.plasticity.tau_pre_ms * ms},
        method="exact",
        dt=parameters.inputs.dt_ms * ms,
        name="inputs",
    )
    # The model's spike event sets the trace to 1 before the synaptic pathways.
    code, when = description.events["spike"]
    pre.run_on_event("spike", "pre = 1", when=when)
    synapse_model = model_equations.input_synapses(parameters)
    synapses = Synapses(
        pre,
        post,
        synapse_model.equations,
        on_pre=synapse_model.on_pre,
        on_post=synapse_model.on_post,
        namespace=synapse_model.namespace,
        name="input_synapses",
    )
    synapses.connect()
    synapses.w = w0
    monitor = StateMonitor(synapses, "w", record=0)
    network = Network(pre, post, stub, synapses, monitor)
    return parameters, synapses, monitor, network


def test_diehl_cook_potentiation_needs_post2_before(brian_device):
    """pre 10 ms, post 20 ms, post 30 ms: only the second post spike potentiates."""
    parameters, synapses, monitor, network = _stdp_network("diehl-cook", [10], [20, 30])
    network.run(40 * ms)
    plasticity = parameters.plasticity
    w = np.asarray(monitor.w[0])
    times = np.asarray(monitor.t / ms)
    before_second = w[np.searchsorted(times, 29.9)]
    assert before_second == pytest.approx(0.5, abs=1e-12)
    expected = 0.5 + plasticity.nu_post * np.exp(-20 / plasticity.tau_pre_ms) * np.exp(
        -10 / plasticity.tau_post2_ms
    )
    assert float(synapses.w[0]) == pytest.approx(expected, rel=1e-9)


def test_diehl_cook_depression_at_pre_spike(brian_device):
    """post 10 ms, pre 15 ms: w -= nu_pre * post1(15 ms)."""
    parameters, synapses, monitor, network = _stdp_network("diehl-cook", [15], [10])
    network.run(20 * ms)
    plasticity = parameters.plasticity
    expected = 0.5 - plasticity.nu_pre * np.exp(-5 / plasticity.tau_post1_ms)
    assert float(synapses.w[0]) == pytest.approx(expected, rel=1e-9)


def test_spikedyn_update_happens_at_post_spike_only(brian_device):
    """SpikeDyn without spurious updates: Δw = nu_post (x_pre - x_target) at the post spike,
    and nothing at a pre spike that follows a post spike."""
    parameters, synapses, monitor, network = _stdp_network("spikedyn", [10, 40], [20])
    network.run(50 * ms)
    plasticity, spikedyn = parameters.plasticity, parameters.spikedyn
    expected = 0.5 + plasticity.nu_post * (np.exp(-10 / plasticity.tau_pre_ms) - spikedyn.x_target)
    assert float(synapses.w[0]) == pytest.approx(expected, rel=1e-9)


def test_theta_rises_per_spike_only_while_plastic(brian_device):
    parameters = network_parameters("diehl-cook", 1)
    group, stub = _excitatory_group(
        parameters, threshold="abs(t - 10*ms) < 0.25*dt or abs(t - 80*ms) < 0.25*dt"
    )
    group.theta = 20 * mV
    # Learning on for the first 50 ms, off afterwards.
    group.run_regularly("plastic = 1.0*int(t < 50*ms)", when="start")
    run(100 * ms)
    # One spike while plastic (+0.05 mV at 10 ms), decay with tau_theta only while
    # plastic (50 ms), no change at all afterwards (the spike at 80 ms adds nothing).
    tau = parameters.excitatory.tau_theta_ms
    expected = 20 * np.exp(-50 / tau) + 0.05 * np.exp(-39.5 / tau)
    assert float(group.theta[0] / mV) == pytest.approx(expected, rel=1e-9)
    increment = float(group.theta[0] / mV) - 20 * np.exp(-50 / tau)
    assert increment == pytest.approx(0.05, rel=1e-5)


def test_asp_significance_tracks_the_presynaptic_trace_at_post_spikes(brian_device):
    """ASP: each post spike moves significance towards x_pre: s += rate (x_pre - s)."""
    parameters, synapses, monitor, network = _stdp_network("asp", [10], [20, 30])
    network.run(40 * ms)
    rate = parameters.asp.significance_rate
    tau = parameters.plasticity.tau_pre_ms
    first = rate * np.exp(-10 / tau)
    expected = first + rate * (np.exp(-20 / tau) - first)
    assert float(synapses.significance[0]) == pytest.approx(expected, rel=1e-9)


def test_asp_potentiation_grows_with_input_frequency_and_shrinks_with_time(brian_device):
    """ASP's recovery phase: Diehl & Cook's potentiation times the time-dependent
    factor k and 1 + frequency_gain f_pre (pre 10 ms, post 20 and 30 ms: the
    second post spike potentiates)."""
    parameters, synapses, monitor, network = _stdp_network("asp", [10], [20, 30])
    post = network["excitatory"]
    post.learning_rate_factor = 0.5
    network["inputs"].feature_frequency = 0.4
    network.run(40 * ms)
    plasticity, asp = parameters.plasticity, parameters.asp
    expected = 0.5 + plasticity.nu_post * 0.5 * (1 + asp.frequency_gain * 0.4) * np.exp(
        -20 / plasticity.tau_pre_ms) * np.exp(-10 / plasticity.tau_post2_ms)
    assert float(synapses.w[0]) == pytest.approx(expected, rel=1e-9)


def test_asp_depression_shrinks_with_time(brian_device):
    """post 10 ms, pre 15 ms: w -= k nu_pre post1(15 ms), k the time-dependent factor."""
    parameters, synapses, monitor, network = _stdp_network("asp", [15], [10])
    network["excitatory"].learning_rate_factor = 0.25
    network.run(20 * ms)
    plasticity = parameters.plasticity
    expected = 0.5 - 0.25 * plasticity.nu_pre * np.exp(-5 / plasticity.tau_post1_ms)
    assert float(synapses.w[0]) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("baseline", [0.1, 0.0])
def test_asp_decay_phase_leaks_toward_the_baseline(brian_device, baseline):
    """Before a training presentation: w -= leak (1 - s) (w - baseline); weights
    below the baseline rise, significant ones (s = 1) stay; nothing in testing."""
    parameters = network_parameters("asp", 4)
    parameters.asp.baseline_weight = baseline
    model = model_equations.input_synapses(parameters)
    code, _ = model.events["weight_sum"]
    post = NeuronGroup(4, "normalise_flag : 1\ninput_weight_sum : 1", name="excitatory")
    pre = NeuronGroup(1, "", name="inputs")
    synapses = Synapses(pre, post, model.equations, namespace=model.namespace,
                        name="input_synapses")
    synapses.connect()
    synapses.w = [0.5, 0.02, 0.5, 0.5]
    synapses.significance = [0.0, 0.0, 1.0, 0.3]
    post.normalise_flag = [1, 1, 1, 0]
    synapses.run_regularly(code, dt=1 * ms, when="start")
    Network(pre, post, synapses).run(1 * ms)
    leak = parameters.asp.leak_per_sample
    w0, s = np.array([0.5, 0.02, 0.5, 0.5]), np.array([0.0, 0.0, 1.0, 0.3])
    expected = w0 - np.array([1, 1, 1, 0]) * leak * (1 - s) * (w0 - baseline)
    np.testing.assert_allclose(synapses.w[:], expected, rtol=1e-12)
    assert (synapses.w[1] > 0.02) == (baseline > 0.02)  # toward the baseline, from below too
    np.testing.assert_allclose(post.input_weight_sum[:], expected)


def test_asp_learning_rate_falls_with_training_presentations(brian_device):
    """n counts the training slots that ended (not testing ones);
    k = 1 / (1 + n / learning_rate_tau_presentations)."""
    parameters = network_parameters("asp", 2)
    parameters.asp.learning_rate_tau_presentations = 4.0
    events = ["presentation_count", "normalise_flag", "learning_rate_factor"]
    assert set(events) <= set(model_equations.excitatory_slot_events(parameters))
    group, stub = _spikedyn_slot_group(parameters, 2, events, flags=[1, 1, 0, 1, 1],
                                       spikes=[[0, 0]] * 5)
    group.training_presentations = [0, 10]
    monitor = StateMonitor(group, ["training_presentations", "learning_rate_factor"],
                           record=True, dt=10 * ms, when="end")
    run(50 * ms)
    n = np.asarray(monitor.training_presentations).T
    # Slot k (starting at 10 k ms) adds the flag of slot k - 1: 0, 1, 1, 0, 1.
    np.testing.assert_array_equal(n[:, 0], [0, 1, 2, 2, 3])
    np.testing.assert_array_equal(n[:, 1], [10, 11, 12, 12, 13])
    np.testing.assert_allclose(np.asarray(monitor.learning_rate_factor).T, 1 / (1 + n / 4.0))


def _spikedyn_slot_group(parameters, n, events, flags, spikes):
    """SpikeDyn excitatory neurons with their per-slot events (every 10 ms).

    At each slot start, before the events, the controller stub's training flag
    becomes ``flags[k]`` and the neurons' slot spike counts ``spikes[k]``.
    """
    from brian2 import TimedArray

    description = model_equations.excitatory_neuron(parameters)
    group = NeuronGroup(
        n, description.equations, threshold="False", reset=description.reset,
        namespace=dict(description.namespace, normalisation_total=78.0,
                       spike_table=TimedArray(np.asarray(spikes, dtype=float), dt=10 * ms)),
        dt=parameters.inputs.dt_ms * ms, name="excitatory",
    )
    stub = NeuronGroup(1, "normalise_now : 1\nintensity : 1", name="controller_stub",
                       namespace={"flag_table": TimedArray(np.asarray(flags, dtype=float),
                                                           dt=10 * ms)})
    stub.run_regularly("normalise_now = flag_table(t)", dt=10 * ms, when="start", order=0)
    group.normalise_now = linked_var(stub, "normalise_now", index=np.zeros(n, int))
    if "slot_spikes" in group.equations.names:
        group.run_regularly("slot_spikes = spike_table(t, i)", dt=10 * ms, when="start",
                            order=0)
    for event in events:
        group.run_regularly(model_equations.excitatory_slot_code(parameters, event),
                            dt=10 * ms, when="start",
                            order=model_equations.SLOT_EVENT_ORDER[event])
    return group, stub


def test_spikedyn_threshold_moves_towards_its_set_point(brian_device):
    """theta += rate (spikes - target) after each training slot, within
    [theta_initial, theta_max]; nothing at the first slot of a run (no slot has
    ended), nothing after a slot without learning."""
    parameters = network_parameters("spikedyn", 4)
    spikedyn = parameters.spikedyn
    counts = [0, 8, 0, 9]
    # Slot starts at 0, 10, 20, 30 ms: the count at slot k is that of slot k - 1.
    group, stub = _spikedyn_slot_group(
        parameters, 4, ["spike_history", "normalise_flag"],
        flags=[1, 1, 0, 0], spikes=[counts, counts, [0] * 4, counts])
    group.theta = [20, 20, 30, 99.99] * mV
    monitor = StateMonitor(group, "theta", record=True, dt=10 * ms, when="end")
    run(40 * ms)
    theta = np.asarray(monitor.theta / mV).T  # (slot, neuron)
    target = spikedyn.target_response / 4
    rate = spikedyn.theta_rate_mV
    low, high = parameters.excitatory.theta_initial_mV, spikedyn.theta_max_mV
    np.testing.assert_allclose(theta[0], [20, 20, 30, 99.99])  # t = 0: no slot has ended
    after_first = np.clip(np.array([20, 20, 30, 99.99]) + rate * (np.array(counts) - target),
                          low, high)
    np.testing.assert_allclose(theta[1], after_first)
    assert after_first[0] == low and after_first[3] == high  # both bounds act
    after_silent = np.clip(after_first - rate * target, low, high)
    np.testing.assert_allclose(theta[2], after_silent)  # a silent training slot
    np.testing.assert_allclose(theta[3], after_silent)  # a testing slot: no change


def test_spikedyn_learning_rate_factor_falls_with_activity(brian_device):
    """activity counts training spikes with a decay per training slot;
    k = exp(-activity / consolidation_spikes)."""
    parameters = network_parameters("spikedyn", 3)
    spikedyn = parameters.spikedyn
    group, stub = _spikedyn_slot_group(
        parameters, 3, ["spike_history", "normalise_flag", "learning_rate_factor"],
        flags=[1, 1], spikes=[[10, 0, 0], [10, 0, 0]])
    group.theta = 20 * mV
    group.activity = [0, 50, 500]
    run(20 * ms)
    decay = np.exp(-1 / spikedyn.activity_tau_presentations)
    activity = np.array([0, 50, 500]) * decay + [10, 0, 0]
    np.testing.assert_allclose(group.activity[:], activity)
    factor = np.asarray(group.learning_rate_factor[:])
    np.testing.assert_allclose(factor, np.exp(-activity / spikedyn.consolidation_spikes))
    assert factor[0] > factor[1] > factor[2]


def test_spikedyn_ablations_remove_their_state(brian_device):
    parameters = network_parameters("spikedyn", 2)
    parameters.spikedyn.adaptive_learning_rate = False
    parameters.spikedyn.adaptive_threshold = False
    names = model_equations.excitatory_neuron(parameters).equations.names
    assert "activity" not in names and "slot_spikes" not in names
    assert model_equations.excitatory_slot_events(parameters) == [
        "normalise_flag", "normalisation_factor", "weight_sum_reset"]
    assert model_equations.learned_neuron_variables(parameters) == ()

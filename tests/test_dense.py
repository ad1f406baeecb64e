"""The cpp_dense device: identical results to cpp_standalone, refusals, generated loops."""

import re

import brian2
import numpy as np
import pytest
from brian2.core.variables import ArrayVariable

from spikedyn_brian.data import load_embedded
from spikedyn_brian.devices import DeviceError
from spikedyn_brian.devices.backends import COMPILER_FLAGS, activate_device
from spikedyn_brian.devices.dense import DenseDeviceError, dense_standalone_device
from spikedyn_brian.engine import Engine, generate_project
from spikedyn_brian.models.parameters import network_parameters


def _stream(n, seed=0):
    digits = load_embedded("train")
    return digits.images[np.random.default_rng(seed).permutation(len(digits))[:n]]


VARIANTS = {
    "diehl-cook": {},
    "diehl-cook-brian2-port-timer": {"excitatory": {"timer": "brian2-port"}},
    "asp": {},
    "asp-leak-to-zero": {"asp": {"baseline_weight": 0.0, "time_dependent_learning_rate": False,
                                 "frequency_dependent_updates": False}},
    "spikedyn": {},
    "spikedyn-no-spurious-update-reduction": {"spikedyn": {"spurious_update_reduction": False}},
}


def _parameters(name, n):
    family = "spikedyn" if name.startswith("spikedyn") else (
        "asp" if name.startswith("asp") else "diehl-cook")
    parameters = network_parameters(family, n)
    for table, values in VARIANTS[name].items():
        for key, value in values.items():
            setattr(getattr(parameters, table), key, value)
    return parameters


def _neuron_state(engine):
    """Every state variable of every neuron group at the end of the last run (v, ge,
    gi, traces, θ, lastspike, the inputs' next spikes, the controller's counters)."""
    net = engine.backend.network
    groups = [net.inputs, net.excitatory, net.controller]
    if net.inhibitory is not None:
        groups.append(net.inhibitory)
    state = {}
    for group in groups:
        for name, variable in group.variables.items():
            if (isinstance(variable, ArrayVariable) and not name.startswith("_")
                    and variable.owner.name == group.name):
                state[f"{group.name}.{name}"] = np.array(variable.get_value(), copy=True)
    return state


@pytest.mark.standalone
@pytest.mark.parametrize("name", list(VARIANTS))
def test_dense_device_is_identical_to_cpp_standalone(name, build_root):
    """Same input spikes: the same spike counts, weights, thresholds and learned
    state, bit for bit, while learning (150 digits) and testing (50); and every
    neuron's state (v, conductances, traces, refractoriness, next input spikes)
    at the end of each stream, bit for bit."""
    parameters = _parameters(name, 30)
    train, test = _stream(150, seed=1), _stream(50, seed=2)
    results = {}
    for device in ("cpp_standalone", "cpp_dense"):
        engine = Engine(parameters, device, build_root=build_root, chunk_samples=150)
        learned = engine.run_stream(train, engine.initial_state(3), plastic=True, seed=4)
        learned_neurons = _neuron_state(engine)
        tested = engine.run_stream(test, learned.state, plastic=False, seed=5)
        tested_neurons = _neuron_state(engine)
        results[device] = (learned, tested, learned_neurons, tested_neurons)
        if device == "cpp_dense":
            dense = engine.backend.device
            assert "input_synapses_pre" in dense.dense_pathways
            assert "input_synapses_post" in dense.dense_pathways
            assert "inputs" in dense.fused_groups  # one pass: update and threshold
            assert any(code.startswith("input_synapses_weight_sum")
                       for code in dense.dense_synapse_code)
        engine.close()
        del engine
    (a_learn, a_test, *a_neurons), (b_learn, b_test, *b_neurons) = (
        results["cpp_standalone"], results["cpp_dense"])
    assert a_learn.spike_counts.sum() > 0
    for a, b in ((a_learn, b_learn), (a_test, b_test)):
        np.testing.assert_array_equal(a.spike_counts, b.spike_counts)
        np.testing.assert_array_equal(a.presentations, b.presentations)
        assert a.input_spikes_total == b.input_spikes_total
        for key, values in a.state.arrays().items():
            np.testing.assert_array_equal(values, b.state.arrays()[key], err_msg=key)
    for a, b in zip(a_neurons, b_neurons):
        assert a.keys() == b.keys() and "excitatory.v" in a
        for key, values in a.items():
            # Bit for bit: the same float64 bytes (-0.0 against 0.0 would differ).
            assert values.tobytes() == b[key].tobytes(), key


def test_dense_device_refuses_input_delays_before_anything_is_built(tmp_path):
    parameters = network_parameters("diehl-cook", 5)
    parameters.plasticity.max_input_delay_ms = 10.0
    with pytest.raises(DeviceError, match="cpp_dense.*input delays.*cpp_standalone"):
        Engine(parameters, "cpp_dense", build_root=tmp_path)
    assert not any(tmp_path.iterdir())


def _toy_network(connect, require):
    """Two tiny groups joined by ``connect``; the device requires its synapses dense."""
    device = activate_device("cpp_dense", None, build_on_run=False, require_dense=require)
    source = brian2.NeuronGroup(3, "v : 1", threshold="v > 1", reset="v = 0", name="source")
    target = brian2.NeuronGroup(4, "v : 1", threshold="v > 1", reset="v = 0", name="target")
    synapses = brian2.Synapses(source, target, "w : 1", on_pre="v_post += w",
                               on_post="w += 0.1", name="toy")
    connect(synapses)
    network = brian2.Network(source, target, synapses)
    return device, network


@pytest.mark.parametrize("connect, reason", [
    (lambda s: s.connect(condition="i != j"), "not created by one plain all-to-all connect"),
    (lambda s: s.connect(j="i"), "not created by one plain all-to-all connect"),
    (lambda s: (s.connect(), s.connect(i=0, j=0)), r"2 connect call\(s\)"),
    (lambda s: (s.connect(), setattr(s, "delay", "rand()*ms")), "per-synapse"),
])
def test_device_refuses_a_required_pathway_it_cannot_make_dense(connect, reason, tmp_path):
    device, network = _toy_network(connect, require=["toy"])
    try:
        with pytest.raises(brian2.core.base.BrianObjectException) as caught:
            network.run(1 * brian2.ms)
        cause = caught.value.__cause__ or caught.value
        assert isinstance(cause, DenseDeviceError)
        assert re.search(reason, str(cause)) and "cpp_standalone" in str(cause)
    finally:
        activate_device("runtime")


def test_other_pathways_fall_back_to_brian2(tmp_path):
    device, network = _toy_network(lambda s: s.connect(condition="i != j"), require=[])
    try:
        network.run(1 * brian2.ms)
        device.build(directory=str(tmp_path / "toy"), compile=False, run=False)
        assert device.dense_pathways == []
        code = (tmp_path / "toy" / "code_objects" / "toy_pre_codeobject.cpp").read_text()
        assert "peek()" in code  # Brian2's SpikeQueue path
    finally:
        activate_device("runtime")


def test_generated_dense_loops_have_no_spike_queue_or_indirection(tmp_path):
    """The input pathway: a contiguous row loop per spiking input (on_pre), a
    column loop per spiking neuron (on_post), the model's own update code."""
    directory = generate_project(network_parameters("diehl-cook", 20), "cpp_dense",
                                 tmp_path / "project", stream_capacity=10)
    sources = directory / "code_objects"
    pre = (sources / "input_synapses_pre_codeobject.cpp").read_text()
    post = (sources / "input_synapses_post_codeobject.cpp").read_text()
    push = (sources / "input_synapses_pre_push_spikes.cpp").read_text()
    assert "peek()" not in pre and "push(" not in push
    assert "_synaptic_post[_idx]" not in pre and "_synaptic_pre[_idx]" not in post
    assert "_dense_row + _dense_j" in pre and "_dense_i * 20 + _dense_j" in post
    assert "_array_inputs__spikespace" in pre and "_array_excitatory__spikespace" in post
    assert re.search(r"w = _clip\(w - \(_lio_\d+ \* post1_post\)", pre)  # the model's rule
    # Lateral inhibition (i != j) stays on Brian2's generic path.
    lateral = (sources / "inhibitory_to_excitatory_pre_codeobject.cpp").read_text()
    assert "peek()" in lateral
    assert repr(dense_standalone_device).startswith("DenseStandaloneDevice(")


def _two_groups(device_name, directory=None, threshold="v > 1", equations=None,
                method="exact", refractory=False, extra=None, duration=1 * brian2.ms):
    """Two small neuron groups driven towards their thresholds, run on ``device_name``
    (not built): `group` (``equations``, ``threshold``) and `other`."""
    device = activate_device(device_name, directory, build_on_run=False)
    brian2.prefs.codegen.cpp.extra_compile_args_gcc = list(COMPILER_FLAGS)
    brian2.defaultclock.dt = 0.1 * brian2.ms
    equations = equations or "dv/dt = (drive - v)/(10*ms) : 1 (unless refractory)\ndrive : 1"
    group = brian2.NeuronGroup(13, equations, threshold=threshold, reset="v = 0",
                               refractory=2 * brian2.ms if refractory else False,
                               method=method, name="group")
    if "drive" in group.variables:
        group.drive = "1.2 + 0.15*i"
    if "tau" in group.variables:
        group.tau = "(5 + i)*ms"
    other = brian2.NeuronGroup(3, "dw/dt = (2 - w)/(5*ms) : 1", threshold="w > 1", reset="w = 0",
                               method="exact", name="other")
    if extra is not None:
        extra(group, other)
    monitor = brian2.SpikeMonitor(group, name="spikes")
    network = brian2.Network(group, other, monitor)
    network.run(duration, namespace={})
    return device, group, monitor


@pytest.mark.parametrize("options, reason", [
    ({}, None),
    ({"extra": lambda group, other: group.run_regularly("v += 0.01", when="groups", order=1,
                                                        name="kick")},
     r"'kick_codeobject' runs in between and uses v"),
    ({"threshold": "v > 1 and rand() < 0.5"}, "stateful function"),
    ({"equations": "dv/dt = (drive - v)/(10*ms) : 1\ndrive : 1\nneighbour : 1 (linked)",
      "threshold": "neighbour > 1",
      "extra": lambda group, other: setattr(group, "neighbour", brian2.linked_var(
          group, "v", index=(np.arange(13) + 1) % 13))},
     "reads 'neighbour' of other neurons"),
    ({"equations": "dv/dt = (2 - v)/tau : 1\ntau : second", "method": "exponential_euler"},
     "calls exp, whose last bit depends on how the compiler vectorises"),
])
def test_one_pass_per_group_only_where_the_order_and_the_arithmetic_allow(options, reason,
                                                                         tmp_path):
    """The threshold joins its state updater's loop unless something in between
    touches its variables, it draws random numbers, or the loop calls exp."""
    try:
        device, _, _ = _two_groups("cpp_dense", **options)
        device.build(directory=str(tmp_path / "toy"), compile=False, run=False)
        main = (tmp_path / "toy" / "main.cpp").read_text()
        assert "other" in device.fused_groups  # nothing in its way
        assert "_run_other_stateupdater_thresholder_codeobject" in main
        if reason is None:
            assert "group" in device.fused_groups
            assert "_run_group_stateupdater_thresholder_codeobject" in main
            assert "_run_group_spike_thresholder_codeobject);" not in main
        else:
            assert "group" not in device.fused_groups
            assert re.search(reason, device.unfused_groups["group"])
            assert "_run_group_spike_thresholder_codeobject);" in main
    finally:
        activate_device("runtime")


@pytest.mark.standalone
def test_one_pass_per_group_is_identical_to_cpp_standalone(tmp_path):
    """A refractory group and another, fused, against cpp_standalone: the same
    spikes and the same final state, bit for bit (the fused refractory path)."""
    results = {}
    try:
        for name in ("cpp_standalone", "cpp_dense"):
            device, group, monitor = _two_groups(name, refractory=True,
                                                 duration=300 * brian2.ms)
            device.build(directory=str(tmp_path / name), compile=True, run=True,
                         with_output=False)
            if name == "cpp_dense":
                assert set(device.fused_groups) == {"group", "other"}
            results[name] = (np.array(monitor.i[:]), np.array(monitor.t_[:]),
                             np.array(group.v[:]), np.array(group.lastspike_[:]),
                             np.array(group.not_refractory[:]))
    finally:
        activate_device("runtime")
    standalone, dense = results["cpp_standalone"], results["cpp_dense"]
    assert len(standalone[0]) > 50
    for a, b in zip(standalone, dense):
        assert a.tobytes() == b.tobytes()

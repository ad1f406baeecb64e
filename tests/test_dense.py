"""The cpp_dense device: identical results to cpp_standalone, refusals, generated loops."""

import re

import brian2
import numpy as np
import pytest

from spikedyn_brian.data import load_embedded
from spikedyn_brian.devices import DeviceError
from spikedyn_brian.devices.backends import activate_device
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


@pytest.mark.standalone
@pytest.mark.parametrize("name", list(VARIANTS))
def test_dense_device_is_identical_to_cpp_standalone(name, build_root):
    """Same input spikes: the same spike counts, weights, thresholds and learned
    state, bit for bit, while learning (150 digits) and testing (50)."""
    parameters = _parameters(name, 30)
    train, test = _stream(150, seed=1), _stream(50, seed=2)
    results = {}
    for device in ("cpp_standalone", "cpp_dense"):
        engine = Engine(parameters, device, build_root=build_root, chunk_samples=150)
        learned = engine.run_stream(train, engine.initial_state(3), plastic=True, seed=4)
        tested = engine.run_stream(test, learned.state, plastic=False, seed=5)
        results[device] = (learned, tested)
        if device == "cpp_dense":
            assert "input_synapses_pre" in engine.backend.device.dense_pathways
            assert "input_synapses_post" in engine.backend.device.dense_pathways
        engine.close()
        del engine
    (a_learn, a_test), (b_learn, b_test) = results["cpp_standalone"], results["cpp_dense"]
    assert a_learn.spike_counts.sum() > 0
    for a, b in ((a_learn, b_learn), (a_test, b_test)):
        np.testing.assert_array_equal(a.spike_counts, b.spike_counts)
        np.testing.assert_array_equal(a.presentations, b.presentations)
        assert a.input_spikes_total == b.input_spikes_total
        for key, values in a.state.arrays().items():
            np.testing.assert_array_equal(values, b.state.arrays()[key], err_msg=key)


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

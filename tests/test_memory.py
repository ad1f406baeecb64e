"""The memory model against the arrays Brian2 allocates, and its arithmetic."""

import brian2
import numpy as np
import pytest

from spikedyn_brian.analysis.memory import MemoryItem, memory_footprint
from spikedyn_brian.models.parameters import network_parameters
from spikedyn_brian.network import build_network


@pytest.fixture
def runtime_device():
    brian2.device.reinit()
    brian2.device.activate()
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "numpy"
    yield
    brian2.device.reinit()
    brian2.device.activate()
    brian2.set_device("runtime")


def _brian2_nbytes(network, item):
    objects = {obj.name: obj for obj in network.network.objects}
    variable = objects[item.group].variables[item.variable]
    return variable.get_value().nbytes, np.dtype(variable.dtype).itemsize * 8


@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn", "asp"])
@pytest.mark.parametrize("n_neurons", [5, 10])
def test_model_equals_brian2_arrays(runtime_device, variant, n_neurons):
    """At Brian2's precision (float64, int32 indices) every mapped item has its array's bytes."""
    parameters = network_parameters(variant, n_neurons)
    network = build_network(parameters, stream_capacity=2)
    footprint = memory_footprint(parameters, weight_bits=64, state_bits=64,
                                 connectivity="index-list")
    mapped = footprint.brian2_items()
    assert mapped, "no item is mapped to a Brian2 array"
    model_total = 0
    brian2_total = 0
    for item in mapped:
        nbytes, bits = _brian2_nbytes(network, item)
        assert item.bits == bits, item
        assert item.nbytes == nbytes, item
        model_total += item.nbytes
        brian2_total += nbytes
    assert model_total == brian2_total
    # The unmapped items are the namespace constants and the one-image buffer.
    unmapped = {item.variable for item in footprint.items if item.group is None}
    expected = {"pixels"} | ({"w_exc_to_inh", "w_inh_to_exc"} if variant != "spikedyn"
                             else {"w_lateral"})
    assert unmapped == expected


def test_spikedyn_at_n5_in_exact_bytes():
    """Hand count, SpikeDyn N = 5, 8-bit weights, 32-bit state, implicit connectivity."""
    footprint = memory_footprint(network_parameters("spikedyn", 5), weight_bits=8, state_bits=32)
    by_component = footprint.by_component()
    assert by_component["weights"] == 784 * 5  # one byte per weight
    # v, ge, gi, theta, lastspike, input_weight_sum, slot_spikes, activity,
    # learning_rate_factor: 9 × 5 × 4 bytes (no post traces, no timer: the
    # original's timer is inert)
    assert by_component["excitatory_state"] == 9 * 5 * 4
    assert by_component["input_state"] == 3 * 784 * 4
    assert by_component["lateral_inhibition"] == 4  # one constant weight
    assert "inhibitory_state" not in by_component
    assert by_component["controller"] == 16
    assert by_component["input_buffer"] == 784
    assert footprint.total_bytes == 3920 + 180 + 9408 + 4 + 16 + 784


def test_diehl_cook_pays_for_traces_and_inhibitory_layer():
    n = 400
    dc = memory_footprint(network_parameters("diehl-cook", n))
    sd = memory_footprint(network_parameters("spikedyn", n))
    # Two more excitatory variables (post1, post2), three inhibitory ones, one more
    # constant; SpikeDyn has three of its own (slot_spikes, activity, learning_rate_factor).
    assert dc.total_bytes - sd.total_bytes == (2 + 3 - 3) * n * 4 + 4


def test_weight_bits_pack_below_a_byte():
    footprint = memory_footprint(network_parameters("spikedyn", 3), weight_bits=4)
    assert footprint.by_component()["weights"] == 784 * 3 // 2
    assert MemoryItem("weights", None, "w", 3, 4).nbytes == 2  # 12 bits round up


def test_index_list_adds_two_int32_per_synapse():
    parameters = network_parameters("spikedyn", 10)
    implicit = memory_footprint(parameters)
    listed = memory_footprint(parameters, connectivity="index-list")
    synapses = 784 * 10 + 10 * 9
    assert listed.total_bytes - implicit.total_bytes == synapses * 2 * 4


def test_bad_arguments_name_the_problem():
    parameters = network_parameters("spikedyn", 10)
    with pytest.raises(ValueError, match="connectivity 'dense' is unknown"):
        memory_footprint(parameters, connectivity="dense")
    with pytest.raises(ValueError, match="weight_bits must be a positive whole number"):
        memory_footprint(parameters, weight_bits=0)
    assert "total=" in repr(memory_footprint(parameters))


def test_quantised_weights_take_two_to_the_bits_levels():
    from spikedyn_brian.analysis.memory import quantise_weights

    weights = np.array([0.0, 0.1, 0.5, 0.99, 1.0, 1.2])
    at_2 = quantise_weights(weights, 2)  # levels 0, 1/3, 2/3, 1
    np.testing.assert_allclose(at_2, [0.0, 0.0, 2 / 3, 1.0, 1.0, 1.0])
    assert len(np.unique(quantise_weights(np.linspace(0, 1, 1000), 4))) == 16
    assert quantise_weights(weights, 32)[1] == np.float32(0.1)

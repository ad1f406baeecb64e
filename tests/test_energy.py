"""Energy model: operation counts against spike monitors, costs, tables, rates."""

import brian2
import numpy as np
import pytest
from brian2 import SpikeMonitor, second, volt

from spikedyn_brian.analysis import energy
from spikedyn_brian.analysis.energy import (
    HOROWITZ_45NM,
    OPERATIONS,
    ActivityRates,
    EnergyTable,
    energy_per_sample,
    estimate_operation_counts,
    operation_counts,
    operation_costs,
)
from spikedyn_brian.data import load_digits
from spikedyn_brian.engine import Engine
from spikedyn_brian.models.parameters import network_parameters
from spikedyn_brian.network import build_network, initial_weights

N_NEURONS = 3


def _run_with_monitors(variant, images, plastic=True, seed=1):
    """Run a stream on the runtime device with spike monitors on every group."""
    brian2.device.reinit()
    brian2.device.activate()
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "numpy"
    brian2.seed(seed)
    parameters = network_parameters(variant, N_NEURONS)
    net = build_network(parameters, len(images), stimulus_values=images)
    net.controller.n_stream = len(images)
    net.controller.plastic = float(plastic)
    net.excitatory.plastic = float(plastic)
    net.input_synapses.w = initial_weights(parameters, seed)
    net.excitatory.theta = parameters.excitatory.theta_initial_mV * 1e-3 * volt
    input_monitor = SpikeMonitor(net.inputs)
    net.network.add(input_monitor)
    inhibitory_monitor = None
    if net.inhibitory is not None:
        inhibitory_monitor = SpikeMonitor(net.inhibitory)
        net.network.add(inhibitory_monitor)
    net.network.run(1e6 * second, namespace={})
    monitors = {
        "input": len(input_monitor.i),
        "excitatory": len(net.spike_monitor.i),
        "inhibitory": len(inhibitory_monitor.i) if inhibitory_monitor is not None else 0,
        "slots": int(np.sum(np.asarray(net.slot_monitor.index[0])[1:] < len(images))),
        "steps": int(round(float(net.network.t / parameters.inputs.dt_ms / 1e-3 / second))),
        "controller_input": int(net.controller.input_spike_total[0]),
        "controller_inhibitory": int(net.controller.inhibitory_spike_total[0]),
    }
    return parameters, monitors


@pytest.fixture(scope="module")
def two_digits():
    digits = load_digits("test")
    # Two faint digits (pixels / 4): few input spikes, a count one can check by hand.
    return digits.images[[0, 150]] / 4.0


@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn"])
def test_counts_equal_spike_monitor_derivation(variant, two_digits):
    parameters, seen = _run_with_monitors(variant, two_digits)
    # The controller's counters (what the engine reports) equal the monitors.
    assert seen["controller_input"] == seen["input"]
    assert seen["controller_inhibitory"] == seen["inhibitory"]
    assert seen["input"] > 0 and seen["excitatory"] > 0
    # Every neuron is updated once per step: 1000 steps per 500 ms slot.
    assert seen["steps"] == seen["slots"] * 1000
    counts = operation_counts(parameters, "train", n_samples=2, slots=seen["slots"],
                              input_spikes=seen["input"], excitatory_spikes=seen["excitatory"],
                              inhibitory_spikes=seen["inhibitory"])
    n, n_in, slots = N_NEURONS, 784, seen["slots"]
    diehl_cook = variant == "diehl-cook"
    by_hand = {
        "excitatory_update": n * slots * 1000,
        "inhibitory_update": n * slots * 1000 if diehl_cook else 0,
        "input_update": n_in * slots * 1000,
        "input_spike": seen["input"],
        "slot_draw": n_in * slots,
        "input_synaptic_event": seen["input"] * n,
        "lateral_synaptic_event": (seen["excitatory"] + seen["inhibitory"] * (n - 1)
                                   if diehl_cook else seen["excitatory"] * (n - 1)),
        # Diehl & Cook depresses at every input spike, SpikeDyn never.
        "stdp_depression": seen["input"] * n if diehl_cook else 0,
        "stdp_potentiation": seen["excitatory"] * n_in,
        "excitatory_spike": seen["excitatory"],
        "inhibitory_spike": seen["inhibitory"],
        "normalisation_synapse": n_in * n * slots,
        "normalisation_neuron": n * slots,
    }
    assert set(by_hand) == set(OPERATIONS)
    for name, value in by_hand.items():
        assert counts.per_sample[name] == value / 2, name


def test_engine_result_gives_the_same_counts(build_root, two_digits):
    parameters = network_parameters("spikedyn", N_NEURONS)
    engine = Engine(parameters, device="runtime", build_root=build_root)
    result = engine.run_stream(two_digits, engine.initial_state(0), plastic=False, seed=3)
    counts = energy.operation_counts_from_result(parameters, result, "inference")
    assert counts.per_sample["input_synaptic_event"] == result.input_spikes_total * N_NEURONS / 2
    assert counts.per_sample["lateral_synaptic_event"] == result.spikes_total * (N_NEURONS - 1) / 2
    assert counts.per_sample["stdp_potentiation"] == 0
    assert counts.per_sample["normalisation_synapse"] == 0
    assert counts.totals["slots"] == result.slots


def test_inference_has_no_learning_operations():
    parameters = network_parameters("diehl-cook", 10)
    train = operation_counts(parameters, "train", 1, 1, 2000, 20, 20)
    inference = operation_counts(parameters, "inference", 1, 1, 2000, 20, 20)
    for name in ("stdp_depression", "stdp_potentiation", "normalisation_synapse",
                 "normalisation_neuron"):
        assert train.per_sample[name] > 0
        assert inference.per_sample[name] == 0
    assert train.per_sample["input_synaptic_event"] == inference.per_sample["input_synaptic_event"]


def test_energy_of_synaptic_events_by_hand():
    """10 input events: ge += w reads w and ge, one add, writes ge."""
    parameters = network_parameters("spikedyn", 1)
    counts = operation_counts(parameters, "inference", 1, 0, 10, 0)
    only_events = dict.fromkeys(OPERATIONS, 0.0)
    only_events["input_synaptic_event"] = 10.0
    counts.per_sample = only_events
    at_32 = energy_per_sample(parameters, counts, HOROWITZ_45NM, weight_bits=32)
    assert at_32.joules == pytest.approx(10 * (0.9 + 2 * 5.0 + 5.0) * 1e-12)
    at_8 = energy_per_sample(parameters, counts, HOROWITZ_45NM, weight_bits=8)
    assert at_8.joules == pytest.approx(10 * (0.9 + 1.25 * 5.0 + 5.0) * 1e-12)
    assert at_8.primitives["memory_read"] == pytest.approx(12.5)
    dataset = at_8.to_dataset()
    assert float(dataset.energy_joules_per_sample.sum()) == pytest.approx(at_8.joules)
    assert dataset.energy_joules_per_sample.attrs["units"] == "J"


def test_spurious_update_reduction_changes_the_cost_model():
    spikedyn = operation_costs(network_parameters("spikedyn", 4))
    no_reduction = network_parameters("spikedyn", 4)
    no_reduction.spikedyn.spurious_update_reduction = False
    baseline_rule = operation_costs(no_reduction)
    # Without post traces the excitatory update reads two fewer variables.
    assert baseline_rule["excitatory_update"].memory_read - spikedyn[
        "excitatory_update"].memory_read == 2
    counts = operation_counts(no_reduction, "train", 1, 1, 100, 1)
    assert counts.per_sample["stdp_depression"] == 400


def test_rate_estimate_uses_the_rates():
    parameters = network_parameters("diehl-cook", 100)
    rates = ActivityRates(2000.0, 20.0, 0.5, 1.5, "test")
    counts = estimate_operation_counts(parameters, "train", rates)
    assert counts.per_sample["input_spike"] == 3000.0
    assert counts.per_sample["excitatory_spike"] == 30.0
    assert counts.per_sample["inhibitory_spike"] == 15.0
    assert counts.per_sample["excitatory_update"] == 100 * 1.5 * 1000
    assert "activity rates (test)" in counts.source


def test_energy_table_from_toml(tmp_path):
    path = tmp_path / "platform.toml"
    path.write_text('name = "DRAM"\nmemory_read_pj = 640.0\nmemory_write_pj = 640.0\n')
    table = EnergyTable.from_toml(path)
    assert table.memory_read_pj == 640.0 and table.float_mult_pj == 3.7
    path.write_text("memory_reed_pj = 1.0\n")
    with pytest.raises(ValueError, match="unknown key\\(s\\) memory_reed_pj"):
        EnergyTable.from_toml(path)


def test_phase_is_checked():
    with pytest.raises(ValueError, match="phase 'test' is unknown"):
        operation_counts(network_parameters("spikedyn", 2), "test", 1, 1, 1, 1)


def test_estimate_command_prints_memory_and_both_energies(capsys):
    from spikedyn_brian.analysis.memory import memory_footprint
    from spikedyn_brian.cli import main

    assert main(["estimate", "--network", "spikedyn", "--neurons", "400",
                 "--weight-bits", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    parameters = network_parameters("spikedyn", 400)
    nbytes = memory_footprint(parameters, weight_bits=8).total_bytes
    _, train, inference = energy.analytical_profile(parameters, weight_bits=8)
    assert out[1] == f"memory: {nbytes} bytes ({nbytes / 1000:.1f} kB)"
    assert out[2].startswith(f"energy per training sample: {train.joules:.4e} J")
    assert out[3].startswith(f"energy per inference sample: {inference.joules:.4e} J")
    assert train.joules > inference.joules


def test_estimate_command_rejects_a_bad_table(tmp_path, capsys):
    from spikedyn_brian.cli import main

    table = tmp_path / "t.toml"
    table.write_text("dram_pj = 640.0\n")
    assert main(["estimate", "--energy-table", str(table)]) == 2
    assert "unknown key(s) dram_pj" in capsys.readouterr().err

"""The static MNIST protocol end to end: it learns, stores, and resumes."""

import json

import numpy as np
import pytest
import xarray

from spikedyn_brian.config import load_experiment
from spikedyn_brian.devices.backends import CppStandaloneBackend
from spikedyn_brian.engine import Engine
from spikedyn_brian.protocols import static_mnist


def _experiment(tmp_path, build_root, name="run", **stream):
    overrides = {
        # The published constants: what this short stream was calibrated on (the
        # shipped tuned set is tuned for 1,000 digits per class of a continual stream).
        "network": {"variant": "diehl-cook", "n_neurons": 30, "parameter_set": "published"},
        "stream": dict(
            {"classes": [0, 1, 2], "train_samples": 300, "test_samples": 90, "seed": 2}, **stream
        ),
        "device": {"name": "cpp_standalone", "build_dir": str(build_root), "chunk_samples": 100},
        "output": {"path": str(tmp_path / f"{name}.nc"), "progress": False},
    }
    return load_experiment(static_mnist.DEFAULT_CONFIG, overrides)


@pytest.fixture(scope="module")
def learned(tmp_path_factory, build_root):
    tmp_path = tmp_path_factory.mktemp("static")
    experiment = _experiment(tmp_path, build_root)
    dataset = static_mnist.run(experiment)
    return experiment, dataset


@pytest.mark.standalone
def test_learns_three_classes_well_above_chance(learned):
    experiment, dataset = learned
    # Chance is 1/3; an untrained network with random weights stays near it.
    assert float(dataset.accuracy) > 0.7
    assert set(np.unique(dataset.test_labels.values)) == {0, 1, 2}
    # Every class is represented by some neurons.
    assert set(np.unique(dataset.assignments.values)) >= {0, 1, 2}


@pytest.mark.standalone
def test_results_file_is_self_describing(learned):
    experiment, dataset = learned
    stored = xarray.open_dataset(experiment.output.path)
    try:
        assert stored.accuracy.attrs["prediction_rule"] == "all_activity"
        assert float(stored.accuracy) == pytest.approx(float(dataset.accuracy))
        assert stored.attrs["train_seconds_per_sample"] > 0
        assert stored.weights.dims == ("input", "neuron")
        assert stored.weights.shape == (784, 30)
        assert stored.test_spike_counts.shape == (90, 30)
        assert stored.theta.attrs["units"] == "mV"
        config = json.loads(stored.attrs["config"])
        assert config["network"]["n_neurons"] == 30
        assert config["stream"]["classes"] == [0, 1, 2]
        versions = json.loads(stored.attrs["versions"])
        assert versions["brian2"].startswith("2.10")
        # Accuracy is recomputable from the stored predictions.
        rule_index = list(stored.rule.values).index("all_activity")
        predictions = stored.predictions.values[rule_index]
        assert np.mean(predictions == stored.test_labels.values) == pytest.approx(
            float(stored.accuracy)
        )
        # Training learned: weights moved away from the normalised start and
        # every neuron's inputs still sum to about 78 (normalised before each
        # sample, then changed by the last sample's STDP only).
        sums = stored.weights.sum("input").values
        np.testing.assert_allclose(sums, 78, rtol=0.05)
    finally:
        stored.close()


@pytest.mark.standalone
def test_interrupted_run_resumes_to_identical_results(tmp_path, build_root, learned, monkeypatch):
    experiment, complete = learned
    interrupted = _experiment(tmp_path, build_root, name="resumed")
    calls = {"n": 0}
    original = CppStandaloneBackend.run_chunk

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CppStandaloneBackend, "run_chunk", failing)
    with pytest.raises(KeyboardInterrupt):
        static_mnist.run(interrupted)
    checkpoint = tmp_path / "resumed.checkpoint.npz"
    assert checkpoint.exists()
    assert not (tmp_path / "resumed.nc").exists()
    monkeypatch.setattr(CppStandaloneBackend, "run_chunk", original)
    counted = {"n": 0}

    def counting(self, *args, **kwargs):
        counted["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CppStandaloneBackend, "run_chunk", counting)
    resumed = static_mnist.run(interrupted)
    # 3 + 3 + 1 chunks in all; the first two were kept from the interrupted run.
    assert counted["n"] == 5
    assert not checkpoint.exists()
    np.testing.assert_array_equal(resumed.weights.values, complete.weights.values)
    np.testing.assert_array_equal(
        resumed.test_spike_counts.values, complete.test_spike_counts.values
    )
    assert float(resumed.accuracy) == float(complete.accuracy)


def test_protocol_runs_on_the_runtime_device(tmp_path):
    """The same protocol and results code on Brian2's runtime device (tiny run)."""
    overrides = {
        "network": {"variant": "spikedyn", "n_neurons": 6},
        "stream": {"classes": [0, 1], "train_samples": 4, "test_samples": 4, "seed": 1},
        "device": {"name": "runtime"},
        "output": {"path": str(tmp_path / "runtime.nc"), "progress": False},
    }
    experiment = load_experiment(static_mnist.DEFAULT_CONFIG, overrides)
    dataset = static_mnist.run(experiment)
    assert dataset.attrs["device"] == "runtime"
    assert dataset.test_spike_counts.shape == (4, 6)
    assert dataset.train_presentations.values.min() >= 1
    assert 0.0 <= float(dataset.accuracy) <= 1.0
    assert (tmp_path / "runtime.nc").exists()

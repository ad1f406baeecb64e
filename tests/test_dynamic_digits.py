"""The dynamic-digits protocol: class-incremental streams, evaluation, storage."""

import json

import numpy as np
import pytest
import xarray

from spikedyn_brian.config import ConfigError, ContinualExperiment, load_experiment
from spikedyn_brian.data import load_embedded
from spikedyn_brian.protocols import dynamic_digits


def _experiment(tmp_path, build_root=None, **stream):
    overrides = {
        "network": {"variant": "spikedyn", "n_neurons": 20},
        "stream": dict({"task_order": [0, 1], "samples_per_task": 40, "probe_per_class": 10,
                        "test_per_class": 20, "seed": 3}, **stream),
        "device": {"name": "cpp_standalone", "build_dir": str(build_root or tmp_path),
                   "chunk_samples": 50},
        "output": {"path": str(tmp_path / "dynamic.nc"), "progress": False},
    }
    return load_experiment(dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)


def test_stream_is_class_incremental(tmp_path):
    experiment = _experiment(tmp_path, task_order=[3, 1, 4, 5, 9, 2], classes_per_task=2,
                             samples_per_task=30)
    labels = load_embedded("train").labels
    streams = dynamic_digits.training_streams(labels, experiment.stream)
    assert [sorted(set(labels[s])) for s in streams] == [[1, 3], [4, 5], [2, 9]]
    assert all(len(s) == 30 for s in streams)
    # No digit is shown twice, so no earlier-task digit after its task.
    flat = np.concatenate(streams)
    assert len(np.unique(flat)) == len(flat)


def test_control_shuffles_the_same_digits_across_tasks(tmp_path):
    experiment = _experiment(tmp_path, task_order=[0, 1, 2], samples_per_task=60)
    labels = load_embedded("train").labels
    dynamic = dynamic_digits.training_streams(labels, experiment.stream)
    experiment.stream.control = True
    control = dynamic_digits.training_streams(labels, experiment.stream)
    assert sorted(np.concatenate(control)) == sorted(np.concatenate(dynamic))
    # Every control segment mixes classes.
    assert all(len(set(labels[s])) == 3 for s in control)


def test_too_many_samples_per_task_is_a_config_error(tmp_path):
    experiment = _experiment(tmp_path, samples_per_task=401)
    with pytest.raises(ConfigError, match=r"'stream.samples_per_task' asks for 401 .* only 400"):
        dynamic_digits.training_streams(load_embedded("train").labels, experiment.stream)


def test_tasks_can_have_their_own_sample_counts(tmp_path):
    """ASP's protocol note (more samples of earlier classes) as a stream option."""
    experiment = _experiment(tmp_path, task_order=[0, 1, 2], samples_by_task=[50, 20, 5])
    labels = load_embedded("train").labels
    streams = dynamic_digits.training_streams(labels, experiment.stream)
    assert [len(s) for s in streams] == [50, 20, 5]
    assert [set(labels[s]) for s in streams] == [{0}, {1}, {2}]
    experiment.stream.control = True
    control = dynamic_digits.training_streams(labels, experiment.stream)
    assert [len(s) for s in control] == [50, 20, 5]
    assert sorted(np.concatenate(control)) == sorted(np.concatenate(streams))
    with pytest.raises(ConfigError, match="lists 2 counts for 3 tasks"):
        _experiment(tmp_path, task_order=[0, 1, 2], samples_by_task=[50, 20])
    with pytest.raises(ConfigError, match=r"samples_by_task\[1\]' must be at least 1"):
        _experiment(tmp_path, task_order=[0, 1, 2], samples_by_task=[50, 0, 5])
    with pytest.raises(ConfigError, match=r"'stream.samples_by_task' asks for 401"):
        dynamic_digits.training_streams(labels, _experiment(
            tmp_path, task_order=[0, 1], samples_by_task=[401, 3]).stream)


def test_classes_per_task_must_divide_the_order(tmp_path):
    with pytest.raises(ConfigError, match="classes_per_task"):
        _experiment(tmp_path, task_order=[0, 1, 2], classes_per_task=2)


@pytest.mark.standalone
def test_two_task_run_end_to_end(tmp_path, build_root):
    experiment = _experiment(tmp_path, build_root)
    dataset = dynamic_digits.run(experiment)
    accuracy = dataset.accuracy
    assert accuracy.dims == ("after_task", "on_task")
    assert accuracy.shape == (2, 2)
    # Before task 1 is learned, its class cannot be assigned to any neuron.
    assert float(accuracy.sel(after_task=0, on_task=1)) == 0.0
    assert not np.any(dataset.assignments.sel(after_task=0).values == 1)
    # After learning 0 alone, 0s are recognised (every neuron is labelled 0).
    assert float(accuracy.sel(after_task=0, on_task=0)) > 0.9
    # The recent/previous-task scalars follow their definitions (docs/results.md).
    assert float(dataset.recent_task_accuracy) == pytest.approx(
        (float(accuracy[0, 0]) + float(accuracy[1, 1])) / 2)
    assert float(dataset.previous_tasks_accuracy) == pytest.approx(float(accuracy[1, 0]))
    stored = xarray.open_dataset(experiment.output.path)
    try:
        np.testing.assert_array_equal(stored.accuracy.values, accuracy.values)
        assert stored.weights.dims == ("after_task", "input", "neuron")
        assert json.loads(stored.attrs["config"])["stream"]["task_order"] == [0, 1]
        assert "label_rule" in stored.attrs
    finally:
        stored.close()

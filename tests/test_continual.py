"""Tests for spikedyn_brian.analysis.continual against hand-computed numbers."""
import warnings

import numpy as np
import pytest
import xarray

from spikedyn_brian.analysis import continual

# Three tasks. Row = after_task, column = on_task.
MATRIX_A = [
    [0.9, 0.0, 0.0],
    [0.5, 0.8, 0.0],
    [0.3, 0.6, 0.7],
]
# Hand-computed metrics of MATRIX_A.
RECENT_A = (0.9 + 0.8 + 0.7) / 3
PREVIOUS_PER_STEP_A = [np.nan, 0.5, (0.3 + 0.6) / 2]
PREVIOUS_A = (0.5 + 0.45) / 2
SEEN_A = [0.9, (0.5 + 0.8) / 2, (0.3 + 0.6 + 0.7) / 3]
AVERAGE_SEEN_A = (0.9 + 0.65 + 1.6 / 3) / 3
FORGETTING_A = [0.9 - 0.3, 0.8 - 0.6]
AVERAGE_FORGETTING_A = (0.6 + 0.2) / 2
BWT_A = ((0.3 - 0.9) + (0.6 - 0.8)) / 2

# A second seed.
MATRIX_B = [
    [1.0, 0.0, 0.0],
    [0.4, 0.6, 0.0],
    [0.2, 0.4, 0.9],
]
RECENT_B = (1.0 + 0.6 + 0.9) / 3
PREVIOUS_B = (0.4 + (0.2 + 0.4) / 2) / 2
SEEN_B = [1.0, 0.5, 0.5]
FORGETTING_B = [1.0 - 0.2, 0.6 - 0.4]
BWT_B = ((0.2 - 1.0) + (0.4 - 0.6)) / 2


def matrix(values):
    return xarray.DataArray(values, dims=("after_task", "on_task"))


# --------------------------------------------------------------------------
# summary metrics on one matrix
# --------------------------------------------------------------------------


def test_recent_task_accuracy_by_hand():
    result = continual.recent_task_accuracy(matrix(MATRIX_A))
    assert result.dims == ()
    assert float(result) == pytest.approx(RECENT_A)
    assert result.attrs["units"] == "1"


def test_later_recent_task_accuracy_leaves_out_the_first_task():
    result = continual.later_recent_task_accuracy(matrix(MATRIX_A))
    assert float(result) == pytest.approx((0.8 + 0.7) / 2)
    both = continual.later_recent_task_accuracy(
        xarray.DataArray([MATRIX_A, MATRIX_B], dims=("seed", "after_task", "on_task")))
    np.testing.assert_allclose(both, [(0.8 + 0.7) / 2, (0.6 + 0.9) / 2])
    assert np.isnan(float(continual.later_recent_task_accuracy(matrix([[1.0]]))))


def test_previous_tasks_accuracy_by_hand():
    per_step = continual.previous_tasks_accuracy_per_step(matrix(MATRIX_A))
    assert per_step.dims == ("after_task",)
    np.testing.assert_allclose(per_step, PREVIOUS_PER_STEP_A)
    np.testing.assert_array_equal(per_step.after_task, [0, 1, 2])
    result = continual.previous_tasks_accuracy(matrix(MATRIX_A))
    assert float(result) == pytest.approx(PREVIOUS_A)


def test_seen_tasks_accuracy_by_hand():
    seen = continual.seen_tasks_accuracy(matrix(MATRIX_A))
    assert seen.dims == ("after_task",)
    np.testing.assert_allclose(seen, SEEN_A)
    assert float(continual.average_seen_accuracy(matrix(MATRIX_A))) == pytest.approx(
        AVERAGE_SEEN_A
    )


def test_forgetting_by_hand():
    result = continual.forgetting(matrix(MATRIX_A))
    assert result.dims == ("task",)
    np.testing.assert_array_equal(result.task, [0, 1])
    np.testing.assert_allclose(result, FORGETTING_A)
    assert float(continual.average_forgetting(matrix(MATRIX_A))) == pytest.approx(
        AVERAGE_FORGETTING_A
    )


def test_forgetting_uses_best_accuracy_before_last_task():
    # Task 0 improves after task 1 (0.5 -> 0.7): the maximum, not the first
    # accuracy, is the reference. Task 2's own row (the last) is excluded.
    values = [
        [0.5, 0.0, 0.0, 0.0],
        [0.7, 0.6, 0.0, 0.0],
        [0.4, 0.9, 0.8, 0.0],
        [0.6, 0.9, 0.8, 1.0],
    ]
    result = continual.forgetting(matrix(values))
    np.testing.assert_allclose(result, [0.7 - 0.6, 0.9 - 0.9, 0.8 - 0.8], atol=1e-12)


def test_backward_transfer_by_hand():
    result = continual.backward_transfer(matrix(MATRIX_A))
    assert result.dims == ()
    assert float(result) == pytest.approx(BWT_A)


def test_upper_triangle_is_never_used():
    values = np.array(MATRIX_A)
    values[np.triu_indices(3, k=1)] = np.nan
    dataset = continual.summarise(matrix(values))
    assert float(dataset.recent_task_accuracy) == pytest.approx(RECENT_A)
    assert float(dataset.previous_tasks_accuracy) == pytest.approx(PREVIOUS_A)
    np.testing.assert_allclose(dataset.seen_tasks_accuracy, SEEN_A)
    np.testing.assert_allclose(dataset.forgetting, FORGETTING_A)
    assert float(dataset.backward_transfer) == pytest.approx(BWT_A)


def test_nan_in_a_used_entry_propagates():
    values = np.array(MATRIX_A)
    values[2, 0] = np.nan
    accuracy = matrix(values)
    assert np.isnan(float(continual.previous_tasks_accuracy(accuracy)))
    assert np.isnan(float(continual.backward_transfer(accuracy)))
    forgetting = continual.forgetting(accuracy)
    assert np.isnan(forgetting[0]) and forgetting[1] == pytest.approx(0.2)
    # The diagonal is untouched.
    assert float(continual.recent_task_accuracy(accuracy)) == pytest.approx(RECENT_A)


def test_single_task_metrics_without_warnings():
    accuracy = matrix([[0.75]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = continual.summarise(accuracy)
    assert float(dataset.recent_task_accuracy) == 0.75
    assert float(dataset.average_seen_accuracy) == 0.75
    assert np.isnan(float(dataset.previous_tasks_accuracy))
    assert np.isnan(float(dataset.backward_transfer))
    assert np.isnan(float(dataset.average_forgetting))
    assert dataset.sizes["task"] == 0


# --------------------------------------------------------------------------
# broadcasting over extra dims
# --------------------------------------------------------------------------


def test_metrics_broadcast_over_seed():
    accuracy = xarray.DataArray(
        [MATRIX_A, MATRIX_B],
        dims=("seed", "after_task", "on_task"),
        coords={"seed": [11, 22]},
    )
    recent = continual.recent_task_accuracy(accuracy)
    assert recent.dims == ("seed",)
    np.testing.assert_array_equal(recent.seed, [11, 22])
    np.testing.assert_allclose(recent, [RECENT_A, RECENT_B])
    np.testing.assert_allclose(
        continual.previous_tasks_accuracy(accuracy), [PREVIOUS_A, PREVIOUS_B]
    )
    seen = continual.seen_tasks_accuracy(accuracy)
    assert seen.dims == ("seed", "after_task")
    np.testing.assert_allclose(seen, [SEEN_A, SEEN_B])
    forgetting = continual.forgetting(accuracy)
    assert forgetting.dims == ("seed", "task")
    np.testing.assert_allclose(forgetting, [FORGETTING_A, FORGETTING_B])
    np.testing.assert_allclose(continual.backward_transfer(accuracy), [BWT_A, BWT_B])


def test_extra_dim_after_the_task_dims_is_kept():
    values = np.stack([MATRIX_A, MATRIX_B], axis=-1)  # (after_task, on_task, variant)
    accuracy = xarray.DataArray(
        values,
        dims=("after_task", "on_task", "variant"),
        coords={"variant": ["a", "b"]},
    )
    backward = continual.backward_transfer(accuracy)
    assert backward.dims == ("variant",)
    np.testing.assert_allclose(backward.sel(variant="a"), BWT_A)
    np.testing.assert_allclose(backward.sel(variant="b"), BWT_B)
    per_step = continual.previous_tasks_accuracy_per_step(accuracy)
    assert per_step.dims == ("variant", "after_task")


def test_summarise_dataset():
    accuracy = xarray.DataArray(
        [MATRIX_A, MATRIX_B], dims=("seed", "after_task", "on_task")
    )
    dataset = continual.summarise(accuracy)
    expected_names = {
        "accuracy",
        "recent_task_accuracy",
        "later_recent_task_accuracy",
        "previous_tasks_accuracy",
        "previous_tasks_accuracy_per_step",
        "seen_tasks_accuracy",
        "average_seen_accuracy",
        "forgetting",
        "average_forgetting",
        "backward_transfer",
    }
    assert set(dataset.data_vars) == expected_names
    for name in expected_names:
        attrs = dataset[name].attrs
        assert attrs["units"] == "1"
        assert attrs["long_name"] and attrs["description"]
        assert "seed" in dataset[name].dims
    np.testing.assert_allclose(dataset.accuracy, [MATRIX_A, MATRIX_B])
    np.testing.assert_array_equal(dataset.after_task, [0, 1, 2])
    np.testing.assert_allclose(
        dataset.average_forgetting, [AVERAGE_FORGETTING_A, np.mean(FORGETTING_B)]
    )


# --------------------------------------------------------------------------
# accuracy_matrix
# --------------------------------------------------------------------------

# Two tasks of two classes. Task 0 = classes {0, 1}: samples 0, 1, 4.
# Task 1 = classes {2, 3}: samples 2, 3, 5.
PAIR_TASKS = [[0, 1], [2, 3]]
PAIR_LABELS = np.array([0, 1, 2, 3, 1, 3])
PAIR_PREDICTIONS = [
    # after task 0: task 0 -> s0 ok, s1 ok, s4 no prediction = 2/3;
    #               task 1 -> s2, s3, s5 all wrong = 0
    [0, 1, 1, 1, -1, 0],
    # after task 1: task 0 -> s0 wrong, s1 wrong, s4 ok = 1/3;
    #               task 1 -> s2 ok, s3 ok, s5 no prediction = 2/3
    [2, 3, 2, 3, 1, -1],
]
PAIR_ACCURACY = [[2 / 3, 0.0], [1 / 3, 2 / 3]]


def test_accuracy_matrix_by_hand_with_pairs_and_no_prediction():
    predictions = xarray.DataArray(PAIR_PREDICTIONS, dims=("after_task", "sample"))
    accuracy = continual.accuracy_matrix(predictions, PAIR_LABELS, PAIR_TASKS)
    assert accuracy.dims == ("after_task", "on_task")
    np.testing.assert_allclose(accuracy, PAIR_ACCURACY)
    np.testing.assert_array_equal(accuracy.after_task, [0, 1])
    np.testing.assert_array_equal(accuracy.on_task, [0, 1])
    assert accuracy.attrs["units"] == "1"
    assert accuracy.attrs["long_name"]
    assert accuracy.dtype == np.float64


def test_accuracy_matrix_single_class_tasks_and_unused_labels():
    # Label 9 belongs to no task: that sample is ignored.
    labels = xarray.DataArray([0, 1, 1, 9], dims=("sample",))
    predictions = xarray.DataArray(
        [[0, 0, 0, 9], [0, 1, -1, 0]], dims=("after_task", "sample")
    )
    accuracy = continual.accuracy_matrix(predictions, labels, [0, [1]])
    np.testing.assert_allclose(accuracy, [[1.0, 0.0], [1.0, 0.5]])


def test_accuracy_matrix_broadcasts_over_seed():
    seed_1 = [[0, 1, 2, 3, 1, 3], [0, 1, 2, 3, 1, 3]]  # all correct
    predictions = xarray.DataArray(
        [PAIR_PREDICTIONS, seed_1],
        dims=("seed", "after_task", "sample"),
        coords={"seed": [3, 4], "sample": np.arange(100, 106)},
    )
    accuracy = continual.accuracy_matrix(predictions, PAIR_LABELS, PAIR_TASKS)
    assert accuracy.dims == ("seed", "after_task", "on_task")
    np.testing.assert_array_equal(accuracy.seed, [3, 4])
    np.testing.assert_allclose(accuracy.sel(seed=3), PAIR_ACCURACY)
    np.testing.assert_allclose(accuracy.sel(seed=4), np.ones((2, 2)))
    # The sample dim is gone with its coordinate.
    assert "sample" not in accuracy.coords


def test_accuracy_matrix_task_without_samples_names_task_and_classes():
    predictions = xarray.DataArray(PAIR_PREDICTIONS, dims=("after_task", "sample"))
    with pytest.raises(ValueError, match=r"task 1 \(classes \[7, 8\]\) has no test samples"):
        continual.accuracy_matrix(predictions, PAIR_LABELS, [[0, 1], [7, 8]])


def test_accuracy_matrix_input_errors():
    predictions = xarray.DataArray(PAIR_PREDICTIONS, dims=("after_task", "sample"))
    with pytest.raises(ValueError, match="one 'after_task' entry per task"):
        continual.accuracy_matrix(predictions, PAIR_LABELS, [[0], [1], [2]])
    with pytest.raises(ValueError, match="labels must have one entry per sample"):
        continual.accuracy_matrix(predictions, PAIR_LABELS[:5], PAIR_TASKS)
    with pytest.raises(ValueError, match="class 1 appears in task 0 and again in task 1"):
        continual.accuracy_matrix(predictions, PAIR_LABELS, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="lacks \\['sample'\\]"):
        continual.accuracy_matrix(
            predictions.rename(sample="image"), PAIR_LABELS, PAIR_TASKS
        )
    with pytest.raises(ValueError, match="must be an xarray.DataArray"):
        continual.accuracy_matrix(np.array(PAIR_PREDICTIONS), PAIR_LABELS, PAIR_TASKS)
    with pytest.raises(ValueError, match="minimum of -2"):
        continual.accuracy_matrix(predictions - 1, PAIR_LABELS, PAIR_TASKS)
    shuffled = xarray.DataArray(
        PAIR_LABELS, dims=("sample",), coords={"sample": np.arange(6)[::-1]}
    )
    with pytest.raises(ValueError, match="different 'sample' coordinates"):
        continual.accuracy_matrix(
            predictions.assign_coords(sample=np.arange(6)), shuffled, PAIR_TASKS
        )


# --------------------------------------------------------------------------
# confusion_matrices
# --------------------------------------------------------------------------


def test_confusion_matrices_by_hand_with_no_prediction_column():
    predictions = xarray.DataArray(PAIR_PREDICTIONS, dims=("after_task", "sample"))
    counts = continual.confusion_matrices(predictions, PAIR_LABELS, n_classes=4)
    assert counts.dims == ("after_task", "true_class", "predicted_class")
    np.testing.assert_array_equal(counts.predicted_class, [-1, 0, 1, 2, 3])
    np.testing.assert_array_equal(counts.true_class, [0, 1, 2, 3])
    # columns: predicted -1, 0, 1, 2, 3
    expected_after_0 = [
        [0, 1, 0, 0, 0],  # class 0: s0 -> 0
        [1, 0, 1, 0, 0],  # class 1: s1 -> 1, s4 -> -1
        [0, 0, 1, 0, 0],  # class 2: s2 -> 1
        [0, 1, 1, 0, 0],  # class 3: s3 -> 1, s5 -> 0
    ]
    expected_after_1 = [
        [0, 0, 0, 1, 0],  # class 0: s0 -> 2
        [0, 0, 1, 0, 1],  # class 1: s1 -> 3, s4 -> 1
        [0, 0, 0, 1, 0],  # class 2: s2 -> 2
        [1, 0, 0, 0, 1],  # class 3: s3 -> 3, s5 -> -1
    ]
    np.testing.assert_array_equal(counts, [expected_after_0, expected_after_1])
    assert counts.dtype == np.int64
    assert int(counts.sel(predicted_class=-1).sum()) == 2


def test_confusion_matrices_broadcast_over_seed_and_check_ranges():
    predictions = xarray.DataArray(
        [PAIR_PREDICTIONS, PAIR_PREDICTIONS], dims=("seed", "after_task", "sample")
    )
    counts = continual.confusion_matrices(predictions, PAIR_LABELS, n_classes=4)
    assert counts.dims == ("seed", "after_task", "true_class", "predicted_class")
    np.testing.assert_array_equal(counts.sum("predicted_class").isel(seed=1), [[1, 2, 1, 2]] * 2)
    with pytest.raises(ValueError, match="predictions must lie in -1..2"):
        continual.confusion_matrices(predictions, PAIR_LABELS % 3, n_classes=3)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        continual.confusion_matrices(predictions, PAIR_LABELS, n_classes=0)


# --------------------------------------------------------------------------
# accuracy validation
# --------------------------------------------------------------------------


def test_missing_dims_are_named():
    accuracy = xarray.DataArray(MATRIX_A, dims=("after_task", "task"))
    with pytest.raises(ValueError, match=r"lacks \['on_task'\].*'after_task', 'task'"):
        continual.recent_task_accuracy(accuracy)


def test_non_square_matrix_is_rejected():
    accuracy = xarray.DataArray(np.zeros((2, 3)), dims=("after_task", "on_task"))
    with pytest.raises(ValueError, match="must be square.*'after_task': 2, 'on_task': 3"):
        continual.forgetting(accuracy)


def test_empty_and_out_of_range_matrices_are_rejected():
    with pytest.raises(ValueError, match="at least one task"):
        continual.summarise(xarray.DataArray(np.zeros((0, 0)), dims=("after_task", "on_task")))
    with pytest.raises(ValueError, match=r"\[0, 1\].*percentages"):
        continual.backward_transfer(matrix(np.array(MATRIX_A) * 100))
    with pytest.raises(ValueError, match="must be an xarray.DataArray"):
        continual.seen_tasks_accuracy(np.array(MATRIX_A))


def test_metrics_from_predictions_end_to_end():
    predictions = xarray.DataArray(PAIR_PREDICTIONS, dims=("after_task", "sample"))
    accuracy = continual.accuracy_matrix(predictions, PAIR_LABELS, PAIR_TASKS)
    dataset = continual.summarise(accuracy)
    assert float(dataset.recent_task_accuracy) == pytest.approx(2 / 3)
    assert float(dataset.previous_tasks_accuracy) == pytest.approx(1 / 3)
    np.testing.assert_allclose(dataset.forgetting, [2 / 3 - 1 / 3])
    assert float(dataset.backward_transfer) == pytest.approx(1 / 3 - 2 / 3)

"""Tests for spikedyn_brian.analysis.labelling against hand-computed numbers."""
import numpy as np
import pytest
import xarray

from spikedyn_brian.analysis import labelling

# Labelling set: 4 samples, 3 neurons, labels 0, 0, 1, 1.
# Neuron 0 prefers class 0 (means 3 vs 1), neuron 1 prefers class 1
# (means 0.5 vs 4), neuron 2 never fires.
TRAIN_COUNTS = np.array(
    [
        [2, 0, 0],
        [4, 1, 0],
        [1, 3, 0],
        [1, 5, 0],
    ]
)
TRAIN_LABELS = np.array([0, 0, 1, 1])


# --------------------------------------------------------------------------
# class_mean_responses / class_proportions
# --------------------------------------------------------------------------


def test_class_mean_responses_by_hand():
    means = labelling.class_mean_responses(TRAIN_COUNTS, TRAIN_LABELS, n_classes=2)
    np.testing.assert_allclose(means, [[3.0, 0.5, 0.0], [1.0, 4.0, 0.0]])
    assert means.shape == (2, 3)


def test_class_mean_responses_absent_class_is_nan():
    means = labelling.class_mean_responses(TRAIN_COUNTS, TRAIN_LABELS, n_classes=3)
    np.testing.assert_allclose(means[:2], [[3.0, 0.5, 0.0], [1.0, 4.0, 0.0]])
    assert np.all(np.isnan(means[2]))


def test_class_proportions_by_hand():
    proportions = labelling.class_proportions(TRAIN_COUNTS, TRAIN_LABELS, n_classes=3)
    expected = [
        [3 / 4, 1 / 4, 0.0],
        [0.5 / 4.5, 4 / 4.5, 0.0],
        [0.0, 0.0, 0.0],  # never fired: all zero, not NaN
    ]
    np.testing.assert_allclose(proportions, expected)
    assert proportions.shape == (3, 3)


# --------------------------------------------------------------------------
# assign_labels
# --------------------------------------------------------------------------


def test_assign_labels_by_hand_and_silent_neuron_unassigned():
    assignments = labelling.assign_labels(TRAIN_COUNTS, TRAIN_LABELS, n_classes=2)
    np.testing.assert_array_equal(assignments, [0, 1, -1])
    assert assignments.dtype == np.int64


def test_assign_labels_never_assigns_absent_class():
    # Only classes 1 and 2 are present (class 0 absent). Neuron 0 responds
    # equally to 1 and 2 -> tie goes to the lowest *present* class, 1, never
    # to the absent class 0. Neuron 1 prefers 2. Neuron 2 never fires -> -1.
    counts = np.array(
        [
            [2, 0, 0],
            [2, 1, 0],
            [2, 6, 0],
        ]
    )
    labels = np.array([1, 1, 2])
    assignments = labelling.assign_labels(counts, labels, n_classes=3)
    np.testing.assert_array_equal(assignments, [1, 2, -1])
    assert 0 not in assignments


def test_assign_labels_uses_mean_not_sum():
    # Class 0 has three samples of 2 spikes (sum 6, mean 2); class 1 has one
    # sample of 5 spikes (sum 5, mean 5). The mean rule picks class 1.
    counts = np.array([[2], [2], [2], [5]])
    labels = np.array([0, 0, 0, 1])
    np.testing.assert_array_equal(labelling.assign_labels(counts, labels, 2), [1])


def test_assign_labels_tie_goes_to_lowest_class():
    counts = np.array([[3], [3]])
    labels = np.array([0, 1])
    np.testing.assert_array_equal(labelling.assign_labels(counts, labels, 2), [0])


def test_assign_labels_accepts_xarray():
    data_array = xarray.DataArray(
        TRAIN_COUNTS, dims=("sample", "neuron"), coords={"sample": np.arange(4)}
    )
    label_array = xarray.DataArray(TRAIN_LABELS, dims="sample")
    assignments = labelling.assign_labels(data_array, label_array, n_classes=2)
    assert isinstance(assignments, np.ndarray)
    np.testing.assert_array_equal(assignments, [0, 1, -1])


# --------------------------------------------------------------------------
# predict_all_activity
# --------------------------------------------------------------------------


def test_predict_all_activity_by_hand():
    # Assignments: neurons 0, 1 -> class 0; neuron 2 -> class 1; neuron 3
    # unassigned (its spikes never vote).
    assignments = np.array([0, 0, 1, -1])
    test_counts = np.array(
        [
            [4, 2, 1, 0],  # class 0: (4+2)/2 = 3, class 1: 1 -> 0
            [1, 1, 5, 0],  # class 0: 1, class 1: 5 -> 1
            [2, 0, 1, 0],  # class 0: 1, class 1: 1 -> tie -> 0
            [0, 0, 0, 9],  # only the unassigned neuron fired -> -1
            [0, 0, 0, 0],  # no spikes at all -> -1
        ]
    )
    predictions = labelling.predict_all_activity(test_counts, assignments, n_classes=2)
    np.testing.assert_array_equal(predictions, [0, 1, 0, -1, -1])
    assert predictions.dtype == np.int64


def test_predict_all_activity_never_predicts_class_without_neurons():
    # Classes 0 and 2 have no neurons (score -inf); class 1 scores 0.5.
    assignments = np.array([1, 1])
    test_counts = np.array([[1, 0]])
    predictions = labelling.predict_all_activity(test_counts, assignments, n_classes=3)
    np.testing.assert_array_equal(predictions, [1])


def test_predict_all_activity_no_assigned_neurons_predicts_minus_one():
    predictions = labelling.predict_all_activity(
        np.array([[3, 4]]), np.array([-1, -1]), n_classes=2
    )
    np.testing.assert_array_equal(predictions, [-1])


def test_predict_all_activity_end_to_end_from_labelling_set():
    assignments = labelling.assign_labels(TRAIN_COUNTS, TRAIN_LABELS, n_classes=2)
    predictions = labelling.predict_all_activity(TRAIN_COUNTS, assignments, n_classes=2)
    # sample 0: n0=2 vs n1=0 -> 0; sample 1: 4 vs 1 -> 0;
    # sample 2: 1 vs 3 -> 1; sample 3: 1 vs 5 -> 1
    np.testing.assert_array_equal(predictions, [0, 0, 1, 1])
    assert labelling.accuracy(predictions, TRAIN_LABELS) == 1.0


# --------------------------------------------------------------------------
# predict_proportion_weighting
# --------------------------------------------------------------------------


def test_proportion_weighting_differs_from_all_activity():
    # Labelling set: one sample per class.
    #   class 0 sample: neuron 0 -> 9, neuron 1 -> 4
    #   class 1 sample: neuron 0 -> 1, neuron 1 -> 6
    # Assignments: neuron 0 -> 0 (9 > 1), neuron 1 -> 1 (6 > 4).
    # Proportions: neuron 0 = [0.9, 0.1], neuron 1 = [0.4, 0.6].
    train_counts = np.array([[9, 4], [1, 6]])
    train_labels = np.array([0, 1])
    assignments = labelling.assign_labels(train_counts, train_labels, n_classes=2)
    proportions = labelling.class_proportions(train_counts, train_labels, n_classes=2)
    np.testing.assert_array_equal(assignments, [0, 1])
    np.testing.assert_allclose(proportions, [[0.9, 0.1], [0.4, 0.6]])

    # Test sample [5, 6]:
    #   all activity:         class 0 = 5,          class 1 = 6          -> 1
    #   proportion weighting: class 0 = 0.9*5 = 4.5, class 1 = 0.6*6 = 3.6 -> 0
    test_counts = np.array([[5, 6]])
    all_activity = labelling.predict_all_activity(test_counts, assignments, n_classes=2)
    weighted = labelling.predict_proportion_weighting(
        test_counts, assignments, proportions, n_classes=2
    )
    np.testing.assert_array_equal(all_activity, [1])
    np.testing.assert_array_equal(weighted, [0])
    assert weighted.dtype == np.int64


def test_proportion_weighting_divides_by_number_of_assigned_neurons():
    # Class 0 has two neurons, class 1 one neuron; all proportions 1 for own
    # class. Sample [3, 3, 5]: class 0 = (3+3)/2 = 3, class 1 = 5 -> 1.
    # Without the division class 0 would score 6 and win.
    assignments = np.array([0, 0, 1])
    proportions = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    predictions = labelling.predict_proportion_weighting(
        np.array([[3, 3, 5]]), assignments, proportions, n_classes=2
    )
    np.testing.assert_array_equal(predictions, [1])


def test_proportion_weighting_all_zero_sample_predicts_minus_one():
    assignments = np.array([0, 1])
    proportions = np.array([[0.9, 0.1], [0.4, 0.6]])
    predictions = labelling.predict_proportion_weighting(
        np.array([[0, 0], [2, 0]]), assignments, proportions, n_classes=2
    )
    np.testing.assert_array_equal(predictions, [-1, 0])


# --------------------------------------------------------------------------
# accuracy
# --------------------------------------------------------------------------


def test_accuracy_counts_minus_one_as_wrong():
    assert labelling.accuracy([0, 1, -1, 2], [0, 1, 2, 1]) == pytest.approx(0.5)
    assert isinstance(labelling.accuracy([1], [1]), float)


def test_accuracy_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        labelling.accuracy([0, 1, 2], [0, 1])


def test_accuracy_empty():
    with pytest.raises(ValueError, match="zero samples"):
        labelling.accuracy([], [])


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def test_prediction_rules_describe_both_rules():
    assert set(labelling.PREDICTION_RULES) == {"all_activity", "proportion_weighting"}
    assert all(isinstance(text, str) and text for text in labelling.PREDICTION_RULES.values())


def test_spike_counts_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"spike_counts must be 2-D .*\(n_samples, n_neurons\)"):
        labelling.assign_labels(np.array([1, 2, 3]), np.array([0, 1, 0]), n_classes=2)


def test_spike_counts_must_be_non_negative():
    with pytest.raises(ValueError, match="spike_counts must be non-negative"):
        labelling.assign_labels(np.array([[1, -1]]), np.array([0]), n_classes=2)


def test_spike_counts_must_be_finite():
    with pytest.raises(ValueError, match="spike_counts must be finite"):
        labelling.predict_all_activity(np.array([[np.nan, 1.0]]), np.array([0, 1]), 2)


def test_labels_length_must_match_samples():
    with pytest.raises(ValueError, match=r"labels must have shape \(n_samples,\) = \(4,\)"):
        labelling.assign_labels(TRAIN_COUNTS, np.array([0, 1]), n_classes=2)


def test_labels_must_be_within_classes():
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        labelling.assign_labels(TRAIN_COUNTS, np.array([0, 0, 1, 2]), n_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        labelling.class_proportions(TRAIN_COUNTS, np.array([0, -1, 1, 1]), n_classes=2)


def test_labels_must_be_integers():
    with pytest.raises(ValueError, match="labels must hold integers"):
        labelling.assign_labels(TRAIN_COUNTS, np.array([0, 0.5, 1, 1]), n_classes=2)


def test_assignments_length_must_match_neurons():
    with pytest.raises(ValueError, match=r"assignments must have shape \(n_neurons,\) = \(3,\)"):
        labelling.predict_all_activity(TRAIN_COUNTS, np.array([0, 1]), n_classes=2)


def test_assignments_must_be_within_classes():
    with pytest.raises(ValueError, match=r"assignments must lie in -1\.\.1"):
        labelling.predict_all_activity(TRAIN_COUNTS, np.array([0, 1, 5]), n_classes=2)


def test_proportions_shape_must_match():
    with pytest.raises(ValueError, match=r"proportions must have shape \(n_neurons, n_classes\) = \(3, 2\)"):
        labelling.predict_proportion_weighting(
            TRAIN_COUNTS, np.array([0, 1, -1]), np.ones((2, 3)), n_classes=2
        )


def test_n_classes_must_be_positive_integer():
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        labelling.assign_labels(TRAIN_COUNTS, TRAIN_LABELS, n_classes=0)


def test_label_protocols_label_from_all_or_the_first_digits():
    """benchmarks/label_protocols.py: labels from all labelling responses or the first k."""
    import importlib.util
    from pathlib import Path

    import xarray

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "label_protocols.py"
    spec = importlib.util.spec_from_file_location("label_protocols", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Neuron 0 answers class 0 in the first two digits but class 1 afterwards.
    counts = np.array([[5, 0], [5, 0], [0, 0], [9, 1], [9, 1], [9, 1]])
    labels = np.array([0, 0, 1, 1, 1, 1])
    dataset = xarray.Dataset({
        "assignment_spike_counts": (("a", "neuron"), counts),
        "assignment_labels": (("a",), labels),
        "test_spike_counts": (("s", "neuron"), np.array([[3, 0], [3, 0], [0, 3]])),
        "test_labels": (("s",), np.array([0, 0, 1])),
    })
    result = module.label_protocol_accuracies(dataset, first=2)
    everything, first = result.values()
    # All six: neuron 0 → class 1 (mean 6.75 against 5), neuron 1 → class 1:
    # every test digit is called 1.
    assert everything["all_activity"] == pytest.approx(1 / 3)
    # First two: neuron 0 → class 0, neuron 1 never answered: digits 0 right, 1 wrong.
    assert first["all_activity"] == pytest.approx(2 / 3)
    assert list(result)[1].endswith("first 2 training digits")

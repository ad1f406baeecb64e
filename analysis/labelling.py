"""Label assignment and classification for unsupervised spiking networks.

The excitatory neurons of a Diehl & Cook (2015) network learn without labels.
To read out a class, each neuron is *assigned* the class it responds to most
strongly on a labelled set of samples, and a test sample is then classified
by pooling the responses of the neurons assigned to each class.

Every function here is pure and works on plain arrays: spike counts may be
given as a :class:`numpy.ndarray` or an :class:`xarray.DataArray` whose first
axis is the presented sample and whose second axis is the excitatory neuron.
Results are always returned as numpy arrays.

Conventions
-----------
``-1`` is used for "unassigned" (a neuron that never fired on the labelling
set) and for "no prediction" (a test sample that gave no evidence for any
class). A ``-1`` prediction never equals a true label, so :func:`accuracy`
counts it as wrong.

References
----------
.. [1] P. U. Diehl and M. Cook, "Unsupervised learning of digit recognition
   using spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99,
   2015.
.. [2] H. Hazan et al., "BindsNET: A machine learning-oriented spiking neural
   networks library in Python", Front. Neuroinform. 12:89, 2018.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "UNASSIGNED",
    "NO_PREDICTION",
    "PREDICTION_RULES",
    "class_mean_responses",
    "class_proportions",
    "assign_labels",
    "predict_all_activity",
    "predict_proportion_weighting",
    "accuracy",
    "label_and_predict",
]

#: Label given to a neuron that never fired on the labelling set.
UNASSIGNED = -1

#: Prediction given to a sample that gave no evidence for any class.
NO_PREDICTION = -1

#: Human-readable description of each prediction rule, e.g. for netCDF attrs.
PREDICTION_RULES = {
    "all_activity": (
        "Diehl & Cook 2015: for each class, the mean spike count of the excitatory "
        "neurons assigned to that class; the prediction is the class with the "
        "highest mean. Classes with no assigned neurons are never predicted; "
        "samples with no spikes in any assigned neuron are predicted -1 (wrong)."
    ),
    "proportion_weighting": (
        "Hazan et al. 2018 (BindsNET): for each class, the sum over neurons "
        "assigned to that class of (the neuron's share of its mean responses that "
        "falls on the class) x (its spike count), divided by the number of neurons "
        "assigned to the class; the prediction is the class with the highest "
        "score. Classes with no assigned neurons are never predicted; samples with "
        "no spikes in any assigned neuron are predicted -1 (wrong)."
    ),
}


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _validate_n_classes(n_classes):
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(
            f"n_classes must be a positive integer; got {n_classes!r} "
            f"({type(n_classes).__name__})."
        )
    if n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer; got {n_classes}.")
    return int(n_classes)


def _as_spike_count_matrix(spike_counts):
    """Return ``spike_counts`` as a float64 (n_samples, n_neurons) array."""
    array = np.asarray(spike_counts)
    if array.ndim != 2:
        raise ValueError(
            "spike_counts must be 2-D with shape (n_samples, n_neurons); "
            f"got {array.ndim}-D with shape {array.shape}. For a single sample, "
            "pass spike_counts[np.newaxis, :]."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(
            f"spike_counts must hold numbers; got dtype {array.dtype}."
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(
            "spike_counts must be finite; found NaN or infinite values. "
            "Replace missing counts with 0 before labelling."
        )
    if np.any(array < 0):
        raise ValueError(
            "spike_counts must be non-negative; found a minimum of "
            f"{array.min()}. Spike counts cannot be negative."
        )
    return array


def holds_whole_numbers(array):
    """Whether a numpy array is of integer dtype, or float with only finite whole numbers."""
    if np.issubdtype(array.dtype, np.integer):
        return True
    return bool(
        np.issubdtype(array.dtype, np.floating)
        and np.all(np.isfinite(array))
        and np.all(array == np.round(array))
    )


def _as_integer_vector(values, name, expected_length, length_meaning):
    """Return ``values`` as a 1-D int64 array of length ``expected_length``."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with shape ({length_meaning},); "
            f"got {array.ndim}-D with shape {array.shape}."
        )
    if array.shape[0] != expected_length:
        raise ValueError(
            f"{name} must have shape ({length_meaning},) = ({expected_length},) "
            f"to match spike_counts; got shape {array.shape}."
        )
    if holds_whole_numbers(array):
        return array.astype(np.int64)
    raise ValueError(
        f"{name} must hold integers; got dtype {array.dtype} with non-integer "
        f"values. Cast it with {name}.astype(int) if the values are whole numbers."
    )


def _as_labels(labels, n_samples, n_classes):
    labels = _as_integer_vector(labels, "labels", n_samples, "n_samples")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} (n_classes={n_classes}); "
            f"got values from {labels.min()} to {labels.max()}. "
            "Pass a larger n_classes or fix the labels."
        )
    return labels


def _as_assignments(assignments, n_neurons, n_classes):
    assignments = _as_integer_vector(assignments, "assignments", n_neurons, "n_neurons")
    if assignments.size and (
        assignments.min() < UNASSIGNED or assignments.max() >= n_classes
    ):
        raise ValueError(
            f"assignments must lie in -1..{n_classes - 1} (-1 = unassigned, "
            f"n_classes={n_classes}); got values from {assignments.min()} to "
            f"{assignments.max()}. Use the output of assign_labels with the same "
            "n_classes."
        )
    return assignments


# ---------------------------------------------------------------------------
# labelling
# ---------------------------------------------------------------------------


def class_mean_responses(spike_counts, labels, n_classes=10):
    """Mean spike count of every neuron for every class.

    Parameters
    ----------
    spike_counts : numpy.ndarray or xarray.DataArray, shape (n_samples, n_neurons)
        Spike count of each excitatory neuron during each presented sample.
    labels : array_like of int, shape (n_samples,)
        True class of each sample, in ``0..n_classes - 1``.
    n_classes : int, optional
        Number of classes (default 10, the MNIST digits).

    Returns
    -------
    numpy.ndarray of float64, shape (n_classes, n_neurons)
        ``means[c, j]`` is the mean of ``spike_counts[:, j]`` over the samples
        labelled ``c``. Rows of classes absent from ``labels`` are NaN.

    Raises
    ------
    ValueError
        If ``spike_counts`` is not a 2-D non-negative finite array, if
        ``labels`` does not have one integer per sample, or if a label lies
        outside ``0..n_classes - 1``.
    """
    n_classes = _validate_n_classes(n_classes)
    counts = _as_spike_count_matrix(spike_counts)
    labels = _as_labels(labels, counts.shape[0], n_classes)
    one_hot = np.zeros((counts.shape[0], n_classes), dtype=np.float64)
    one_hot[np.arange(counts.shape[0]), labels] = 1.0
    sums = one_hot.T @ counts
    class_sizes = one_hot.sum(axis=0)
    means = np.full((n_classes, counts.shape[1]), np.nan, dtype=np.float64)
    present = class_sizes > 0
    means[present] = sums[present] / class_sizes[present, np.newaxis]
    return means


def class_proportions(spike_counts, labels, n_classes=10):
    """Each neuron's share of its class-mean responses falling on each class.

    This is the ``proportions`` table of Hazan et al. (2018), used by
    :func:`predict_proportion_weighting`.

    Parameters
    ----------
    spike_counts : numpy.ndarray or xarray.DataArray, shape (n_samples, n_neurons)
        Spike count of each excitatory neuron during each presented sample.
    labels : array_like of int, shape (n_samples,)
        True class of each sample, in ``0..n_classes - 1``.
    n_classes : int, optional
        Number of classes (default 10).

    Returns
    -------
    numpy.ndarray of float64, shape (n_neurons, n_classes)
        ``proportions[j, c]`` is the mean response of neuron ``j`` to class
        ``c`` divided by the sum over classes of its mean responses. Each row
        sums to 1, except for neurons that never fired, whose rows are all
        zero. Classes absent from ``labels`` get proportion 0.

    Raises
    ------
    ValueError
        As for :func:`class_mean_responses`.
    """
    means = class_mean_responses(spike_counts, labels, n_classes)
    means = np.nan_to_num(means, nan=0.0).T
    totals = means.sum(axis=1, keepdims=True)
    proportions = np.zeros_like(means)
    np.divide(means, totals, out=proportions, where=totals > 0)
    return proportions


def assign_labels(spike_counts, labels, n_classes=10):
    """Assign each neuron the class with its highest mean response.

    This is the labelling step of Diehl & Cook (2015): after (unsupervised)
    training, the network is shown labelled samples with plasticity off, and
    each excitatory neuron is labelled with the class for which its mean spike
    count is highest.

    Parameters
    ----------
    spike_counts : numpy.ndarray or xarray.DataArray, shape (n_samples, n_neurons)
        Spike count of each excitatory neuron during each presented sample.
    labels : array_like of int, shape (n_samples,)
        True class of each sample, in ``0..n_classes - 1``.
    n_classes : int, optional
        Number of classes (default 10).

    Returns
    -------
    numpy.ndarray of int64, shape (n_neurons,)
        The class assigned to each neuron, or ``-1`` ("unassigned") for a
        neuron that never fired on these samples (all its class means are
        zero).

    Raises
    ------
    ValueError
        As for :func:`class_mean_responses`.

    Notes
    -----
    Classes absent from ``labels`` are never assigned (their mean is treated
    as ``-inf``). Ties go to the lowest class index, as with
    :func:`numpy.argmax`. The original Diehl & Cook code gave silent neurons
    class 0; here they are marked unassigned so that they cannot vote.
    """
    means = class_mean_responses(spike_counts, labels, n_classes)
    comparable = np.where(np.isnan(means), -np.inf, means)
    assignments = np.argmax(comparable, axis=0).astype(np.int64)
    never_fired = ~np.any(comparable > 0, axis=0)
    assignments[never_fired] = UNASSIGNED
    return assignments


# ---------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------


def _predict_from_class_scores(scores):
    """Argmax over classes; ``-1`` where no class scores above zero."""
    predictions = np.argmax(scores, axis=1).astype(np.int64)
    predictions[~np.any(scores > 0, axis=1)] = NO_PREDICTION
    return predictions


def predict_all_activity(spike_counts, assignments, n_classes=10):
    """Classify samples by the mean activity of each class's neurons.

    This is the classification rule of Diehl & Cook (2015).

    Parameters
    ----------
    spike_counts : numpy.ndarray or xarray.DataArray, shape (n_samples, n_neurons)
        Spike count of each excitatory neuron during each test sample.
    assignments : array_like of int, shape (n_neurons,)
        Class of each neuron from :func:`assign_labels` (``-1`` = unassigned).
    n_classes : int, optional
        Number of classes (default 10).

    Returns
    -------
    numpy.ndarray of int64, shape (n_samples,)
        Predicted class of each sample, or ``-1`` where no neuron assigned to
        any class fired (counted as wrong by :func:`accuracy`).

    Raises
    ------
    ValueError
        If ``spike_counts`` is not a 2-D non-negative finite array, or if
        ``assignments`` does not have one integer in ``-1..n_classes - 1`` per
        neuron.

    Notes
    -----
    For each sample and class ``c`` the score is the mean spike count of the
    neurons assigned to ``c``. A class with no assigned neurons scores
    ``-inf`` and so is never predicted. Unassigned neurons do not vote. Ties
    go to the lowest class index.
    """
    n_classes = _validate_n_classes(n_classes)
    counts = _as_spike_count_matrix(spike_counts)
    assignments = _as_assignments(assignments, counts.shape[1], n_classes)
    scores = np.full((counts.shape[0], n_classes), -np.inf, dtype=np.float64)
    for class_index in range(n_classes):
        members = assignments == class_index
        n_members = np.count_nonzero(members)
        if n_members:
            scores[:, class_index] = counts[:, members].sum(axis=1) / n_members
    return _predict_from_class_scores(scores)


def predict_proportion_weighting(spike_counts, assignments, proportions, n_classes=10):
    """Classify samples by proportion-weighted activity (Hazan et al. 2018).

    Parameters
    ----------
    spike_counts : numpy.ndarray or xarray.DataArray, shape (n_samples, n_neurons)
        Spike count of each excitatory neuron during each test sample.
    assignments : array_like of int, shape (n_neurons,)
        Class of each neuron from :func:`assign_labels` (``-1`` = unassigned).
    proportions : array_like of float, shape (n_neurons, n_classes)
        Each neuron's share of its responses per class, from
        :func:`class_proportions` on the labelling set.
    n_classes : int, optional
        Number of classes (default 10).

    Returns
    -------
    numpy.ndarray of int64, shape (n_samples,)
        Predicted class of each sample, or ``-1`` where no class scored above
        zero (counted as wrong by :func:`accuracy`).

    Raises
    ------
    ValueError
        As for :func:`predict_all_activity`, or if ``proportions`` is not a
        finite non-negative array of shape (n_neurons, n_classes).

    Notes
    -----
    For each sample and class ``c`` the score is
    ``sum(proportions[j, c] * count[j] for j assigned to c) / n_assigned(c)``,
    as in BindsNET's ``proportion_weighting``. A class with no assigned
    neurons scores ``-inf`` and so is never predicted. Ties go to the lowest
    class index.
    """
    n_classes = _validate_n_classes(n_classes)
    counts = _as_spike_count_matrix(spike_counts)
    n_neurons = counts.shape[1]
    assignments = _as_assignments(assignments, n_neurons, n_classes)
    proportions = np.asarray(proportions, dtype=np.float64)
    if proportions.shape != (n_neurons, n_classes):
        raise ValueError(
            "proportions must have shape (n_neurons, n_classes) = "
            f"({n_neurons}, {n_classes}); got shape {proportions.shape}. "
            "Compute it with class_proportions(spike_counts, labels, n_classes) "
            "on the labelling set."
        )
    if not np.all(np.isfinite(proportions)) or np.any(proportions < 0):
        raise ValueError(
            "proportions must be finite and non-negative; compute it with "
            "class_proportions(spike_counts, labels, n_classes)."
        )
    scores = np.full((counts.shape[0], n_classes), -np.inf, dtype=np.float64)
    for class_index in range(n_classes):
        members = assignments == class_index
        n_members = np.count_nonzero(members)
        if n_members:
            weighted = counts[:, members] * proportions[members, class_index]
            scores[:, class_index] = weighted.sum(axis=1) / n_members
    return _predict_from_class_scores(scores)


def accuracy(predictions, labels):
    """Fraction of predictions equal to the true labels.

    Parameters
    ----------
    predictions : array_like of int, shape (n_samples,)
        Predicted classes; ``-1`` (no prediction) never matches a label.
    labels : array_like of int, shape (n_samples,)
        True classes.

    Returns
    -------
    float
        Fraction correct, in ``[0, 1]``.

    Raises
    ------
    ValueError
        If either argument is not 1-D, if their lengths differ, or if they are
        empty.
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if predictions.ndim != 1 or labels.ndim != 1:
        raise ValueError(
            "predictions and labels must both be 1-D with shape (n_samples,); "
            f"got shapes {predictions.shape} and {labels.shape}."
        )
    if predictions.shape[0] != labels.shape[0]:
        raise ValueError(
            "predictions and labels must have the same length; got "
            f"{predictions.shape[0]} predictions and {labels.shape[0]} labels."
        )
    if predictions.shape[0] == 0:
        raise ValueError(
            "accuracy of zero samples is undefined; pass at least one prediction."
        )
    return float(np.mean(predictions == labels))


def label_and_predict(assignment_counts, assignment_labels, test_counts, test_labels, n_classes=10):
    """Label neurons from one response set and predict another with both rules.

    Parameters
    ----------
    assignment_counts : array (n_assignment_samples, n_neurons)
        Responses to labelled digits, learning off.
    assignment_labels : array (n_assignment_samples,)
    test_counts : array (n_test_samples, n_neurons)
    test_labels : array (n_test_samples,)

    Returns
    -------
    assignments : ndarray (n_neurons,)
    proportions : ndarray (n_neurons, n_classes)
    predictions : dict
        Rule name (as in `PREDICTION_RULES`) → predicted classes.
    accuracies : dict
        Rule name → fraction correct.
    """
    assignments = assign_labels(assignment_counts, assignment_labels, n_classes)
    proportions = class_proportions(assignment_counts, assignment_labels, n_classes)
    predictions = {
        "all_activity": predict_all_activity(test_counts, assignments, n_classes),
        "proportion_weighting": predict_proportion_weighting(
            test_counts, assignments, proportions, n_classes
        ),
    }
    accuracies = {rule: accuracy(values, test_labels) for rule, values in predictions.items()}
    return assignments, proportions, predictions, accuracies

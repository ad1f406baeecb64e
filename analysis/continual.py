"""Continual-learning metrics for class-incremental experiments.

In a class-incremental protocol the network learns a sequence of *tasks*,
each a set of classes (for MNIST typically one digit per task, ``[[0], [1],
..., [9]]``, or pairs ``[[0, 1], [2, 3], ...]``). After learning each task
the network is tested on the whole test set, which gives one prediction per
test sample per evaluation point. :func:`accuracy_matrix` turns these
predictions into the *accuracy matrix*

    ``accuracy[after_task=t, on_task=k]`` = fraction of the test samples of
    task ``k`` classified correctly after learning tasks ``0..t``,

and the other functions reduce that matrix to the usual summary metrics
(recent, previous and seen-task accuracy, forgetting, backward transfer).

Every function is pure and works on :class:`xarray.DataArray` objects. Only
the named dimensions (``after_task``, ``on_task``, ``sample``) are reduced;
any other dimension (``seed``, ``variant``, ...) broadcasts through untouched
and appears in the result in its original order.

Conventions
-----------
``-1`` in a prediction means "no prediction" and is always counted as wrong
(see :data:`spikedyn_brian.analysis.labelling.NO_PREDICTION`).

Entries of the accuracy matrix above the diagonal (``on_task > after_task``,
tasks not yet learned) are never used by the summary metrics, so they may be
NaN. A NaN in an entry a metric does use propagates to that metric: nothing
is silently skipped. Metrics that average over an empty set (for example
backward transfer with a single task) are NaN.

References
----------
.. [1] D. Lopez-Paz and M. Ranzato, "Gradient episodic memory for continual
   learning", NeurIPS 2017 (backward transfer).
.. [2] A. Chaudhry, P. K. Dokania, T. Ajanthan and P. H. S. Torr, "Riemannian
   walk for incremental learning: understanding forgetting and
   intransigence", ECCV 2018 (forgetting).
"""
from __future__ import annotations

import numbers

import numpy as np
import xarray

from spikedyn_brian.analysis.labelling import holds_whole_numbers

__all__ = [
    "NO_PREDICTION",
    "METRIC_DESCRIPTIONS",
    "accuracy_matrix",
    "recent_task_accuracy",
    "later_recent_task_accuracy",
    "previous_tasks_accuracy_per_step",
    "previous_tasks_accuracy",
    "seen_tasks_accuracy",
    "average_seen_accuracy",
    "forgetting",
    "average_forgetting",
    "backward_transfer",
    "confusion_matrices",
    "summarise",
]

#: Prediction given to a sample that gave no evidence for any class.
NO_PREDICTION = -1

AFTER_TASK = "after_task"
ON_TASK = "on_task"
SAMPLE = "sample"
TASK = "task"

#: ``(long_name, description)`` of every variable written by :func:`summarise`.
METRIC_DESCRIPTIONS = {
    "accuracy": (
        "accuracy on each task after learning each task",
        "accuracy[after_task=t, on_task=k] is the fraction of the test samples "
        "whose label belongs to task k that are classified correctly after the "
        "network has learned tasks 0..t. A -1 (no) prediction is wrong. Entries "
        "with k > t concern tasks not yet learned.",
    ),
    "recent_task_accuracy": (
        "accuracy on the task just learned",
        "Mean over t of accuracy[after_task=t, on_task=t]: the accuracy on each "
        "task right after learning it, averaged over tasks.",
    ),
    "later_recent_task_accuracy": (
        "accuracy on the task just learned, first task left out",
        "Mean over t >= 1 of accuracy[after_task=t, on_task=t]: as "
        "recent_task_accuracy without task 0, after which only one class can "
        "be assigned (with one class per task every digit is then classified "
        "right). NaN with a single task.",
    ),
    "previous_tasks_accuracy_per_step": (
        "accuracy on previously learned tasks",
        "For each t, the mean over k < t of accuracy[after_task=t, on_task=k]: "
        "the accuracy on the tasks learned before task t, measured after "
        "learning task t. NaN at t = 0, where there is no previous task.",
    ),
    "previous_tasks_accuracy": (
        "average accuracy on previously learned tasks",
        "Mean over t >= 1 of previous_tasks_accuracy_per_step[t], i.e. of the "
        "mean over k < t of accuracy[after_task=t, on_task=k]. NaN with a single "
        "task.",
    ),
    "seen_tasks_accuracy": (
        "accuracy on all tasks learned so far",
        "For each t, the mean over k <= t of accuracy[after_task=t, on_task=k]: "
        "the accuracy on every task learned so far, each task weighted equally.",
    ),
    "average_seen_accuracy": (
        "average accuracy on all tasks learned so far",
        "Mean over t of seen_tasks_accuracy[t] (the average incremental accuracy).",
    ),
    "forgetting": (
        "forgetting of each task",
        "Chaudhry et al. (2018): for each task k < T-1, the best accuracy on "
        "task k before the last task was learned, max over t in [k, T-2] of "
        "accuracy[after_task=t, on_task=k], minus the final accuracy "
        "accuracy[after_task=T-1, on_task=k]. Positive values mean the task "
        "was forgotten. T is the number of tasks.",
    ),
    "average_forgetting": (
        "average forgetting",
        "Mean over tasks k < T-1 of forgetting[k] (Chaudhry et al. 2018). NaN "
        "with a single task.",
    ),
    "backward_transfer": (
        "backward transfer",
        "Lopez-Paz & Ranzato (2017): mean over k < T-1 of "
        "accuracy[after_task=T-1, on_task=k] - accuracy[after_task=k, on_task=k], "
        "the change in accuracy on each task between learning it and the end of "
        "training. Negative values mean forgetting. NaN with a single task.",
    ),
}


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _describe_dims(array):
    return f"dims {tuple(array.dims)} with sizes {dict(array.sizes)}"


def _validate_accuracy(accuracy):
    """Return ``accuracy`` as float64 with 0..T-1 coords where it had none.

    Raises ValueError unless it is a DataArray with square ``after_task`` x
    ``on_task`` dimensions holding values in [0, 1] or NaN.
    """
    if not isinstance(accuracy, xarray.DataArray):
        raise ValueError(
            "accuracy must be an xarray.DataArray with dims (..., 'after_task', "
            f"'on_task'); got a {type(accuracy).__name__}. Build it with "
            "accuracy_matrix(...) or wrap an array with "
            "xarray.DataArray(values, dims=('after_task', 'on_task'))."
        )
    missing = [dim for dim in (AFTER_TASK, ON_TASK) if dim not in accuracy.dims]
    if missing:
        raise ValueError(
            "accuracy must have dims 'after_task' and 'on_task'; it lacks "
            f"{missing} (found {_describe_dims(accuracy)}). Rename its dims with "
            "accuracy.rename(...)."
        )
    n_after, n_on = accuracy.sizes[AFTER_TASK], accuracy.sizes[ON_TASK]
    if n_after != n_on:
        raise ValueError(
            "accuracy must be square in 'after_task' and 'on_task' (one "
            "evaluation after each task, on every task); found "
            f"{_describe_dims(accuracy)}, i.e. {n_after} evaluations of {n_on} "
            "tasks."
        )
    if n_after < 1:
        raise ValueError(
            "accuracy must hold at least one task; found "
            f"{_describe_dims(accuracy)}."
        )
    kind = accuracy.dtype.kind
    if kind not in "iuf" and accuracy.dtype != np.bool_:
        raise ValueError(
            f"accuracy must hold numbers in [0, 1]; got dtype {accuracy.dtype}."
        )
    accuracy = accuracy.astype(np.float64)
    values = accuracy.values
    present = values[~np.isnan(values)]
    if present.size and (present.min() < 0.0 or present.max() > 1.0):
        raise ValueError(
            "accuracy values must lie in [0, 1] (or be NaN); found values from "
            f"{present.min()} to {present.max()}. Pass fractions, not "
            "percentages."
        )
    missing_coords = {
        dim: np.arange(accuracy.sizes[dim])
        for dim in (AFTER_TASK, ON_TASK)
        if dim not in accuracy.coords
    }
    if missing_coords:
        accuracy = accuracy.assign_coords(missing_coords)
    return accuracy


def _as_integer_values(values, name):
    """Return ``values`` (a numpy array) as int64, or raise ValueError."""
    if holds_whole_numbers(values):
        return values.astype(np.int64)
    raise ValueError(
        f"{name} must hold integers; got dtype {values.dtype} with non-integer "
        f"or missing values. Cast it with {name}.astype(int) if the values are "
        "whole numbers; use -1, not NaN, for 'no prediction'."
    )


def _validate_predictions(predictions):
    if not isinstance(predictions, xarray.DataArray):
        raise ValueError(
            "predictions must be an xarray.DataArray with dims (..., "
            f"'after_task', 'sample'); got a {type(predictions).__name__}. Wrap "
            "it with xarray.DataArray(values, dims=('after_task', 'sample'))."
        )
    missing = [dim for dim in (AFTER_TASK, SAMPLE) if dim not in predictions.dims]
    if missing:
        raise ValueError(
            "predictions must have dims 'after_task' and 'sample'; it lacks "
            f"{missing} (found {_describe_dims(predictions)}). Rename its dims "
            "with predictions.rename(...)."
        )
    values = _as_integer_values(predictions.values, "predictions")
    if values.size and values.min() < NO_PREDICTION:
        raise ValueError(
            "predictions must be classes (>= 0) or -1 for 'no prediction'; "
            f"found a minimum of {values.min()}."
        )
    return predictions.copy(data=values)


def _validate_labels(labels, predictions):
    """Return ``labels`` as an int64 DataArray with dim 'sample' and no coords."""
    n_samples = predictions.sizes[SAMPLE]
    if isinstance(labels, xarray.DataArray):
        if labels.dims != (SAMPLE,):
            raise ValueError(
                "labels must be 1-D with dim 'sample'; found "
                f"{_describe_dims(labels)}."
            )
        if (
            SAMPLE in labels.coords
            and SAMPLE in predictions.coords
            and not labels.indexes[SAMPLE].equals(predictions.indexes[SAMPLE])
        ):
            raise ValueError(
                "labels and predictions have different 'sample' coordinates; "
                "pass labels in the same sample order as predictions, e.g. "
                "labels.sel(sample=predictions.sample)."
            )
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError(
            f"labels must be 1-D with shape (n_samples,); got {values.ndim}-D "
            f"with shape {values.shape}."
        )
    if values.shape[0] != n_samples:
        raise ValueError(
            f"labels must have one entry per sample: predictions have "
            f"{n_samples} samples ('sample' dim) but labels have "
            f"{values.shape[0]}."
        )
    values = _as_integer_values(values, "labels")
    if values.size and values.min() < 0:
        raise ValueError(
            f"labels must be classes >= 0; found a minimum of {values.min()}."
        )
    return xarray.DataArray(values, dims=(SAMPLE,))


def _validate_tasks(tasks):
    """Return ``tasks`` as a list of tuples of int, checking they are disjoint."""
    if isinstance(tasks, (str, bytes)) or not hasattr(tasks, "__len__"):
        raise ValueError(
            "tasks must be a sequence with the classes of each task, e.g. "
            f"[[0], [1], [2]] or [[0, 1], [2, 3]]; got {tasks!r}."
        )
    if len(tasks) < 1:
        raise ValueError("tasks must hold at least one task; got an empty sequence.")
    normalised = []
    owner = {}
    for task_index, classes in enumerate(tasks):
        if isinstance(classes, numbers.Integral) and not isinstance(classes, bool):
            classes = [classes]
        classes = np.asarray(classes)
        if classes.ndim != 1 or classes.size == 0:
            raise ValueError(
                f"task {task_index} must be a non-empty sequence of classes; "
                f"got {tasks[task_index]!r}. Write tasks as e.g. [[0], [1]]."
            )
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0:
            raise ValueError(
                f"task {task_index} must hold classes as integers >= 0; got "
                f"{tasks[task_index]!r}."
            )
        classes = tuple(int(value) for value in classes)
        for value in classes:
            if value in owner:
                raise ValueError(
                    f"class {value} appears in task {owner[value]} and again in "
                    f"task {task_index}; in a class-incremental protocol each "
                    "class belongs to exactly one task."
                )
            owner[value] = task_index
        normalised.append(classes)
    return normalised


# ---------------------------------------------------------------------------
# reduction helpers (no NaN skipping, no warnings on empty sets)
# ---------------------------------------------------------------------------


def _positions(dim, size):
    return xarray.DataArray(np.arange(size), dims=(dim,))


def _masked_mean(values, mask, dim):
    """Mean of ``values`` over ``dim`` where ``mask``; NaN where mask is empty.

    NaNs inside the mask propagate; values outside the mask are ignored even
    when NaN.
    """
    total = values.where(mask, 0.0).sum(dim, skipna=False)
    count = mask.sum(dim)
    return total / count.where(count > 0)


def _mean(values, dim):
    """Mean over ``dim`` without skipping NaN; NaN if ``dim`` is empty."""
    count = values.sizes[dim]
    total = values.sum(dim, skipna=False)
    if count == 0:
        return total * np.nan
    return total / count


def _finish(result, name):
    long_name, _ = METRIC_DESCRIPTIONS[name]
    result = result.rename(name)
    result.attrs = {"long_name": long_name, "units": "1"}
    return result


def _diagonal(accuracy, n_entries, dim):
    """``accuracy[after_task=i, on_task=i]`` for i < n_entries, along ``dim``."""
    index = xarray.DataArray(np.arange(n_entries), dims=(dim,))
    diagonal = accuracy.isel({AFTER_TASK: index, ON_TASK: index})
    return diagonal.drop_vars([AFTER_TASK, ON_TASK], errors="ignore")


# ---------------------------------------------------------------------------
# accuracy matrix
# ---------------------------------------------------------------------------


def accuracy_matrix(predictions, labels, tasks):
    """Accuracy on each task after learning each task.

    Parameters
    ----------
    predictions : xarray.DataArray of int, dims (..., 'after_task', 'sample')
        Predicted class of every test sample at every evaluation point; ``-1``
        means "no prediction" and is always wrong. Entry ``after_task=t`` holds
        the predictions after learning tasks ``0..t``, so the ``after_task``
        dim must have one entry per task. Other dims (e.g. ``seed``) are kept.
    labels : array_like or xarray.DataArray of int, shape/dim ('sample',)
        True class of every test sample, in the order of ``predictions``.
    tasks : sequence of sequences of int
        The classes of each task, in learning order, e.g. ``[[0], [1], ...]``
        or ``[[0, 1], [2, 3], ...]``. A bare integer stands for a one-class
        task. Each class may belong to one task only.

    Returns
    -------
    xarray.DataArray of float64, dims (..., 'after_task', 'on_task')
        ``accuracy[after_task=t, on_task=k]`` is the fraction of the test
        samples whose label belongs to ``tasks[k]`` that are predicted
        correctly after learning task ``t``. Coordinates ``after_task`` and
        ``on_task`` are ``0..T-1`` with ``T = len(tasks)``.

    Raises
    ------
    ValueError
        If ``predictions`` is not a DataArray with dims 'after_task' and
        'sample' holding integers >= -1, if its 'after_task' length is not
        ``len(tasks)``, if ``labels`` does not hold one integer >= 0 per
        sample, if ``tasks`` is malformed or two tasks share a class, or if a
        task has no test samples.

    Notes
    -----
    Test samples whose label belongs to no task are ignored. Every task is
    weighted by its own samples only, so tasks of different sizes do not bias
    each other.
    """
    predictions = _validate_predictions(predictions)
    labels = _validate_labels(labels, predictions)
    tasks = _validate_tasks(tasks)
    n_tasks = len(tasks)
    if predictions.sizes[AFTER_TASK] != n_tasks:
        raise ValueError(
            f"predictions must have one 'after_task' entry per task: tasks has "
            f"{n_tasks} tasks but predictions have "
            f"{predictions.sizes[AFTER_TASK]} ({_describe_dims(predictions)})."
        )
    membership = np.zeros((labels.size, n_tasks), dtype=np.float64)
    for task_index, classes in enumerate(tasks):
        in_task = np.isin(labels.values, classes)
        if not in_task.any():
            raise ValueError(
                f"task {task_index} (classes {list(classes)}) has no test "
                "samples: no label belongs to it, so its accuracy is undefined. "
                "Check tasks against the labels of the test set."
            )
        membership[:, task_index] = in_task
    membership = xarray.DataArray(membership, dims=(SAMPLE, ON_TASK))
    correct = (predictions == labels).astype(np.float64)
    n_correct = xarray.dot(correct, membership, dim=SAMPLE)
    accuracy = n_correct / membership.sum(SAMPLE)
    accuracy = accuracy.transpose(..., AFTER_TASK, ON_TASK)
    accuracy = accuracy.assign_coords(
        {AFTER_TASK: np.arange(n_tasks), ON_TASK: np.arange(n_tasks)}
    )
    accuracy = _finish(accuracy, "accuracy")
    return accuracy


# ---------------------------------------------------------------------------
# summary metrics
# ---------------------------------------------------------------------------


def recent_task_accuracy(accuracy):
    """Mean accuracy on each task right after learning it.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64
        Mean over ``t`` of ``accuracy[after_task=t, on_task=t]``, over the
        remaining dims (0-D if there are none).

    Raises
    ------
    ValueError
        If ``accuracy`` lacks the dims 'after_task' and 'on_task', is not
        square in them, or holds values outside [0, 1].
    """
    accuracy = _validate_accuracy(accuracy)
    diagonal = _diagonal(accuracy, accuracy.sizes[AFTER_TASK], TASK)
    return _finish(_mean(diagonal, TASK), "recent_task_accuracy")


def later_recent_task_accuracy(accuracy):
    """`recent_task_accuracy` without the first task (mean over t >= 1 of the diagonal).

    After the first task only its classes can be assigned to neurons, so with
    one class per task its accuracy is 1 for every network: it says nothing
    and pulls every network's recent-task mean towards 1 alike.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')

    Returns
    -------
    xarray.DataArray of float64
        NaN with a single task.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    accuracy = _validate_accuracy(accuracy)
    n_tasks = accuracy.sizes[AFTER_TASK]
    diagonal = _diagonal(accuracy, n_tasks, TASK).isel({TASK: slice(1, None)})
    return _finish(_mean(diagonal, TASK), "later_recent_task_accuracy")


def previous_tasks_accuracy_per_step(accuracy):
    """Mean accuracy on the previously learned tasks, after each task.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64, dims (..., 'after_task')
        For each ``t``, the mean over ``k < t`` of
        ``accuracy[after_task=t, on_task=k]``; NaN at ``t = 0``.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    accuracy = _validate_accuracy(accuracy)
    n_tasks = accuracy.sizes[AFTER_TASK]
    before = _positions(ON_TASK, n_tasks) < _positions(AFTER_TASK, n_tasks)
    result = _masked_mean(accuracy, before, ON_TASK).transpose(..., AFTER_TASK)
    return _finish(result, "previous_tasks_accuracy_per_step")


def previous_tasks_accuracy(accuracy):
    """Average accuracy on previously learned tasks.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64
        Mean over ``t >= 1`` of the mean over ``k < t`` of
        ``accuracy[after_task=t, on_task=k]``, over the remaining dims; NaN
        with a single task.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.

    See Also
    --------
    previous_tasks_accuracy_per_step : the inner mean, for each ``t``.
    """
    per_step = previous_tasks_accuracy_per_step(accuracy)
    result = _mean(per_step.isel({AFTER_TASK: slice(1, None)}), AFTER_TASK)
    return _finish(result, "previous_tasks_accuracy")


def seen_tasks_accuracy(accuracy):
    """Mean accuracy on all tasks learned so far, after each task.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64, dims (..., 'after_task')
        For each ``t``, the mean over ``k <= t`` of
        ``accuracy[after_task=t, on_task=k]`` (tasks weighted equally).

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    accuracy = _validate_accuracy(accuracy)
    n_tasks = accuracy.sizes[AFTER_TASK]
    seen = _positions(ON_TASK, n_tasks) <= _positions(AFTER_TASK, n_tasks)
    result = _masked_mean(accuracy, seen, ON_TASK).transpose(..., AFTER_TASK)
    return _finish(result, "seen_tasks_accuracy")


def average_seen_accuracy(accuracy):
    """Average over evaluation points of :func:`seen_tasks_accuracy`.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64
        Mean over ``t`` of the mean over ``k <= t`` of
        ``accuracy[after_task=t, on_task=k]``, over the remaining dims.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    result = _mean(seen_tasks_accuracy(accuracy), AFTER_TASK)
    return _finish(result, "average_seen_accuracy")


def forgetting(accuracy):
    """Forgetting of each task but the last (Chaudhry et al. 2018).

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square ``T`` x ``T`` accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64, dims (..., 'task')
        For each task ``k < T-1``, the maximum over ``t`` in ``[k, T-2]`` of
        ``accuracy[after_task=t, on_task=k]`` minus
        ``accuracy[after_task=T-1, on_task=k]``. The ``task`` coordinate is
        the ``on_task`` coordinate of those tasks (``0..T-2`` for a matrix
        from :func:`accuracy_matrix`); it is empty when ``T = 1``.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    accuracy = _validate_accuracy(accuracy)
    last = accuracy.sizes[AFTER_TASK] - 1
    after = _positions(AFTER_TASK, last + 1)
    on = _positions(ON_TASK, last + 1)
    window = (after >= on) & (after < last)
    best = accuracy.where(window, -np.inf).max(AFTER_TASK, skipna=False)
    final = accuracy.isel({AFTER_TASK: last}, drop=True)
    result = (best - final).isel({ON_TASK: slice(0, last)})
    result = result.rename({ON_TASK: TASK}).transpose(..., TASK)
    return _finish(result, "forgetting")


def average_forgetting(accuracy):
    """Mean of :func:`forgetting` over tasks ``k < T-1``.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64
        Average forgetting over the remaining dims; NaN with a single task.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    return _finish(_mean(forgetting(accuracy), TASK), "average_forgetting")


def backward_transfer(accuracy):
    """Backward transfer (Lopez-Paz & Ranzato 2017).

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square ``T`` x ``T`` accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.DataArray of float64
        Mean over ``k < T-1`` of ``accuracy[after_task=T-1, on_task=k] -
        accuracy[after_task=k, on_task=k]``, over the remaining dims; NaN
        with a single task. Negative values mean forgetting.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    accuracy = _validate_accuracy(accuracy)
    last = accuracy.sizes[AFTER_TASK] - 1
    when_learned = _diagonal(accuracy, last, TASK)
    final = accuracy.isel({AFTER_TASK: last, ON_TASK: slice(0, last)}, drop=True)
    final = final.rename({ON_TASK: TASK}).drop_vars(TASK, errors="ignore")
    return _finish(_mean(final - when_learned, TASK), "backward_transfer")


# ---------------------------------------------------------------------------
# confusion matrices
# ---------------------------------------------------------------------------


def confusion_matrices(predictions, labels, n_classes=10):
    """Count of every (true class, predicted class) pair at every evaluation.

    Parameters
    ----------
    predictions : xarray.DataArray of int, dims (..., 'after_task', 'sample')
        Predicted class of every test sample; ``-1`` means "no prediction".
    labels : array_like or xarray.DataArray of int, shape/dim ('sample',)
        True class of every test sample, in ``0..n_classes - 1``.
    n_classes : int, optional
        Number of classes (default 10, the MNIST digits).

    Returns
    -------
    xarray.DataArray of int64, dims (..., 'after_task', 'true_class', 'predicted_class')
        ``counts[..., t, c, p]`` is the number of test samples of class ``c``
        predicted as ``p`` after learning task ``t``. The ``true_class``
        coordinate is ``0..n_classes - 1``; the ``predicted_class``
        coordinate is ``-1..n_classes - 1``, where ``-1`` counts the samples
        with no prediction. Each row sums to the number of test samples of
        its class.

    Raises
    ------
    ValueError
        If ``n_classes`` is not a positive integer, if ``predictions`` is not
        a DataArray with dims 'after_task' and 'sample' holding integers in
        ``-1..n_classes - 1``, or if ``labels`` does not hold one integer in
        ``0..n_classes - 1`` per sample.
    """
    if (
        isinstance(n_classes, bool)
        or not isinstance(n_classes, numbers.Integral)
        or n_classes < 1
    ):
        raise ValueError(f"n_classes must be a positive integer; got {n_classes!r}.")
    n_classes = int(n_classes)
    predictions = _validate_predictions(predictions)
    labels = _validate_labels(labels, predictions)
    if predictions.size and predictions.values.max() >= n_classes:
        raise ValueError(
            f"predictions must lie in -1..{n_classes - 1} (n_classes={n_classes}); "
            f"found a maximum of {predictions.values.max()}. Pass a larger "
            "n_classes."
        )
    if labels.size and labels.values.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} (n_classes={n_classes}); "
            f"found a maximum of {labels.values.max()}. Pass a larger n_classes."
        )
    true_classes = np.arange(n_classes)
    predicted_classes = np.arange(NO_PREDICTION, n_classes)
    true_one_hot = (labels == xarray.DataArray(true_classes, dims=("true_class",)))
    predicted_one_hot = predictions == xarray.DataArray(
        predicted_classes, dims=("predicted_class",)
    )
    counts = xarray.dot(
        predicted_one_hot.astype(np.int64), true_one_hot.astype(np.int64), dim=SAMPLE
    )
    counts = counts.transpose(..., AFTER_TASK, "true_class", "predicted_class")
    counts = counts.assign_coords(
        true_class=true_classes, predicted_class=predicted_classes
    )
    counts = counts.rename("confusion")
    counts.attrs = {
        "long_name": "test samples of each true class per predicted class",
        "units": "1",
        "description": (
            "confusion[after_task=t, true_class=c, predicted_class=p] is the "
            "number of test samples of class c predicted as p after learning "
            "task t; predicted_class -1 means no prediction."
        ),
    }
    return counts


# ---------------------------------------------------------------------------
# summary dataset
# ---------------------------------------------------------------------------


def summarise(accuracy):
    """All continual-learning metrics of an accuracy matrix, as a Dataset.

    Parameters
    ----------
    accuracy : xarray.DataArray, dims (..., 'after_task', 'on_task')
        Square accuracy matrix from :func:`accuracy_matrix`.

    Returns
    -------
    xarray.Dataset
        Variables ``accuracy`` (the matrix), ``recent_task_accuracy``,
        ``later_recent_task_accuracy``, ``previous_tasks_accuracy``, ``previous_tasks_accuracy_per_step``
        (dim ``after_task``), ``seen_tasks_accuracy`` (dim ``after_task``),
        ``average_seen_accuracy``, ``forgetting`` (dim ``task``),
        ``average_forgetting`` and ``backward_transfer``, each with attrs
        ``long_name``, ``units`` and ``description`` (see
        :data:`METRIC_DESCRIPTIONS`). Extra dims of ``accuracy`` are kept on
        every variable.

    Raises
    ------
    ValueError
        As for :func:`recent_task_accuracy`.
    """
    accuracy = _validate_accuracy(accuracy)
    variables = {
        "accuracy": _finish(accuracy, "accuracy"),
        "recent_task_accuracy": recent_task_accuracy(accuracy),
        "later_recent_task_accuracy": later_recent_task_accuracy(accuracy),
        "previous_tasks_accuracy": previous_tasks_accuracy(accuracy),
        "previous_tasks_accuracy_per_step": previous_tasks_accuracy_per_step(
            accuracy
        ),
        "seen_tasks_accuracy": seen_tasks_accuracy(accuracy),
        "average_seen_accuracy": average_seen_accuracy(accuracy),
        "forgetting": forgetting(accuracy),
        "average_forgetting": average_forgetting(accuracy),
        "backward_transfer": backward_transfer(accuracy),
    }
    for name, variable in variables.items():
        variable.attrs["description"] = METRIC_DESCRIPTIONS[name][1]
    return xarray.Dataset(variables)

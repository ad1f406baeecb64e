"""Plots of continual-learning results.

In the style of `brian2tools <https://brian2tools.readthedocs.io>`_: every
function takes plain arrays (numpy arrays, or anything :func:`numpy.asarray`
accepts, :class:`xarray.DataArray` included), draws on an optional matplotlib
``ax`` and returns that ``ax``. Without ``ax`` a new figure is created with
:func:`matplotlib.pyplot.subplots`; with one, pyplot is never used, so the
functions also work on a bare :class:`matplotlib.figure.Figure` (as
:mod:`spikedyn_brian.protocols.continual_figures` does) under any backend,
Agg included.

Accuracies are fractions in ``[0, 1]``; they are shown in percent.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

__all__ = [
    "plot_accuracy_matrix",
    "plot_task_accuracy_curves",
    "plot_receptive_fields",
    "plot_confusion_matrix",
    "receptive_field_grid",
    "plot_tuning_convergence",
]

#: Largest heatmap side whose cells are annotated by default.
_MAX_ANNOTATED = 12


def _new_axes(ax, figsize):
    """Return ``ax``, or the axes of a new pyplot figure if it is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _tick_labels(labels, size, name):
    if labels is None:
        return [str(index) for index in range(size)]
    labels = [str(label) for label in labels]
    if len(labels) != size:
        raise ValueError(
            f"{name} must have {size} entries (one per row/column); got {len(labels)}."
        )
    return labels


def _annotate(ax, values, text, image):
    """Write ``text(value)`` in every finite cell, dark or light for contrast."""
    for row, column in np.ndindex(values.shape):
        value = values[row, column]
        if not np.isfinite(value):
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        luminance = 0.299 * red + 0.587 * green + 0.114 * blue
        ax.text(column, row, text(value), ha="center", va="center", fontsize="small",
                color="black" if luminance > 0.5 else "white")


def plot_accuracy_matrix(accuracy, ax=None, title=None, task_labels=None, annotate=True,
                         colorbar=True, cmap="viridis", mask_unlearned=True):
    """Heatmap of an accuracy matrix, each cell annotated in percent.

    Parameters
    ----------
    accuracy : array_like, shape (T, T)
        ``accuracy[t, k]`` is the accuracy (a fraction in ``[0, 1]``) on task
        ``k`` after learning tasks ``0..t`` (dims ``after_task``, ``on_task``
        of :func:`spikedyn_brian.analysis.continual.accuracy_matrix`). NaN
        cells are left blank.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created if None.
    title : str, optional
        Axes title.
    task_labels : sequence of str, optional
        Label of each task (e.g. its classes); default ``0..T-1``.
    annotate : bool, optional
        Write the accuracy in percent in every cell (default True).
    colorbar : bool, optional
        Add a colorbar (default True).
    cmap : str or matplotlib.colors.Colormap, optional
        Colormap (default ``"viridis"``), scaled from 0 to 1.
    mask_unlearned : bool, optional
        Leave the cells of tasks not yet learned (``k > t``, above the
        diagonal) blank (default True): their 0 % is not a result.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; ``ax.images[0].get_array()`` holds ``accuracy`` (masked
        above the diagonal with ``mask_unlearned``).

    Raises
    ------
    ValueError
        If ``accuracy`` is not 2-D or ``task_labels`` has the wrong length.
    """
    values = np.asarray(accuracy, dtype=float)
    if values.ndim != 2:
        raise ValueError(
            f"accuracy must be 2-D (after_task, on_task); got shape {values.shape}. "
            "Select one variant/seed first, or average over them."
        )
    ax = _new_axes(ax, (5, 4.2))
    if mask_unlearned:
        rows, columns = np.indices(values.shape)
        values = np.ma.masked_where(columns > rows, values)
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap=cmap, origin="upper",
                      interpolation="nearest")
    if annotate:
        _annotate(ax, np.ma.filled(values, np.nan), lambda value: f"{100 * value:.0f}", image)
    ax.set_xticks(range(values.shape[1]),
                  _tick_labels(task_labels, values.shape[1], "task_labels"))
    ax.set_yticks(range(values.shape[0]),
                  _tick_labels(task_labels, values.shape[0], "task_labels"))
    ax.set_xlabel("tested on task")
    ax.set_ylabel("after learning task")
    if title is not None:
        ax.set_title(title)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        bar.set_label("accuracy")
    return ax


def _as_rows(values, name):
    if values is None:
        return None
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[np.newaxis, :]
    if values.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_variants, T) or (T,); got shape {values.shape}."
        )
    return values


def plot_task_accuracy_curves(recent, previous, labels=None, ax=None, recent_spread=None,
                              previous_spread=None, task_labels=None, title=None,
                              colors=None, band_alpha=0.2):
    """Recent-task and previous-task accuracy after each task, one colour per variant.

    Parameters
    ----------
    recent : array_like, shape (n_variants, T) or (T,), or None
        Accuracy on the task just learned, ``accuracy[t, t]``, after each task
        ``t``. Drawn as solid lines. None draws no recent-task curves.
    previous : array_like, shape (n_variants, T) or (T,), or None
        Mean accuracy on the tasks learned before ``t``, after each task ``t``
        (``previous_tasks_accuracy_per_step``; NaN at ``t = 0``). Drawn as
        dashed lines. None draws no previous-task curves.
    labels : sequence of str, optional
        Name of each variant, shown in the legend.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created if None.
    recent_spread, previous_spread : array_like, optional
        Same shapes as ``recent``/``previous``: a spread (e.g. the standard
        deviation over seeds) drawn as a shaded band ``value ± spread``,
        clipped to ``[0, 1]``.
    task_labels : sequence of str, optional
        Label of each task on the x axis; default ``0..T-1``.
    title : str, optional
        Axes title.
    colors : sequence of colours, optional
        One colour per variant; default matplotlib's colour cycle.
    band_alpha : float, optional
        Opacity of the spread bands (default 0.2).

    Returns
    -------
    matplotlib.axes.Axes
        The axes. ``ax.lines`` holds, for each variant in order, its recent
        curve and then its previous curve (whichever are drawn); their y data
        are the rows of ``recent`` and ``previous``.

    Raises
    ------
    ValueError
        If both ``recent`` and ``previous`` are None, or if the shapes of the
        arrays, ``labels``, ``colors`` or ``task_labels`` do not agree.
    """
    recent = _as_rows(recent, "recent")
    previous = _as_rows(previous, "previous")
    if recent is None and previous is None:
        raise ValueError("give recent, previous or both; both are None.")
    shape = (recent if recent is not None else previous).shape
    if recent is not None and previous is not None and recent.shape != previous.shape:
        raise ValueError(
            f"recent and previous must have the same shape; got {recent.shape} and "
            f"{previous.shape}."
        )
    spreads = {}
    for name, spread, curve in (("recent_spread", recent_spread, recent),
                                ("previous_spread", previous_spread, previous)):
        spread = _as_rows(spread, name)
        if spread is not None and (curve is None or spread.shape != curve.shape):
            raise ValueError(
                f"{name} must have the shape of its curves {shape}; got "
                f"{None if spread is None else spread.shape}."
            )
        spreads[name] = spread
    n_variants, n_tasks = shape
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != n_variants:
            raise ValueError(
                f"labels must have one entry per variant ({n_variants}); got {len(labels)}."
            )
    if colors is None:
        cycle = [f"C{index % 10}" for index in range(n_variants)]
    else:
        cycle = list(colors)
        if len(cycle) != n_variants:
            raise ValueError(
                f"colors must have one entry per variant ({n_variants}); got {len(cycle)}."
            )
    ax = _new_axes(ax, (6, 4))
    steps = np.arange(n_tasks)
    for index in range(n_variants):
        color = cycle[index]
        name = labels[index] if labels is not None else f"variant {index}"
        first = True
        for curve, spread, style, kind in (
            (recent, spreads["recent_spread"], "-", "recent task"),
            (previous, spreads["previous_spread"], "--", "previous tasks"),
        ):
            if curve is None:
                continue
            # Only the first curve of a labelled variant enters the legend.
            legend_label = name if (labels is not None and first) else f"_{name}: {kind}"
            ax.plot(steps, curve[index], linestyle=style, marker="o", markersize=3,
                    color=color, label=legend_label)
            if spread is not None:
                # Accuracies are fractions: clip the band to [0, 1].
                ax.fill_between(steps, np.clip(curve[index] - spread[index], 0.0, 1.0),
                                np.clip(curve[index] + spread[index], 0.0, 1.0), color=color,
                                alpha=band_alpha, linewidth=0)
            first = False
    ax.set_xticks(steps, _tick_labels(task_labels, n_tasks, "task_labels"))
    ax.set_xlabel("after learning task")
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if recent is not None and previous is not None:
        styles = [Line2D([], [], color="0.3", linestyle="-", label="recent task"),
                  Line2D([], [], color="0.3", linestyle="--", label="previous tasks")]
        if labels is not None:
            variant_legend = ax.legend(loc="lower left", fontsize="small")
            ax.add_artist(variant_legend)
        ax.legend(handles=styles, loc="lower right", fontsize="small")
    elif labels is not None:
        ax.legend(loc="lower left", fontsize="small")
    return ax


def receptive_field_grid(weights, n_inputs_side=28, max_neurons=100, n_columns=None):
    """Tile the receptive fields of the first neurons into one 2-D image.

    Parameters
    ----------
    weights : array_like, shape (n_inputs_side**2, N)
        Input-to-neuron weights; column ``j`` is the receptive field of
        neuron ``j`` (dims ``input``, ``neuron``), row-major pixels.
    n_inputs_side : int, optional
        Side of the square input image (default 28, MNIST).
    max_neurons : int, optional
        Tile at most the first ``max_neurons`` neurons (default 100).
    n_columns : int, optional
        Tiles per row; default ``ceil(sqrt(n))`` for ``n`` tiled neurons.

    Returns
    -------
    numpy.ndarray of float, shape (rows * n_inputs_side, n_columns * n_inputs_side)
        Tile ``j`` (row-major) is neuron ``j``'s field reshaped to
        ``(n_inputs_side, n_inputs_side)``; unused tiles are NaN.

    Raises
    ------
    ValueError
        If ``weights`` is not 2-D with ``n_inputs_side**2`` rows, or
        ``max_neurons``/``n_columns`` is not positive.
    """
    weights = np.asarray(weights, dtype=float)
    side = int(n_inputs_side)
    if weights.ndim != 2 or weights.shape[0] != side * side:
        raise ValueError(
            f"weights must have shape ({side * side}, n_neurons) for {side}x{side} inputs; "
            f"got {weights.shape}. Transpose (neuron, input) arrays first."
        )
    if max_neurons < 1:
        raise ValueError(f"max_neurons must be positive; got {max_neurons}.")
    n_shown = min(weights.shape[1], int(max_neurons))
    if n_columns is None:
        n_columns = max(1, math.ceil(math.sqrt(n_shown)))
    if n_columns < 1:
        raise ValueError(f"n_columns must be positive; got {n_columns}.")
    n_rows = max(1, math.ceil(n_shown / n_columns))
    grid = np.full((n_rows * side, n_columns * side), np.nan)
    for neuron in range(n_shown):
        row, column = divmod(neuron, n_columns)
        grid[row * side:(row + 1) * side, column * side:(column + 1) * side] = (
            weights[:, neuron].reshape(side, side))
    return grid


def plot_receptive_fields(weights, n_inputs_side=28, max_neurons=100, ax=None, n_columns=None,
                          cmap="hot_r", vmin=0.0, vmax=None, colorbar=True, title=None):
    """Receptive fields of the first neurons as a grid of image tiles.

    Parameters
    ----------
    weights : array_like, shape (n_inputs_side**2, N)
        Input-to-neuron weights (dims ``input``, ``neuron``, e.g.
        ``results.weights.sel(after_task=t)``).
    n_inputs_side : int, optional
        Side of the square input image (default 28, MNIST).
    max_neurons : int, optional
        Show at most the first ``max_neurons`` neurons (default 100).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created if None.
    n_columns : int, optional
        Tiles per row; default ``ceil(sqrt(n))``.
    cmap : str or matplotlib.colors.Colormap, optional
        Colormap (default ``"hot_r"``: strong weights dark).
    vmin, vmax : float, optional
        Colour scale; default 0 to the largest shown weight.
    colorbar : bool, optional
        Add a colorbar (default True).
    title : str, optional
        Axes title; default "first n of N neurons".

    Returns
    -------
    matplotlib.axes.Axes
        The axes; ``ax.images[0].get_array()`` is the tiled image of
        :func:`receptive_field_grid`.

    Raises
    ------
    ValueError
        As for :func:`receptive_field_grid`.
    """
    grid = receptive_field_grid(weights, n_inputs_side, max_neurons, n_columns)
    n_neurons = np.shape(weights)[1]
    n_shown = min(n_neurons, int(max_neurons))
    if vmax is None:
        finite = grid[np.isfinite(grid)]
        vmax = float(finite.max()) if finite.size and finite.max() > vmin else vmin + 1.0
    ax = _new_axes(ax, (5, 5))
    image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    side = int(n_inputs_side)
    # Thin separators between tiles.
    for position in range(side, grid.shape[1], side):
        ax.axvline(position - 0.5, color="0.6", linewidth=0.3)
    for position in range(side, grid.shape[0], side):
        ax.axhline(position - 0.5, color="0.6", linewidth=0.3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else f"first {n_shown} of {n_neurons} neurons")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8).set_label("weight")
    return ax


def plot_confusion_matrix(counts, true_classes, predicted_classes, ax=None, normalise=False,
                          annotate=None, colorbar=True, title=None, cmap="Blues"):
    """Heatmap of a confusion matrix, optionally normalised per true class.

    Parameters
    ----------
    counts : array_like, shape (n_true, n_predicted)
        ``counts[i, j]`` is the number of test samples of class
        ``true_classes[i]`` predicted as ``predicted_classes[j]`` (dims
        ``true_class``, ``predicted_class`` of
        :func:`spikedyn_brian.analysis.continual.confusion_matrices`).
    true_classes : sequence of int
        Class of each row.
    predicted_classes : sequence of int
        Class of each column; ``-1`` (no prediction) is labelled "none".
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created if None.
    normalise : bool, optional
        Divide each row by its sum, showing the fraction of each true class
        given each prediction, on a 0-1 scale (default False: raw counts).
        Rows without samples become NaN (blank).
    annotate : bool, optional
        Write the value in every cell (percent when normalised); default:
        only if both sides have at most 12 entries.
    colorbar : bool, optional
        Add a colorbar (default True).
    title : str, optional
        Axes title.
    cmap : str or matplotlib.colors.Colormap, optional
        Colormap (default ``"Blues"``).

    Returns
    -------
    matplotlib.axes.Axes
        The axes; ``ax.images[0].get_array()`` holds the counts (or the
        row-normalised fractions).

    Raises
    ------
    ValueError
        If ``counts`` is not 2-D or the class sequences do not match its shape.
    """
    values = np.asarray(counts, dtype=float)
    if values.ndim != 2:
        raise ValueError(
            f"counts must be 2-D (true_class, predicted_class); got shape {values.shape}. "
            "Select one evaluation (after_task) first."
        )
    true_classes = [int(value) for value in np.asarray(true_classes).ravel()]
    predicted_classes = [int(value) for value in np.asarray(predicted_classes).ravel()]
    if len(true_classes) != values.shape[0] or len(predicted_classes) != values.shape[1]:
        raise ValueError(
            f"counts has shape {values.shape} but there are {len(true_classes)} true and "
            f"{len(predicted_classes)} predicted classes."
        )
    if normalise:
        totals = values.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(totals > 0, values / np.where(totals > 0, totals, 1.0), np.nan)
        vmin, vmax = 0.0, 1.0
    else:
        vmin, vmax = 0.0, max(float(np.nanmax(values)) if values.size else 0.0, 1.0)
    ax = _new_axes(ax, (5.5, 4.5))
    image = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
    if annotate is None:
        annotate = max(values.shape) <= _MAX_ANNOTATED
    if annotate:
        text = (lambda value: f"{100 * value:.0f}") if normalise else (
            lambda value: f"{value:.0f}")
        _annotate(ax, values, text, image)
    ax.set_xticks(range(len(predicted_classes)),
                  ["none" if value < 0 else str(value) for value in predicted_classes])
    ax.set_yticks(range(len(true_classes)), [str(value) for value in true_classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title is not None:
        ax.set_title(title)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax)
        if normalise:
            bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
            bar.set_label("fraction of true class")
        else:
            bar.set_label("test samples")
    return ax


def plot_pareto_front(energy, accuracy, memory, pareto=None, labels=None, selected=None,
                      ax=None, title=None):
    """Accuracy against energy per sample, marker area growing with memory.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energy per sample, in joules (drawn in µJ on a log axis).
    accuracy : array_like, shape (n,)
        Fractions in [0, 1].
    memory : array_like, shape (n,)
        Bytes; marker area grows with it.
    pareto : array_like of bool, optional
        Pareto-optimal points: filled and joined by the front's staircase.
    labels : sequence of str, optional
        One label per point, written next to it.
    selected : str, optional
        Label of the selected point: ringed.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    energy = np.asarray(energy, dtype=float) * 1e6
    accuracy = np.asarray(accuracy, dtype=float)
    memory = np.asarray(memory, dtype=float)
    if not energy.shape == accuracy.shape == memory.shape:
        raise ValueError(
            f"energy, accuracy and memory must have the same shape; got {energy.shape}, "
            f"{accuracy.shape}, {memory.shape}."
        )
    pareto = np.zeros(energy.shape, bool) if pareto is None else np.asarray(pareto, bool)
    labels = _tick_labels(labels, energy.size, "labels")
    ax = _new_axes(ax, (6.5, 4.5))
    area = 20 + 200 * memory / max(float(memory.max()) if memory.size else 1.0, 1.0)
    ax.scatter(energy[~pareto], accuracy[~pareto], s=area[~pareto], facecolors="none",
               edgecolors="grey", label="dominated")
    ax.scatter(energy[pareto], accuracy[pareto], s=area[pareto], color="C0",
               label="Pareto front")
    if pareto.any():
        order = np.argsort(energy[pareto])
        ax.step(energy[pareto][order], accuracy[pareto][order], where="post", color="C0",
                linewidth=1)
    for x, y, text in zip(energy, accuracy, labels):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 4),
                    fontsize="x-small")
    if selected is not None and selected in labels:
        index = labels.index(selected)
        ax.scatter([energy[index]], [accuracy[index]], s=area[index] * 2.5, facecolors="none",
                   edgecolors="C3", linewidths=2, label=f"selected: {selected}")
    ax.set_xscale("log")
    ax.set_xlabel("training energy per sample (µJ, analytical)")
    ax.set_ylabel("test accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.legend(fontsize="small", loc="lower right")
    if title is not None:
        ax.set_title(title)
    return ax


__all__ += ["plot_pareto_front"]


def plot_tuning_convergence(objectives, labels=None, ax=None, title=None, colors=None,
                            show_trials=True):
    """Best objective reached against trial number, one line per tuning study.

    Parameters
    ----------
    objectives : sequence of array_like
        Each study's trial objectives in trial order (NaN: a failed trial).
    labels : sequence of str, optional
        Name of each study, shown in the legend.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created if None.
    title : str, optional
    colors : sequence of colours, optional
    show_trials : bool
        Also mark every trial's own objective (small dots).

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.lines`` holds one step line per study (its y data: the running
        maximum, NaN before the first complete trial), then the dots.

    Raises
    ------
    ValueError
        If ``labels`` or ``colors`` do not have one entry per study.
    """
    studies = [np.asarray(values, dtype=float).ravel() for values in objectives]
    for name, values in (("labels", labels), ("colors", colors)):
        if values is not None and len(values) != len(studies):
            raise ValueError(f"{name} must have one entry per study ({len(studies)}); "
                             f"got {len(values)}.")
    ax = _new_axes(ax, (6, 4))
    palette = colors or [f"C{index}" for index in range(len(studies))]
    for index, values in enumerate(studies):
        finite = np.where(np.isfinite(values), values, -np.inf)
        best = np.maximum.accumulate(finite)
        best = np.where(np.isfinite(best), best, np.nan)
        trials = np.arange(len(values))
        ax.step(trials, best, where="post", color=palette[index],
                label=None if labels is None else labels[index])
    if show_trials:
        for index, values in enumerate(studies):
            ax.plot(np.arange(len(values)), values, ".", color=palette[index], alpha=0.4,
                    markersize=4)
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (validation)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if labels is not None:
        ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return ax

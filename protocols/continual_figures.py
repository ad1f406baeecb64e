"""Figures of continual-learning results (dynamic digits and the comparison).

:func:`make_figures` draws one dynamic-digits results file
(:mod:`spikedyn_brian.protocols.dynamic_digits`):

``accuracy_matrix``
    heatmap of ``accuracy(after_task, on_task)``;
``task_accuracy``
    recent-task accuracy ``accuracy[t, t]`` and previous-task accuracy
    (``previous_tasks_accuracy_per_step``) after each task;
``receptive_fields``
    one panel per task: the receptive fields of the first neurons after it;
``confusion_matrices``
    one panel per task: the row-normalised confusion matrix after it.

:func:`make_comparison_figures` draws the merged Dataset of
:mod:`spikedyn_brian.protocols.continual_comparison` (dims ``variant`` and
``seed`` in front):

``comparison_accuracy_matrices``
    one heatmap per variant, mean over seeds;
``comparison_task_accuracy``
    recent-task and previous-task accuracy after each task for every variant,
    mean ± standard deviation over seeds.

Each figure is written once per format as ``<out_dir>/<name>.<format>``.
Figures are built on bare :class:`matplotlib.figure.Figure` objects, so
nothing depends on (or changes) pyplot's backend or global state.

Command line::

    python -m spikedyn_brian.protocols.continual_figures RESULTS.nc --out DIR
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import xarray
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from spikedyn_brian.analysis import plots
from spikedyn_brian.analysis.storage import read_dataset

__all__ = ["make_figures", "make_comparison_figures", "task_labels", "main"]

DEFAULT_FORMATS = ("png", "svg")


def _load(dataset_or_path):
    if isinstance(dataset_or_path, xarray.Dataset):
        return dataset_or_path
    if isinstance(dataset_or_path, (str, os.PathLike)):
        return read_dataset(dataset_or_path)
    raise TypeError(
        "expected an xarray.Dataset or the path of a results file; got a "
        f"{type(dataset_or_path).__name__}."
    )


def _check_formats(formats):
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(str(fmt).lower().lstrip(".") for fmt in formats)
    if not formats:
        raise ValueError("formats must name at least one file format, e.g. ('png', 'svg').")
    supported = Figure().canvas.get_supported_filetypes()
    unknown = [fmt for fmt in formats if fmt not in supported]
    if unknown:
        raise ValueError(
            f"unsupported figure format(s) {unknown}; choose from {', '.join(sorted(supported))}."
        )
    return formats


def _save(figure, out_dir, name, formats, dpi):
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        figure.savefig(path, format=fmt, dpi=dpi)
        paths.append(path)
    return paths


def _grid(n_panels, max_columns):
    n_columns = max(1, min(n_panels, max_columns))
    return math.ceil(n_panels / n_columns), n_columns


def task_labels(dataset):
    """Labels of the tasks of a results Dataset: their classes, e.g. ``"3"`` or ``"0,1"``.

    Parameters
    ----------
    dataset : xarray.Dataset
        A dynamic-digits results Dataset (variable ``task_classes``) or a
        comparison Dataset (attribute ``base_config`` with the stream's
        ``task_order`` and ``classes_per_task``).

    Returns
    -------
    list of str
        One label per task (``on_task``); the task indices ``"0".."T-1"``
        when the classes are not recorded or do not match.
    """
    n_tasks = dataset.sizes["on_task"]
    tasks = None
    if "task_classes" in dataset:
        tasks = np.asarray(dataset["task_classes"].values).tolist()
    else:
        config = dataset.attrs.get("base_config") or dataset.attrs.get("config")
        try:
            stream = json.loads(config)["stream"]
            order, size = list(stream["task_order"]), int(stream["classes_per_task"])
            tasks = [order[start:start + size] for start in range(0, len(order), size)]
        except (TypeError, ValueError, KeyError):
            tasks = None
    if tasks is None or len(tasks) != n_tasks:
        return [str(task) for task in range(n_tasks)]
    return [",".join(str(int(c)) for c in np.atleast_1d(classes)) for classes in tasks]


def _matrix(array):
    """``array`` (dims include after_task, on_task) as a numpy (..., T, T) array."""
    return np.asarray(array.transpose(..., "after_task", "on_task").values, dtype=float)


def make_figures(dataset_or_path, out_dir, formats=DEFAULT_FORMATS, max_neurons=100, dpi=150):
    """Write the figures of one dynamic-digits run.

    Parameters
    ----------
    dataset_or_path : xarray.Dataset or str or os.PathLike
        Results of :func:`spikedyn_brian.protocols.dynamic_digits.run`, or
        the netCDF file it wrote. Needs ``accuracy``; the receptive-field and
        confusion figures are drawn only if ``weights`` and ``confusion``
        are present.
    out_dir : str or os.PathLike
        Directory for the figures; created if missing.
    formats : sequence of str, optional
        File formats (default ``("png", "svg")``).
    max_neurons : int, optional
        Receptive fields of at most this many neurons per task (default 100).
    dpi : float, optional
        Resolution of raster formats (default 150).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order ``accuracy_matrix``,
        ``task_accuracy``, ``receptive_fields``, ``confusion_matrices``,
        each in every format.

    Raises
    ------
    ValueError
        If the dataset has ``variant``/``seed`` dims (use
        :func:`make_comparison_figures`), lacks ``accuracy``, or a format is
        unsupported.
    """
    dataset = _load(dataset_or_path)
    formats = _check_formats(formats)
    if "accuracy" not in dataset:
        raise ValueError(
            "the dataset has no 'accuracy' variable; is it a dynamic-digits results file?"
        )
    extra = [dim for dim in dataset["accuracy"].dims if dim not in ("after_task", "on_task")]
    if extra:
        raise ValueError(
            f"accuracy has extra dims {extra}: this looks like a comparison Dataset; use "
            "make_comparison_figures, or select one run first (e.g. .sel(variant=..., seed=...))."
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = task_labels(dataset)
    network = str(dataset.attrs.get("network", "network"))
    accuracy = _matrix(dataset["accuracy"])
    n_tasks = accuracy.shape[0]
    paths = []

    figure = Figure(figsize=(1.6 + 0.55 * n_tasks, 1.2 + 0.5 * n_tasks), layout="constrained")
    plots.plot_accuracy_matrix(accuracy, ax=figure.add_subplot(), task_labels=labels,
                               title=f"{network}: accuracy after each task")
    paths += _save(figure, out_dir, "accuracy_matrix", formats, dpi)

    if "previous_tasks_accuracy_per_step" in dataset:
        previous = np.asarray(dataset["previous_tasks_accuracy_per_step"].values, dtype=float)
    else:
        from spikedyn_brian.analysis import continual

        previous = continual.previous_tasks_accuracy_per_step(dataset["accuracy"]).values
    figure = Figure(figsize=(6, 4), layout="constrained")
    plots.plot_task_accuracy_curves(np.diagonal(accuracy), previous, labels=[network],
                                    ax=figure.add_subplot(), task_labels=labels,
                                    title="recent-task and previous-task accuracy")
    paths += _save(figure, out_dir, "task_accuracy", formats, dpi)

    if "weights" in dataset:
        weights = np.asarray(
            dataset["weights"].transpose("after_task", "input", "neuron").values, dtype=float)
        side = int(round(math.sqrt(weights.shape[1])))
        if side * side == weights.shape[1]:
            n_rows, n_columns = _grid(n_tasks, 5)
            figure = Figure(figsize=(3.0 * n_columns + 0.8, 3.1 * n_rows), layout="constrained")
            axes = figure.subplots(n_rows, n_columns, squeeze=False)
            vmax = float(np.nanmax(weights)) if weights.size else 1.0
            for task in range(n_tasks):
                ax = plots.plot_receptive_fields(
                    weights[task], n_inputs_side=side, max_neurons=max_neurons,
                    ax=axes.flat[task], vmax=vmax if vmax > 0 else 1.0, colorbar=False,
                    title=f"after task {labels[task]}")
            for ax in axes.flat[n_tasks:]:
                ax.set_axis_off()
            figure.colorbar(ax.images[0], ax=axes, shrink=0.6).set_label("weight")
            n_neurons = weights.shape[2]
            figure.suptitle(f"{network}: receptive fields of the first "
                            f"{min(n_neurons, max_neurons)} of {n_neurons} neurons")
            paths += _save(figure, out_dir, "receptive_fields", formats, dpi)

    if "confusion" in dataset:
        confusion = dataset["confusion"].transpose("after_task", "true_class", "predicted_class")
        n_rows, n_columns = _grid(n_tasks, 5)
        figure = Figure(figsize=(3.4 * n_columns + 0.8, 3.5 * n_rows), layout="constrained")
        axes = figure.subplots(n_rows, n_columns, squeeze=False)
        for task in range(n_tasks):
            ax = plots.plot_confusion_matrix(
                confusion.values[task], confusion["true_class"].values,
                confusion["predicted_class"].values, ax=axes.flat[task], normalise=True,
                annotate=False, colorbar=False, title=f"after task {labels[task]}")
            if task + n_columns < n_tasks:  # a panel below carries the label
                ax.set_xlabel("")
            if task % n_columns:
                ax.set_ylabel("")
        for ax_unused in axes.flat[n_tasks:]:
            ax_unused.set_axis_off()
        bar = figure.colorbar(ax.images[0], ax=axes, shrink=0.6)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        bar.set_label("fraction of true class")
        figure.suptitle(f"{network}: confusion matrix after each task")
        paths += _save(figure, out_dir, "confusion_matrices", formats, dpi)
    return paths


def _seed_statistics(values, seed_axis):
    """Mean and standard deviation over seeds (ddof 1 with several seeds, as the merge)."""
    n_seeds = values.shape[seed_axis]
    mean = values.mean(axis=seed_axis)
    std = values.std(axis=seed_axis, ddof=1 if n_seeds > 1 else 0)
    return mean, std


def make_comparison_figures(merged, out_dir, formats=DEFAULT_FORMATS, dpi=150):
    """Write the figures of a continual-learning comparison.

    Parameters
    ----------
    merged : xarray.Dataset or str or os.PathLike
        Merged Dataset of :func:`spikedyn_brian.protocols.continual_comparison.run`
        (``accuracy`` with dims ``variant``, ``seed``, ``after_task``,
        ``on_task``), or the netCDF file it wrote.
    out_dir : str or os.PathLike
        Directory for the figures; created if missing.
    formats : sequence of str, optional
        File formats (default ``("png", "svg")``).
    dpi : float, optional
        Resolution of raster formats (default 150).

    Returns
    -------
    list of pathlib.Path
        The files written: ``comparison_accuracy_matrices`` (one panel per
        variant, mean over seeds) and ``comparison_task_accuracy``
        (recent-task and previous-task accuracy after each task, mean ± std
        over seeds, one line per variant), each in every format.

    Raises
    ------
    ValueError
        If ``accuracy`` lacks the dims ``variant`` and ``seed``, or a format
        is unsupported.
    """
    merged = _load(merged)
    formats = _check_formats(formats)
    if "accuracy" not in merged or not {"variant", "seed"} <= set(merged["accuracy"].dims):
        raise ValueError(
            "expected a comparison Dataset with accuracy(variant, seed, after_task, on_task); "
            "for a single run use make_figures."
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = task_labels(merged)
    variants = [str(v) for v in merged["variant"].values]
    accuracy = _matrix(merged["accuracy"].transpose("variant", "seed", ...))
    n_variants, _, n_tasks, _ = accuracy.shape
    paths = []

    if "accuracy_mean" in merged:
        mean_matrix = _matrix(merged["accuracy_mean"].transpose("variant", ...))
    else:
        mean_matrix = accuracy.mean(axis=1)
    n_rows, n_columns = _grid(n_variants, 4)
    side = 1.2 + 0.45 * n_tasks
    figure = Figure(figsize=(side * n_columns + 1.0, side * n_rows + 0.4), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for index, variant in enumerate(variants):
        plots.plot_accuracy_matrix(mean_matrix[index], ax=axes.flat[index], task_labels=labels,
                                   title=variant, colorbar=False,
                                   annotate=n_tasks <= 10)
    for ax in axes.flat[n_variants:]:
        ax.set_axis_off()
    bar = figure.colorbar(axes.flat[0].images[0], ax=axes, shrink=0.6)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    bar.set_label("accuracy")
    n_seeds = merged.sizes["seed"]
    figure.suptitle(f"accuracy after each task, mean over {n_seeds} seed(s)")
    paths += _save(figure, out_dir, "comparison_accuracy_matrices", formats, dpi)

    recent_mean, recent_std = _seed_statistics(np.diagonal(accuracy, axis1=-2, axis2=-1), 1)
    if "previous_tasks_accuracy_per_step" in merged:
        previous = np.asarray(merged["previous_tasks_accuracy_per_step"].transpose(
            "variant", "seed", "after_task").values, dtype=float)
    else:
        from spikedyn_brian.analysis import continual

        previous = continual.previous_tasks_accuracy_per_step(
            merged["accuracy"]).transpose("variant", "seed", "after_task").values
    previous_mean, previous_std = _seed_statistics(previous, 1)
    figure = Figure(figsize=(13, 4.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    plots.plot_task_accuracy_curves(recent_mean, None, labels=variants, ax=axes[0],
                                    recent_spread=recent_std, task_labels=labels,
                                    title="recent task: accuracy[t, t]")
    plots.plot_task_accuracy_curves(None, previous_mean, labels=variants, ax=axes[1],
                                    previous_spread=previous_std, task_labels=labels,
                                    title="previous tasks: mean of accuracy[t, k < t]")
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes:
        ax.get_legend().remove()
    figure.legend(handles, names, loc="outside right upper", fontsize="small")
    figure.suptitle(f"mean ± standard deviation over {n_seeds} seed(s)")
    paths += _save(figure, out_dir, "comparison_task_accuracy", formats, dpi)
    return paths


def main(argv=None):
    """``python -m spikedyn_brian.protocols.continual_figures RESULTS.nc --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m spikedyn_brian.protocols.continual_figures",
        description=(
            "Draw the figures of a dynamic-digits results file, or of a continual-learning "
            "comparison file (detected by its 'variant' dimension)."
        ),
    )
    parser.add_argument("results", metavar="RESULTS.nc", help="results file (netCDF)")
    parser.add_argument("--out", metavar="DIR",
                        help="output directory (default: <RESULTS stem>_figures next to it)")
    parser.add_argument("--format", dest="formats", action="append", metavar="FMT",
                        help="figure format, repeatable (default: png and svg)")
    parser.add_argument("--max-neurons", type=int, default=100, metavar="N",
                        help="receptive fields of at most N neurons per task (default 100)")
    parser.add_argument("--dpi", type=float, default=150, help="raster resolution (default 150)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    out_dir = Path(args.out) if args.out else results.with_name(f"{results.stem}_figures")
    formats = tuple(args.formats) if args.formats else DEFAULT_FORMATS
    try:
        dataset = read_dataset(results)
        if "variant" in dataset.dims:
            paths = make_comparison_figures(dataset, out_dir, formats, dpi=args.dpi)
        else:
            paths = make_figures(dataset, out_dir, formats, max_neurons=args.max_neurons,
                                 dpi=args.dpi)
    except (FileNotFoundError, ValueError) as error:
        print(f"continual_figures: error: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Plots of continual-learning results and the figure scripts, on synthetic results."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray
from matplotlib.figure import Figure

from spikedyn_brian.analysis import continual, plots
from spikedyn_brian.analysis.storage import write_dataset
from spikedyn_brian.protocols import continual_figures

N_TASKS, N_NEURONS, N_INPUTS, PER_CLASS = 3, 4, 784, 5


def synthetic_results(seed=0, n_tasks=N_TASKS, n_neurons=N_NEURONS):
    """A small results Dataset in the schema of dynamic_digits._to_dataset."""
    rng = np.random.default_rng(seed)
    tasks = [[task] for task in range(n_tasks)]
    labels = np.repeat(np.arange(n_tasks), PER_CLASS)
    # After task t, classes <= t are right with a probability that decays with age.
    predictions = np.full((n_tasks, labels.size), -1)
    for after in range(n_tasks):
        right = (labels <= after) & (rng.random(labels.size) < 0.9 - 0.2 * (after - labels))
        wrong = rng.integers(0, after + 1, labels.size)
        predictions[after] = np.where(right, labels, np.where(labels <= after, wrong, -1))
    predictions = xarray.DataArray(predictions, dims=("after_task", "sample"))
    accuracy = continual.accuracy_matrix(predictions, labels, tasks)
    dataset = xarray.Dataset(
        {
            "predictions": predictions,
            "test_labels": (("sample",), labels),
            "confusion": continual.confusion_matrices(predictions, labels, n_classes=n_tasks),
            "assignments": (("after_task", "neuron"),
                            rng.integers(0, n_tasks, (n_tasks, n_neurons))),
            "weights": (("after_task", "input", "neuron"),
                        rng.random((n_tasks, N_INPUTS, n_neurons)).astype(np.float32)),
            "theta": (("after_task", "neuron"), rng.random((n_tasks, n_neurons)) * 20),
            "task_classes": (("task_slot", "class_in_task"), np.array(tasks)),
        },
        coords={"after_task": np.arange(n_tasks), "on_task": np.arange(n_tasks),
                "neuron": np.arange(n_neurons), "input": np.arange(N_INPUTS),
                "sample": np.arange(labels.size)},
    )
    dataset = dataset.merge(continual.summarise(accuracy))
    dataset.attrs = {"protocol": "dynamic-digits", "network": "spikedyn",
                     "n_neurons": n_neurons}
    return dataset


def synthetic_comparison(variants=("diehl-cook", "spikedyn"), seeds=(0, 1)):
    """A small merged Dataset in the schema of continual_comparison.merge_runs."""
    rows = [xarray.concat([synthetic_results(seed=10 * v + s)[
        ["accuracy", "previous_tasks_accuracy_per_step", "recent_task_accuracy"]]
        for s in seeds], dim=xarray.DataArray(list(seeds), dims="seed"))
        for v in range(len(variants))]
    merged = xarray.concat(rows, dim=xarray.DataArray(list(variants), dims="variant"))
    merged["accuracy_mean"] = merged["accuracy"].mean("seed")
    merged.attrs = {"base_config": '{"stream": {"task_order": [0, 1, 2], "classes_per_task": 1}}'}
    return merged


def _axes():
    return Figure().add_subplot()


def test_accuracy_matrix_heatmap_holds_the_matrix():
    accuracy = synthetic_results().accuracy.values
    ax = plots.plot_accuracy_matrix(accuracy, ax=_axes(), title="A")
    image = ax.images[0]
    shown = image.get_array()
    lower = np.tril(np.ones(accuracy.shape, bool))
    np.testing.assert_array_equal(shown[lower], accuracy[lower])
    # Tasks not yet learned (above the diagonal) are masked: blank, no text.
    assert shown.mask[~lower].all() and not shown.mask[lower].any()
    assert image.get_clim() == (0.0, 1.0)
    # One percent annotation per finite learned cell; a colorbar was added.
    texts = [text.get_text() for text in ax.texts]
    assert len(texts) == (np.isfinite(accuracy) & lower).sum()
    assert texts[0] == f"{100 * accuracy[0, 0]:.0f}"
    assert len(ax.figure.axes) == 2
    assert ax.get_title() == "A"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0", "1", "2"]


def test_accuracy_matrix_can_show_unlearned_cells():
    accuracy = synthetic_results().accuracy.values
    ax = plots.plot_accuracy_matrix(accuracy, ax=_axes(), mask_unlearned=False)
    np.testing.assert_array_equal(ax.images[0].get_array(), accuracy)


def test_accuracy_matrix_rejects_extra_dims():
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_accuracy_matrix(np.zeros((2, 3, 3)), ax=_axes())


def test_accuracy_matrix_without_ax_makes_a_figure():
    import matplotlib.pyplot as plt

    ax = plots.plot_accuracy_matrix(np.eye(3))
    try:
        assert ax.images
    finally:
        plt.close(ax.figure)


def test_task_accuracy_curves_one_pair_of_lines_per_variant():
    recent = np.array([[0.9, 0.8, 0.7], [0.95, 0.9, 0.85]])
    previous = np.array([[np.nan, 0.5, 0.4], [np.nan, 0.6, 0.55]])
    spread = np.full_like(recent, 0.05)
    ax = plots.plot_task_accuracy_curves(recent, previous, labels=["a", "b"], ax=_axes(),
                                         recent_spread=spread, previous_spread=spread)
    assert len(ax.lines) == 2 * recent.shape[0]
    for index in range(recent.shape[0]):
        np.testing.assert_array_equal(ax.lines[2 * index].get_ydata(), recent[index])
        np.testing.assert_array_equal(ax.lines[2 * index + 1].get_ydata(), previous[index])
        assert ax.lines[2 * index].get_color() == ax.lines[2 * index + 1].get_color()
        assert ax.lines[2 * index + 1].get_linestyle() == "--"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])
    # Shaded bands: one per curve.
    assert len(ax.collections) == 4
    # Both legends: variants (kept as an artist) and line styles.
    legend_texts = {text.get_text() for legend in ax.findobj(matplotlib.legend.Legend)
                    for text in legend.get_texts()}
    assert {"a", "b", "recent task", "previous tasks"} <= legend_texts


def test_task_accuracy_curves_single_variant_and_one_kind():
    ax = plots.plot_task_accuracy_curves([0.9, 0.8], None, ax=_axes())
    assert len(ax.lines) == 1
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.9, 0.8])
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_task_accuracy_curves(np.zeros((2, 3)), np.zeros((1, 3)), ax=_axes())
    with pytest.raises(ValueError, match="labels"):
        plots.plot_task_accuracy_curves(np.zeros((2, 3)), None, labels=["x"], ax=_axes())


def test_receptive_fields_tile_the_weights():
    weights = synthetic_results().weights.isel(after_task=-1).values
    ax = plots.plot_receptive_fields(weights, ax=_axes())
    grid = ax.images[0].get_array()
    assert grid.shape == (2 * 28, 2 * 28)
    for neuron in range(N_NEURONS):
        row, column = divmod(neuron, 2)
        np.testing.assert_allclose(grid[28 * row:28 * (row + 1), 28 * column:28 * (column + 1)],
                                   weights[:, neuron].reshape(28, 28))
    # max_neurons keeps the first neurons only; unused tiles are NaN.
    grid = plots.plot_receptive_fields(weights, max_neurons=3, ax=_axes()).images[0].get_array()
    assert grid.shape == (56, 56)
    assert np.isnan(np.ma.filled(grid, np.nan)[28:, 28:]).all()
    with pytest.raises(ValueError, match="784"):
        plots.plot_receptive_fields(weights.T, ax=_axes())


def test_confusion_matrix_counts_and_row_normalisation():
    confusion = synthetic_results().confusion.isel(after_task=-1)
    counts = confusion.values
    ax = plots.plot_confusion_matrix(counts, confusion.true_class, confusion.predicted_class,
                                     ax=_axes())
    np.testing.assert_array_equal(ax.images[0].get_array(), counts)
    assert ax.get_xticklabels()[0].get_text() == "none"
    ax = plots.plot_confusion_matrix(counts, confusion.true_class, confusion.predicted_class,
                                     ax=_axes(), normalise=True)
    normalised = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(normalised, counts / counts.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(normalised.sum(axis=1), 1.0)
    assert ax.images[0].get_clim() == (0.0, 1.0)


def test_make_figures_writes_png_and_svg(tmp_path):
    path = write_dataset(synthetic_results(), tmp_path / "dynamic.nc")
    paths = continual_figures.make_figures(path, tmp_path / "figures")
    names = ["accuracy_matrix", "task_accuracy", "receptive_fields", "confusion_matrices"]
    assert paths == [tmp_path / "figures" / f"{name}.{fmt}"
                     for name in names for fmt in ("png", "svg")]
    for written in paths:
        assert written.stat().st_size > 0
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in paths[1].read_bytes()[:1000]


def test_make_figures_rejects_a_comparison_dataset(tmp_path):
    with pytest.raises(ValueError, match="make_comparison_figures"):
        continual_figures.make_figures(synthetic_comparison(), tmp_path)


def test_make_comparison_figures(tmp_path):
    paths = continual_figures.make_comparison_figures(synthetic_comparison(), tmp_path,
                                                      formats=("png",))
    assert [p.name for p in paths] == ["comparison_accuracy_matrices.png",
                                       "comparison_task_accuracy.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_main_detects_the_kind_of_file(tmp_path, capsys):
    single = write_dataset(synthetic_results(), tmp_path / "single.nc")
    merged = write_dataset(synthetic_comparison(), tmp_path / "merged.nc")
    assert continual_figures.main([str(single), "--out", str(tmp_path / "a"),
                                   "--format", "png"]) == 0
    assert continual_figures.main([str(merged), "--out", str(tmp_path / "b"),
                                   "--format", "svg"]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "accuracy_matrix.png", "confusion_matrices.png", "receptive_fields.png",
        "task_accuracy.png"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "comparison_accuracy_matrices.svg", "comparison_task_accuracy.svg"]
    assert "accuracy_matrix.png" in capsys.readouterr().out
    assert continual_figures.main([str(tmp_path / "missing.nc")]) == 2


def test_task_labels_from_the_stored_classes():
    dataset = synthetic_results()
    assert continual_figures.task_labels(dataset) == ["0", "1", "2"]
    pairs = dataset.assign(task_classes=(("task_slot", "class_in_task"),
                                         np.array([[0, 1], [2, 3], [4, 5]])))
    assert continual_figures.task_labels(pairs) == ["0,1", "2,3", "4,5"]
    assert continual_figures.task_labels(synthetic_comparison()) == ["0", "1", "2"]


def test_pareto_front_plot_marks_front_and_selection():
    ax = Figure().add_subplot()
    returned = plots.plot_pareto_front(
        [1e-4, 5e-5, 2e-4], [0.8, 0.7, 0.75], [1e6, 2e5, 1e6], pareto=[True, True, False],
        labels=["a", "b", "c"], selected="a", ax=ax)
    assert returned is ax
    assert ax.get_xscale() == "log"
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["dominated", "Pareto front", "selected: a"]
    # The front's staircase joins the two front points in order of energy (µJ).
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [50.0, 100.0])
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_pareto_front([1.0], [0.5, 0.6], [1.0], ax=Figure().add_subplot())


def test_tuning_convergence_draws_the_running_best_of_each_study():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from spikedyn_brian.analysis.plots import plot_tuning_convergence

    ax = Figure().subplots()
    plot_tuning_convergence([[np.nan, 0.5, 0.4, 0.7], [0.2, 0.1]], labels=["a", "b"], ax=ax)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [np.nan, 0.5, 0.5, 0.7])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.2, 0.2])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="labels must have one entry per study"):
        plot_tuning_convergence([[0.1]], labels=["a", "b"], ax=ax)

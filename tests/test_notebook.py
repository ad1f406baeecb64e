"""The continual-learning notebook runs top to bottom on a results file."""

from pathlib import Path

import numpy as np
import pytest
import xarray

from spikedyn_brian.analysis import continual
from spikedyn_brian.analysis.storage import write_dataset

_MISSING = "is not installed: it comes with the test extra (pip install -e '.[test]', as make does)"
nbformat = pytest.importorskip("nbformat", reason=f"nbformat {_MISSING}")
nbclient = pytest.importorskip("nbclient", reason=f"nbclient {_MISSING}")
pytest.importorskip("ipykernel", reason=f"ipykernel {_MISSING}")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "continual_learning.ipynb"
N_TASKS, N_NEURONS, N_INPUTS = 3, 4, 784


def _results():
    """A small dynamic-digits results Dataset (schema of dynamic_digits._to_dataset)."""
    rng = np.random.default_rng(1)
    tasks = [[task] for task in range(N_TASKS)]
    labels = np.repeat(np.arange(N_TASKS), 6)
    predictions = np.where(labels[None, :] <= np.arange(N_TASKS)[:, None],
                           np.where(rng.random((N_TASKS, labels.size)) < 0.7, labels,
                                    rng.integers(0, N_TASKS, (N_TASKS, labels.size))), -1)
    predictions = xarray.DataArray(predictions, dims=("after_task", "sample"))
    accuracy = continual.accuracy_matrix(predictions, labels, tasks)
    dataset = xarray.Dataset(
        {
            "predictions": predictions,
            "test_labels": (("sample",), labels),
            "confusion": continual.confusion_matrices(predictions, labels),
            "assignments": (("after_task", "neuron"),
                            rng.integers(0, N_TASKS, (N_TASKS, N_NEURONS))),
            "weights": (("after_task", "input", "neuron"),
                        rng.random((N_TASKS, N_INPUTS, N_NEURONS)).astype(np.float32)),
            "theta": (("after_task", "neuron"), rng.random((N_TASKS, N_NEURONS))),
            "task_classes": (("task_slot", "class_in_task"), np.array(tasks)),
        },
        coords={"after_task": np.arange(N_TASKS), "on_task": np.arange(N_TASKS),
                "neuron": np.arange(N_NEURONS), "input": np.arange(N_INPUTS),
                "sample": np.arange(labels.size)},
    )
    dataset = dataset.merge(continual.summarise(accuracy))
    dataset["accuracy"].attrs["prediction_rule"] = "all_activity"
    dataset.attrs = {"protocol": "dynamic-digits", "network": "spikedyn",
                     "n_neurons": N_NEURONS}
    return dataset


def _outputs_text(notebook):
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                texts.append(output["text"])
            texts.extend(str(value) for key, value in output.get("data", {}).items()
                         if key.startswith("text/plain"))
    return "\n".join(texts)


def test_committed_notebook_is_valid_and_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "SPIKEDYN_RESULTS" in "".join(cell.source for cell in code)


def test_notebook_runs_on_a_results_file(tmp_path, monkeypatch):
    path = write_dataset(_results(), tmp_path / "dynamic_digits.nc")
    monkeypatch.setenv("SPIKEDYN_RESULTS", str(path))
    # Let the kernel pick its inline backend whatever the caller's setting.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError if a cell fails
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    text = _outputs_text(notebook)
    assert "recent" in text
    assert "equal the stored ones" in text
    # The figures were drawn inline.
    assert any("image/png" in output.get("data", {})
               for cell in notebook.cells for output in cell.get("outputs", []))


def test_notebook_fails_on_tampered_metrics(tmp_path, monkeypatch):
    dataset = _results()
    dataset["recent_task_accuracy"] = dataset["recent_task_accuracy"] * 0.5
    path = write_dataset(dataset, tmp_path / "tampered.nc")
    monkeypatch.setenv("SPIKEDYN_RESULTS", str(path))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="recent_task_accuracy"):
        client.execute()

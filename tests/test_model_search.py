"""Model search: candidates, analytical filter, the no-survivor message, end to end on Dask."""

import os

import numpy as np
import pytest

from spikedyn_brian.analysis.energy import analytical_profile
from spikedyn_brian.analysis.memory import memory_footprint
from spikedyn_brian.analysis.pareto import select_model
from spikedyn_brian.analysis.storage import read_dataset
from spikedyn_brian.cli import main
from spikedyn_brian.config import ConfigError
from spikedyn_brian.models.parameters import network_parameters
from spikedyn_brian.protocols import model_search


def _plan(tmp_path, **search):
    return model_search.load_plan(overrides={
        "search": search, "output": {"path": str(tmp_path / "search.nc")}})


def _bytes(variant, n, bits):
    return memory_footprint(network_parameters(variant, n), weight_bits=bits).total_bytes


def test_candidates_are_the_product_of_the_plan(tmp_path):
    plan = _plan(tmp_path, sizes=[100, 400], weight_bits=[8, 32])
    names = [c.name for c in model_search.candidates(plan)]
    assert names == ["diehl-cook-N100-8bit", "diehl-cook-N100-32bit", "diehl-cook-N400-8bit",
                     "diehl-cook-N400-32bit", "spikedyn-N100-8bit", "spikedyn-N100-32bit",
                     "spikedyn-N400-8bit", "spikedyn-N400-32bit"]


def test_memory_constraint_filters_by_the_memory_model(tmp_path):
    # 400 kB admits every N = 100 candidate and the 8-bit N = 400 ones only.
    plan = _plan(tmp_path, sizes=[100, 400], weight_bits=[8, 32], max_memory_kb=400)
    table = model_search.analytical_table(plan)
    assert int(table.memory_bytes.sel(candidate="spikedyn-N400-8bit")) == _bytes(
        "spikedyn", 400, 8)
    expected = [_bytes(c.variant, c.n_neurons, c.weight_bits) <= 400_000
                for c in model_search.candidates(plan)]
    assert table.satisfies_constraints.values.tolist() == expected
    assert expected == [True, True, True, False, True, True, True, False]
    _, train, _ = analytical_profile(network_parameters("diehl-cook", 100), weight_bits=8)
    assert float(table.estimated_train_energy_joules_per_sample.sel(
        candidate="diehl-cook-N100-8bit")) == pytest.approx(train.joules)


def test_energy_constraint_applies_to_the_chosen_phase(tmp_path):
    _, dc_train, dc_inference = analytical_profile(network_parameters("diehl-cook", 100))
    limit = (dc_train.joules + dc_inference.joules) / 2  # between the two phases
    on_train = model_search.analytical_table(_plan(
        tmp_path, variants=["diehl-cook"], sizes=[100], weight_bits=[32],
        max_energy_joules_per_sample=limit))
    on_inference = model_search.analytical_table(_plan(
        tmp_path, variants=["diehl-cook"], sizes=[100], weight_bits=[32],
        max_energy_joules_per_sample=limit, energy_constraint="inference"))
    assert not bool(on_train.satisfies_constraints[0])
    assert bool(on_inference.satisfies_constraints[0])


def test_nothing_satisfies_the_constraints(tmp_path):
    plan = _plan(tmp_path, sizes=[100, 400], weight_bits=[8, 32], max_memory_kb=50,
                 max_energy_joules_per_sample=1.0)
    smallest = _bytes("spikedyn", 100, 8)
    with pytest.raises(ConfigError) as error:
        model_search.run(plan)
    message = str(error.value)
    assert message.startswith(
        "no candidate satisfies the constraints: the tightest, memory ≤ 50 kB, excludes 8 of 8 "
        f"candidates. The smallest candidate, spikedyn-N100-8bit, needs {smallest / 1000:.1f} kB")
    assert "Relax --max-memory-kb, or add smaller sizes or fewer weight bits." in message


def test_cli_reports_nothing_satisfies(tmp_path, capsys):
    code = main(["run", "model-search", "--max-memory-kb", "1", "--sizes", "100",
                 "--out", str(tmp_path / "s.nc")])
    assert code == 2
    assert "the tightest, memory ≤ 1 kB, excludes 4 of 4 candidates" in capsys.readouterr().err


def test_plan_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown configuration key 'search.size'"):
        model_search.load_plan(overrides={"search": {"size": [1]}})
    with pytest.raises(ConfigError, match="key 'search.variants' has 'asp'"):
        model_search.load_plan(overrides={"search": {"variants": ["asp"]}})
    with pytest.raises(ConfigError, match="energy_constraint' is 'test'"):
        model_search.load_plan(overrides={"search": {"energy_constraint": "test"}})


@pytest.mark.cluster
def test_two_candidates_end_to_end_on_a_local_cluster(tmp_path):
    """Two candidates, two worker processes; a re-run reuses the per-candidate files."""
    out = tmp_path / "search.nc"
    argv = ["run", "model-search", "--variants", "diehl-cook", "spikedyn", "--sizes", "10",
            "--weight-bits", "8", "--train-samples", "5", "--test-samples", "5",
            "--device", "runtime", "--workers", "2", "--out", str(out)]
    assert main(argv) == 0
    dataset = read_dataset(out)
    assert list(dataset.candidate.values) == ["diehl-cook-N10-8bit", "spikedyn-N10-8bit"]
    assert dataset.memory_bytes.values.tolist() == [_bytes("diehl-cook", 10, 8),
                                                    _bytes("spikedyn", 10, 8)]
    for name in ("train_energy_joules_per_sample", "inference_energy_joules_per_sample",
                 "accuracy"):
        assert np.all(np.isfinite(dataset[name].values)), name
    assert dataset.pareto.dtype == bool and dataset.pareto.values.any()
    expected = select_model(dataset.accuracy.values, dataset.train_energy_joules_per_sample.values,
                            dataset.memory_bytes.values, dataset.pareto.values)
    assert dataset.attrs["selected"] == dataset.candidate.values[expected]
    assert "highest accuracy" in dataset.attrs["selection_rule"]
    # Each task ran in a worker process, in its own build directory.
    files = sorted((tmp_path / "search_candidates").glob("*.nc"))
    assert [f.name for f in files] == ["diehl-cook-N10-8bit_seed0.nc", "spikedyn-N10-8bit_seed0.nc"]
    runs = [read_dataset(f) for f in files]
    assert all(int(r.attrs["worker_pid"]) != os.getpid() for r in runs)
    assert len({r.attrs["build_directory"] for r in runs}) == 2
    assert (tmp_path / "search_pareto.png").exists() and (tmp_path / "search_pareto.svg").exists()
    # Energy from the runs' spike counts. (Which phase costs more per digit
    # depends on activity: a trained 10-neuron network can answer test digits
    # with more spikes than it fired while learning.)
    assert np.all(dataset.train_energy_joules_per_sample > 0)
    assert np.all(dataset.inference_energy_joules_per_sample > 0)
    assert not np.allclose(dataset.train_energy_joules_per_sample,
                           dataset.inference_energy_joules_per_sample)
    # The results file is not replaced unasked; a re-run with --overwrite skips
    # finished candidates.
    stamps = [f.stat().st_mtime_ns for f in files]
    before = out.read_bytes()
    assert main(argv) == 2
    assert out.read_bytes() == before
    assert main(argv + ["--overwrite"]) == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps

"""The continual comparison on a Dask LocalCluster, end to end (tiny networks)."""

import os

import numpy as np
import xarray

from spikedyn_brian.protocols import continual_comparison


def _plan(tmp_path):
    base = {
        "network": {"n_neurons": 10},
        "stream": {"task_order": [0, 1], "samples_per_task": 6, "probe_per_class": 2,
                   "test_per_class": 2},
        "device": {"name": "runtime", "build_dir": str(tmp_path / "builds")},
    }
    return continual_comparison.ComparisonPlan(
        base=base, variants=["diehl-cook", "spikedyn"], seeds=[5],
        output=str(tmp_path / "comparison.nc"), workers=2)


def test_comparison_runs_every_pair_on_workers_and_merges(tmp_path):
    plan = _plan(tmp_path)
    merged = continual_comparison.run(plan, progress=False)
    assert list(merged.variant.values) == ["diehl-cook", "spikedyn"]
    assert list(merged.seed.values) == [5]
    assert merged.accuracy.dims == ("variant", "seed", "after_task", "on_task")
    # Each pair ran in a Dask worker process, not in this one.
    pids = merged.attrs["worker_pids"]
    assert len(pids) == 2 and os.getpid() not in pids and min(pids) > 0
    # The merged values are the per-run files' values, and the file is readable alone.
    for variant in plan.variants:
        with xarray.open_dataset(plan.run_path(variant, 5)) as run:
            np.testing.assert_array_equal(
                merged.accuracy.sel(variant=variant, seed=5).values, run.accuracy.values)
            assert run.attrs["config"].count(f'"variant": "{variant}"') == 1
    with xarray.open_dataset(plan.output) as stored:
        np.testing.assert_array_equal(stored.recent_task_accuracy_mean.values,
                                      merged.recent_task_accuracy.mean("seed").values)
    # A re-run reuses the finished files: nothing runs again.
    again = continual_comparison.run(plan, progress=False)
    assert again.attrs["worker_pids"] == [-1, -1]
    np.testing.assert_array_equal(again.accuracy.values, merged.accuracy.values)

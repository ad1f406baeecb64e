"""The continual comparison on a Dask LocalCluster, end to end (tiny networks)."""

import copy
import os

import numpy as np
import pytest
import xarray

from spikedyn_brian.config import ConfigError
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


@pytest.mark.cluster
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
    # The merged file is not replaced unasked (nothing runs) ...
    before = (tmp_path / "comparison.nc").read_bytes()
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        continual_comparison.run(plan, progress=False)
    assert (tmp_path / "comparison.nc").read_bytes() == before
    # ... and a re-run with overwrite reuses the finished files: nothing runs again.
    plan.overwrite = True
    again = continual_comparison.run(plan, progress=False)
    assert again.attrs["worker_pids"] == [-1, -1]
    np.testing.assert_array_equal(again.accuracy.values, merged.accuracy.values)


def test_a_per_run_file_of_another_configuration_is_not_reused(tmp_path):
    plan = _plan(tmp_path)
    experiment = plan.experiment("spikedyn", 5)
    path = plan.run_path("spikedyn", 5)
    path.parent.mkdir(parents=True)
    other = copy.deepcopy(plan.base)
    other["stream"]["samples_per_task"] = 7
    stale = continual_comparison.ComparisonPlan(base=other, variants=["spikedyn"], seeds=[5],
                                                output=plan.output).experiment("spikedyn", 5)
    xarray.Dataset(attrs={"config": stale.to_json()}).to_netcdf(path)
    with pytest.raises(ConfigError, match="another configuration.*another --out"):
        continual_comparison._run_one(experiment)
    # The same configuration, written elsewhere and with progress bars off, is reused.
    same = plan.experiment("spikedyn", 5)
    same.output.progress = not same.output.progress
    xarray.Dataset(attrs={"config": same.to_json()}).to_netcdf(path)
    assert continual_comparison._run_one(experiment) == (str(path), None)


def test_seed_statistics_give_the_student_t_interval():
    values = xarray.DataArray([[0.5, 0.6, 0.7, 0.8, 0.9]], dims=("variant", "seed"))
    mean, std, half_width = continual_comparison.seed_statistics(values)
    assert float(mean) == pytest.approx(0.7)
    assert float(std) == pytest.approx(np.std([0.5, 0.6, 0.7, 0.8, 0.9], ddof=1))
    # t(0.975, 4) = 2.7764
    assert float(half_width) == pytest.approx(2.7764451 * float(std) / np.sqrt(5), rel=1e-6)
    single = continual_comparison.seed_statistics(values.isel(seed=[0]))
    assert np.isnan(float(single[2]))


def test_paired_differences_are_per_seed():
    names = continual_comparison.SUMMARISED
    variants = ["diehl-cook", "asp", "spikedyn"]
    base = np.array([[0.5, 0.6, 0.4], [0.6, 0.6, 0.6], [0.7, 0.9, 0.5]])
    merged = xarray.Dataset({name: (("variant", "seed"), base) for name in names},
                            coords={"variant": variants, "seed": [0, 1, 2]})
    pairs = continual_comparison.paired_differences(merged, variants)
    assert list(pairs.baseline.values) == ["asp", "diehl-cook"]  # ASP first: the paper's baseline
    difference = pairs.recent_task_accuracy_difference.sel(baseline="diehl-cook").values
    np.testing.assert_allclose(difference, [0.2, 0.3, 0.1])
    assert float(pairs.recent_task_accuracy_difference_mean.sel(baseline="diehl-cook")) == \
        pytest.approx(0.2)
    # Paired: the spread of the differences, not of the variants' own values.
    assert float(pairs.recent_task_accuracy_difference_ci95.sel(baseline="diehl-cook")) == \
        pytest.approx(4.3026527 * 0.1 / np.sqrt(3), rel=1e-6)
    assert not continual_comparison.paired_differences(merged, ["asp"]).data_vars


def test_variants_take_the_best_tuned_trial_of_their_family(tmp_path):
    from spikedyn_brian.analysis.storage import write_dataset

    table = xarray.Dataset({
        "objective": ("trial", [0.5, 0.7, 0.6]),
        "param.plasticity.nu_post": ("trial", [0.01, 0.02, 0.03]),
        "param.plasticity.nu_pre": ("trial", [1e-4, 4e-4, 1e-4]),
    }, coords={"trial": [0, 1, 2]}, attrs={"variant": "diehl-cook"})
    write_dataset(table, tmp_path / "dc.nc")
    (tmp_path / "sd.toml").write_text(
        '[network]\nvariant = "spikedyn"\n[network.plasticity]\nnu_post = 0.005\n'
        '[network.spikedyn]\nw_lateral = 4.0\n')
    plan = continual_comparison.ComparisonPlan(tuned={"diehl-cook": str(tmp_path / "dc.nc"),
                                                      "spikedyn": str(tmp_path / "sd.toml")})
    assert plan.network_overrides("diehl-cook")["plasticity"] == {"nu_post": 0.02,
                                                                  "nu_pre": 4e-4}
    # Ablations inherit every tuned value of their family and switch one mechanism off.
    assert plan.network_overrides("spikedyn-no-weight-decay") == {
        "variant": "spikedyn", "plasticity": {"nu_post": 0.005},
        "spikedyn": {"w_lateral": 4.0, "weight_decay": False}}
    # Without its own rule, SpikeDyn depresses as Diehl & Cook's tuned set does:
    # nu_pre / nu_post of that set (0.02) at SpikeDyn's tuned nu_post.
    ablated = plan.network_overrides("spikedyn-no-spurious-update-reduction")
    assert ablated["plasticity"]["nu_pre"] == pytest.approx(0.005 * 4e-4 / 0.02)
    assert ablated["spikedyn"]["spurious_update_reduction"] is False
    # Families without a tuned set run with their defaults.
    assert plan.network_overrides("asp-leak-to-zero") == {
        "variant": "asp", "asp": {"baseline_weight": 0.0, "time_dependent_learning_rate": False,
                                  "frequency_dependent_updates": False}}
    untuned = continual_comparison.ComparisonPlan()
    assert untuned.network_overrides("spikedyn-no-spurious-update-reduction")["plasticity"][
        "nu_pre"] == pytest.approx(0.01 * 0.01)

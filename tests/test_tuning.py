"""The tuner: equal budgets, validation digits only, every trial stored, resumable."""

import json

import numpy as np
import pytest
import xarray

from spikedyn_brian.config import ConfigError
from spikedyn_brian.protocols import tuning


def _plan(tmp_path, trials=3, variant="diehl-cook"):
    base = {
        "network": {"n_neurons": 6},
        "stream": {"task_order": [0, 1], "samples_per_task": 4, "probe_per_class": 2,
                   "test_per_class": 2},
        "device": {"name": "runtime"},
    }
    return tuning.TuningPlan(variant=variant, trials=trials, base=base,
                             output=str(tmp_path / "tune.nc"), workers=2, sampler_seed=1,
                             seeds=(3, 4))


def test_every_variant_has_a_search_space_over_known_keys():
    from spikedyn_brian.models.parameters import network_parameters

    for variant, space in tuning.SEARCH_SPACES.items():
        parameters = network_parameters(variant, 4)
        for dimension in space:
            table, key = dimension.key.split(".")
            assert hasattr(getattr(parameters, table), key), dimension


def test_every_family_tunes_its_inhibition_over_the_same_range():
    inhibition = {"diehl-cook": "plasticity.w_inh_to_exc", "asp": "plasticity.w_inh_to_exc",
                  "spikedyn": "spikedyn.w_lateral"}
    ranges = set()
    for variant, key in inhibition.items():
        (dimension,) = [d for d in tuning.SEARCH_SPACES[variant] if d.key == key]
        ranges.add((dimension.low, dimension.high, dimension.log))
    assert len(ranges) == 1


def test_edge_report_flags_arbitrary_edges_only():
    from spikedyn_brian.analysis.storage import write_dataset  # noqa: F401

    space = {d.key: d for d in tuning.SEARCH_SPACES["spikedyn"]}
    values = {key: np.sqrt(d.low * d.high) if d.log else 0.5 * (d.low + d.high)
              for key, d in space.items()}
    values["plasticity.nu_post"] = 1.2e-4            # 0.08 decades above its edge
    values["spikedyn.weight_decay_per_sample"] = 1e-7  # at its edge: off (physical)
    table = xarray.Dataset(
        {"objective": ("trial", [0.1, 0.9]),
         **{f"param.{key}": ("trial", [1.0, value]) for key, value in values.items()}},
        coords={"trial": [0, 1]}, attrs={"variant": "spikedyn"})
    rows = {row["key"]: row for row in tuning.edge_report(table)}
    assert rows["plasticity.nu_post"]["near"] == "low" and not rows["plasticity.nu_post"]["limit"]
    assert rows["plasticity.nu_post"]["to_low"] == pytest.approx(np.log10(1.2), rel=1e-9)
    decay = rows["spikedyn.weight_decay_per_sample"]
    assert decay["near"] == "low" and "off" in decay["limit"]
    assert rows["spikedyn.w_lateral"]["near"] == ""


def test_best_so_far_is_the_running_maximum_skipping_failures():
    np.testing.assert_array_equal(tuning.best_so_far([np.nan, 0.3, 0.2, np.nan, 0.5, 0.4]),
                                  [np.nan, 0.3, 0.3, 0.3, 0.5, 0.5])


def test_trials_evaluate_on_validation_digits_only(tmp_path):
    plan = _plan(tmp_path)
    experiment = plan.experiment({"plasticity.nu_post": 0.02})
    assert experiment.stream.evaluation == "validation"
    assert experiment.stream.max_presentations_per_sample == tuning.SILENT_PRESENTATIONS
    assert [e.stream.seed for e in plan.trial_experiments({})] == [3, 4]
    assert experiment.network.plasticity.nu_post == 0.02
    assert experiment.network.variant == "diehl-cook"
    # The file is named by the parameters: the same trial reuses it.
    assert experiment.output.path == plan.experiment({"plasticity.nu_post": 0.02}).output.path
    assert experiment.output.path != plan.experiment({"plasticity.nu_post": 0.03}).output.path


def test_bad_plans_are_refused():
    with pytest.raises(ConfigError, match="no search space"):
        tuning.TuningPlan(variant="lstm")
    with pytest.raises(ConfigError, match="at least 1 trial"):
        tuning.TuningPlan(variant="asp", trials=0)


@pytest.mark.cluster
def test_study_runs_its_budget_stores_every_trial_and_resumes(tmp_path):
    plan = _plan(tmp_path, trials=2)
    table = tuning.run(plan)
    assert table.sizes["trial"] == 2
    assert (table.state.values == "COMPLETE").all()
    assert np.isfinite(table.objective.values).all()
    # The objective of a trial is the mean over its seeds of each run's objective.
    np.testing.assert_allclose(
        table.objective_per_seed.values,
        0.5 * (table.recent_task_accuracy_per_seed.values
               + table.previous_tasks_accuracy_per_seed.values))
    np.testing.assert_allclose(table.objective.values,
                               table.objective_per_seed.mean("seed").values)
    assert list(table.seed.values) == [3, 4]
    # Every trial's run files exist (one per seed), evaluated on the validation split.
    files = sorted(plan.trials_directory.glob("trial-*.nc"))
    assert len(files) == 4 and len(list(plan.trials_directory.glob("trial-*-seed4.nc"))) == 2
    for path in files:
        with xarray.open_dataset(path) as run:
            assert run.attrs["evaluation_split"] == "validation"
            assert "[validation split]" in json.loads(run.attrs["data"])["evaluation"]["source"]
    assert plan.study_path.exists()
    # The same command again: the budget is spent, nothing more runs.
    again = tuning.run(plan)
    assert again.sizes["trial"] == 2
    np.testing.assert_array_equal(again.objective.values, table.objective.values)
    # A larger budget continues the same study.
    plan.trials = 3
    more = tuning.run(plan)
    assert more.sizes["trial"] == 3
    np.testing.assert_array_equal(more.objective.values[:2], table.objective.values)
    best = tuning.best_overrides(plan.output)
    assert best["variant"] == "diehl-cook"
    assert set(best["plasticity"]) == {"nu_post", "nu_pre", "w_inh_to_exc"}
    position = int(np.nanargmax(more.objective.values))
    assert best["plasticity"]["nu_post"] == more["param.plasticity.nu_post"].values[position]
    with pytest.raises(ValueError, match="no complete trial"):
        tuning.best_overrides(plan.output, where={"plasticity.nu_post": -1})
    # The best trial shipped as a tuned set reads back as the same overrides.
    shipped = tuning.write_tuned_set(plan.output, tmp_path / "tuned" / "diehl-cook_N6.toml")
    text = shipped.read_text()
    assert f"best trial {more.trial.values[position]} of 3" in text and "seeds (3:" in text
    assert tuning.tuned_overrides(shipped) == best


def test_a_silent_trial_scores_zero_and_names_why(tmp_path):
    """A network that falls silent (every digit shown again up to the intensity
    cap) is stopped after its first chunk and scored 0, not simulated for hours."""
    plan = _plan(tmp_path, trials=1)
    plan.base["device"]["chunk_samples"] = 2
    plan.seeds = (3,)
    # Input weights normalised to a sum of 0.01: no excitatory spike at any
    # intensity (a cap of 6: five presentations per digit, above the limit).
    experiments = plan.trial_experiments({"plasticity.normalisation_total": 0.01,
                                          "inputs.maximum_intensity": 6.0})
    metrics = tuning._run_trial(experiments)
    assert metrics["objective"] == 0.0 and metrics["objective_per_seed"] == [0.0]
    assert "fallen silent" in metrics["silent"] and "presentations each" in metrics["silent"]
    assert not (plan.trials_directory / ".builds").exists() or not any(
        (plan.trials_directory / ".builds").iterdir())


def test_shipped_sets_are_found_by_name_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "TUNED_DIRECTORY", tmp_path)
    (tmp_path / "spikedyn_N400.toml").write_text('[network]\nvariant = "spikedyn"\n')
    (tmp_path / "spikedyn_N200.toml").write_text(
        '[network]\nvariant = "spikedyn"\n[network.spikedyn]\nw_lateral = 3.0\n')
    assert tuning.tuned_overrides("spikedyn") == {"variant": "spikedyn"}
    assert tuning.tuned_overrides("spikedyn-N200")["spikedyn"] == {"w_lateral": 3.0}
    assert tuning.tuned_overrides("spikedyn", n_neurons=200)["spikedyn"] == {"w_lateral": 3.0}
    with pytest.raises(ConfigError, match="no shipped tuned set 'asp' for N = 400.*"
                                          "spikedyn-N200, spikedyn-N400"):
        tuning.tuned_overrides("asp")

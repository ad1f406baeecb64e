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
                   "test_per_class": 2, "seed": 3},
        "device": {"name": "runtime"},
    }
    return tuning.TuningPlan(variant=variant, trials=trials, base=base,
                             output=str(tmp_path / "tune.nc"), workers=2, sampler_seed=1)


def test_every_variant_has_a_search_space_over_known_keys():
    from spikedyn_brian.models.parameters import network_parameters

    for variant, space in tuning.SEARCH_SPACES.items():
        parameters = network_parameters(variant, 4)
        for dimension in space:
            table, key = dimension.key.split(".")
            assert hasattr(getattr(parameters, table), key), dimension


def test_trials_evaluate_on_validation_digits_only(tmp_path):
    plan = _plan(tmp_path)
    experiment = plan.experiment({"plasticity.nu_post": 0.02})
    assert experiment.stream.evaluation == "validation"
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


def test_study_runs_its_budget_stores_every_trial_and_resumes(tmp_path):
    plan = _plan(tmp_path, trials=2)
    table = tuning.run(plan)
    assert table.sizes["trial"] == 2
    assert (table.state.values == "COMPLETE").all()
    assert np.isfinite(table.objective.values).all()
    np.testing.assert_allclose(
        table.objective.values,
        0.5 * (table.recent_task_accuracy.values + table.previous_tasks_accuracy.values))
    # Every trial's run file exists, evaluated on the validation split.
    files = sorted(plan.trials_directory.glob("trial-*.nc"))
    assert len(files) == 2
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
    assert set(best["plasticity"]) == {"nu_post", "nu_pre"}
    assert best["excitatory"]["timer"] in ("original", "brian2-port")
    with pytest.raises(ValueError, match="no complete trial"):
        tuning.best_overrides(plan.output, where={"excitatory.timer": "sometimes"})

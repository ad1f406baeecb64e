"""Continual-learning comparison: baselines, SpikeDyn and its ablations, several seeds.

Every (variant, seed) pair runs the dynamic-digits protocol on the same stream
definition, as an independent task on a Dask cluster (a LocalCluster with one
single-threaded worker process per core by default, or an existing scheduler).
A worker that dies loses only its task, which Dask retries. Per-run results
files are kept next to the merged file, so a re-run skips finished pairs.

Variants take their tuned parameters from the trial tables of
:mod:`~spikedyn_brian.protocols.tuning` (``ComparisonPlan.tuned``: tuning
family → trial table): each variant is the best validation trial of its
family (Diehl & Cook once per reading of the original's timer), SpikeDyn's
ablations switch one mechanism off SpikeDyn's tuned parameters.

The merged Dataset has dims ``variant`` and ``seed`` in front of the
per-run metrics (accuracy matrix, recent/previous-task accuracy, forgetting,
…), their mean, standard deviation and 95 % confidence interval over seeds
(Student's t), and the paired per-seed differences of SpikeDyn against each
baseline with their confidence intervals.
"""

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray

from spikedyn_brian import provenance
from spikedyn_brian.analysis.storage import read_dataset, write_dataset
from spikedyn_brian.cluster import dask_client, import_brian2_in_worker
from spikedyn_brian.config import ConfigError, ContinualExperiment, load_experiment, merge

__all__ = ["VARIANTS", "BASELINES", "ComparisonPlan", "run", "merge_runs", "seed_statistics",
           "paired_differences"]

#: Variant → (tuning family, trial filter, overrides of the ``[network]`` table).
#: The family's best validation trial (among those matching the filter) gives
#: the tuned parameters; the overrides go on top (ablations).
VARIANTS = {
    "diehl-cook": ("diehl-cook", {}, {}),
    "asp": ("asp", {}, {}),
    # ASP as reconstructed before the survey (protocols/asp_leak_to_zero.toml),
    # on the tuned ASP's constants.
    "asp-leak-to-zero": ("asp", {}, {"asp": {"baseline_weight": 0.0,
                                             "time_dependent_learning_rate": False,
                                             "frequency_dependent_updates": False}}),
    "spikedyn": ("spikedyn", {}, {}),
    "spikedyn-no-adaptive-learning-rate": (
        "spikedyn", {}, {"spikedyn": {"adaptive_learning_rate": False}}),
    "spikedyn-no-adaptive-threshold": (
        "spikedyn", {}, {"spikedyn": {"adaptive_threshold": False}}),
    "spikedyn-no-weight-decay": ("spikedyn", {}, {"spikedyn": {"weight_decay": False}}),
    "spikedyn-no-spurious-update-reduction": (
        "spikedyn", {}, {"spikedyn": {"spurious_update_reduction": False}}),
}

#: Baselines SpikeDyn is compared with, pair by pair and seed by seed.
BASELINES = ("asp", "diehl-cook", "asp-leak-to-zero")

#: Metrics summarised over seeds (mean, std, 95 % CI) and compared pairwise.
SUMMARISED = ("recent_task_accuracy", "later_recent_task_accuracy", "previous_tasks_accuracy",
              "final_previous_tasks_accuracy", "average_seen_accuracy", "average_forgetting",
              "backward_transfer")


#: Per-run variables gathered into the merged Dataset.
_GATHERED = (
    "accuracy",
    "recent_task_accuracy",
    "later_recent_task_accuracy",
    "previous_tasks_accuracy",
    "previous_tasks_accuracy_per_step",
    "seen_tasks_accuracy",
    "average_seen_accuracy",
    "forgetting",
    "average_forgetting",
    "backward_transfer",
    "confusion",
)


@dataclass
class ComparisonPlan:
    """Which variants and seeds to compare, on which base configuration.

    Attributes
    ----------
    base : dict
        Overrides applied to the dynamic-digits defaults for every run.
    variants : list of str
        Keys of `VARIANTS`.
    seeds : list of int
    output : str
        Merged results file; per-run files go to ``<output stem>_runs/``.
    overwrite : bool
        Replace a merged results file that exists (otherwise `run` refuses to
        start).
    scheduler : str or None
        Address of an existing Dask scheduler; None starts a LocalCluster.
    workers : int
        Worker processes of the LocalCluster (default: the number of cores).
    """

    base: dict = field(default_factory=dict)
    variants: list = field(default_factory=lambda: list(VARIANTS))
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    output: str = "results/continual_comparison.nc"
    overwrite: bool = False
    scheduler: str | None = None
    workers: int = 0

    #: Tuning family → its tuned parameters: a trial table of `tuning.run`, a
    #: tuned-set TOML file or a shipped set's name (`tuning.tuned_overrides`);
    #: a family without one runs with its defaults.
    tuned: dict = field(default_factory=dict)

    def _family_overrides(self, family, where=None):
        if family not in self.tuned:
            return {"variant": family}
        from spikedyn_brian.protocols.tuning import tuned_overrides

        return merge(tuned_overrides(self.tuned[family], where=where), {"variant": family})

    def network_overrides(self, variant):
        """The ``[network]`` overrides of a variant: tuned parameters, then its own."""
        if variant not in VARIANTS:
            raise ValueError(
                f"variant {variant!r} is unknown; choose from {', '.join(VARIANTS)}"
            )
        family, where, own = VARIANTS[variant]
        overrides = merge(self._family_overrides(family, where), own)
        if variant == "spikedyn-no-spurious-update-reduction":
            overrides = merge(overrides, self._borrowed_depression(overrides))
        return overrides

    def _borrowed_depression(self, overrides):
        """Diehl & Cook's depression rate for SpikeDyn without its update rule.

        The ablation reverts to Diehl & Cook's rule, whose depression rate
        SpikeDyn's family does not tune (its own rule has none): ``nu_pre`` keeps
        the ratio ``nu_pre / nu_post`` of Diehl & Cook's tuned set (of the
        published constants, 0.01, without one) at SpikeDyn's tuned ``nu_post``.
        """
        from spikedyn_brian.models.parameters import PlasticityParameters

        dc = self._family_overrides("diehl-cook").get("plasticity", {})
        ratio = (dc.get("nu_pre", PlasticityParameters.nu_pre)
                 / dc.get("nu_post", PlasticityParameters.nu_post))
        nu_post = overrides.get("plasticity", {}).get("nu_post", PlasticityParameters.nu_post)
        return {"plasticity": {"nu_pre": ratio * nu_post}}

    def experiment(self, variant, seed):
        """The ContinualExperiment of one (variant, seed) run."""
        overrides = merge(copy.deepcopy(self.base), {
            "network": merge(self.base.get("network", {}), self.network_overrides(variant)),
            "stream": merge(self.base.get("stream", {}), {"seed": seed}),
            "output": {"path": str(self.run_path(variant, seed)), "progress": False},
        })
        from spikedyn_brian.protocols import dynamic_digits

        return load_experiment(dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)

    def run_path(self, variant, seed):
        output = Path(self.output)
        return output.with_name(f"{output.stem}_runs") / f"{variant}_seed{seed}.nc"


def _run_one(experiment):
    """Dask task: run one experiment in a worker process.

    Returns its file path and the worker's process id (None when the file
    existed already and nothing ran).
    """
    import_brian2_in_worker()
    from spikedyn_brian.protocols import dynamic_digits

    path = Path(experiment.output.path)
    if path.exists():
        _check_reusable(path, experiment)
        return str(path), None
    dynamic_digits.run(experiment)
    return str(path), os.getpid()


def _results_configuration(configuration):
    """A run's configuration without what changes where things go, not what is computed."""
    configuration = copy.deepcopy(configuration)
    configuration.pop("output", None)
    configuration.get("device", {}).pop("build_dir", None)
    return configuration


def _check_reusable(path, experiment):
    """Raise `ConfigError` when the finished per-run file ``path`` ran another configuration
    or cannot be read."""
    try:
        with xarray.open_dataset(path) as stored:
            stored_configuration = json.loads(stored.attrs.get("config", "{}"))
    except (OSError, ValueError, RuntimeError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(
            f"per-run file '{path}' of the comparison cannot be read (truncated, corrupt or "
            f"not netCDF: {type(error).__name__}: {' '.join(str(error).split())}); remove it "
            f"(rm '{path}') to run "
            "that pair again") from None
    if (_results_configuration(stored_configuration)
            != _results_configuration(json.loads(experiment.to_json()))):
        raise ConfigError(
            f"'{path}' holds a finished run of another configuration (a comparison with "
            f"other settings wrote it); give this comparison another --out, or remove "
            f"'{path.parent}' to run every pair again")


def _check_runs(experiments):
    """Before anything is submitted: every finished per-run file must be readable and of
    this configuration, every per-run checkpoint readable (a `ConfigError` naming the file
    and the fix, instead of failing Dask tasks)."""
    from spikedyn_brian.checkpoint import Checkpoint, checkpoint_path

    for experiment in experiments.values():
        path = Path(experiment.output.path)
        if path.exists():
            _check_reusable(path, experiment)
            continue
        stored = checkpoint_path(path)
        Checkpoint(stored, "", fix=f"remove it (rm '{stored}') to run that pair afresh").verify()


def run(plan, progress=None):
    """Run every (variant, seed) pair on Dask, merge, write and return the Dataset.

    The merged file is claimed first (`~spikedyn_brian.phases.output_lock`):
    one that exists is not replaced unless ``plan.overwrite``, and a second
    comparison aimed at it is refused.
    """
    from spikedyn_brian.phases import output_lock

    with output_lock(plan.output, plan.overwrite):
        return _run(plan, progress)


def _run(plan, progress):
    from spikedyn_brian.checkpoint import CheckpointError

    try:
        experiments = {(v, s): plan.experiment(v, s) for v in plan.variants for s in plan.seeds}
    except CheckpointError as error:  # a per-run checkpoint, checked with its configuration
        if error.path is None:
            raise
        raise ConfigError(f"{error.problem}; remove it (rm '{error.path}') to run that pair "
                          "afresh") from None
    _check_runs(experiments)
    client, cluster = dask_client(plan.scheduler, plan.workers)
    try:
        futures = {key: client.submit(_run_one, experiment, key=f"run-{key[0]}-seed{key[1]}",
                                      retries=2, pure=False)
                   for key, experiment in experiments.items()}
        if progress is None:
            import sys

            progress = sys.stdout.isatty()
        if progress:
            from dask.distributed import progress as dask_progress

            dask_progress(list(futures.values()))
        outcomes = {key: future.result() for key, future in futures.items()}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    paths = {key: path for key, (path, _) in outcomes.items()}
    dataset = merge_runs(paths, plan)
    # Which worker process ran each pair in this call (-1: reused file).
    dataset.attrs["worker_pids"] = [
        -1 if outcomes[(v, s)][1] is None else int(outcomes[(v, s)][1])
        for v in plan.variants for s in plan.seeds
    ]
    write_dataset(dataset, plan.output)
    return dataset


def merge_runs(paths, plan):
    """Gather per-run metrics over ``variant`` and ``seed``; add seed statistics and pairs."""
    rows = []
    for variant in plan.variants:
        per_seed = []
        for seed in plan.seeds:
            run_dataset = read_dataset(paths[(variant, seed)])
            gathered = run_dataset[list(_GATHERED)]
            gathered["final_previous_tasks_accuracy"] = run_dataset[
                "previous_tasks_accuracy_per_step"].isel(after_task=-1, drop=True).assign_attrs(
                long_name="accuracy on the earlier tasks at the end of the stream", units="1")
            per_seed.append(gathered)
        rows.append(xarray.concat(per_seed, dim=xarray.DataArray(plan.seeds, dims="seed")))
    merged = xarray.concat(rows, dim=xarray.DataArray(plan.variants, dims="variant"))
    for name in SUMMARISED + ("accuracy",):
        label = name.replace("_", " ")
        mean, std, half_width = seed_statistics(merged[name])
        merged[f"{name}_mean"] = mean.assign_attrs(long_name=f"{label}, mean over seeds",
                                                   units="1")
        merged[f"{name}_std"] = std.assign_attrs(
            long_name=f"{label}, standard deviation over seeds", units="1")
        merged[f"{name}_ci95"] = half_width.assign_attrs(
            long_name=f"{label}, half-width of the 95 % confidence interval of the mean "
                      "(Student's t over seeds)", units="1")
    merged = merged.merge(paired_differences(merged, plan.variants))
    first = read_dataset(paths[(plan.variants[0], plan.seeds[0])])
    merged.attrs = {
        "title": "spikedyn-brian continual-learning comparison",
        "protocol": "dynamic-digits comparison",
        "variants": list(plan.variants),
        "seeds": [int(s) for s in plan.seeds],
        "base_config": first.attrs["config"],
        "evaluation_split": first.attrs.get("evaluation_split", "test"),
        "tuned": json.dumps({family: str(path) for family, path in plan.tuned.items()}),
        "variant_parameters": json.dumps(
            {variant: plan.network_overrides(variant) for variant in plan.variants},
            sort_keys=True, default=str),
        "run_files": [str(paths[(v, s)]) for v in plan.variants for s in plan.seeds],
        **provenance.attributes(),
    }
    return merged


def seed_statistics(values):
    """Mean, standard deviation and 95 % confidence half-width over ``seed``.

    The half-width is ``t(0.975, n - 1) · std / sqrt(n)`` (Student's t,
    ``ddof = 1``); NaN with a single seed.
    """
    from scipy import stats

    n = values.sizes["seed"]
    mean = values.mean("seed")
    if n > 1:
        std = values.std("seed", ddof=1)
        half_width = std * (stats.t.ppf(0.975, n - 1) / np.sqrt(n))
    else:
        std = values.std("seed") * np.nan
        half_width = std
    return mean, std, half_width


def paired_differences(merged, variants):
    """SpikeDyn minus each baseline, seed by seed, with mean and 95 % CI.

    Returns a Dataset with dim ``baseline`` (those of `BASELINES` in
    ``variants``): ``<metric>_difference`` (baseline, seed) and its
    ``_mean``/``_ci95`` over seeds (a paired t interval), for every metric of
    `SUMMARISED`.
    """
    baselines = [b for b in BASELINES if b in variants]
    if "spikedyn" not in variants or not baselines:
        return xarray.Dataset()
    result = {}
    for name in SUMMARISED:
        spikedyn = merged[name].sel(variant="spikedyn", drop=True)
        difference = spikedyn - merged[name].sel(variant=baselines).rename(variant="baseline")
        mean, _, half_width = seed_statistics(difference)
        label = name.replace("_", " ")
        result[f"{name}_difference"] = difference.assign_attrs(
            long_name=f"SpikeDyn minus baseline, {label}, same seed", units="1")
        result[f"{name}_difference_mean"] = mean.assign_attrs(
            long_name=f"SpikeDyn minus baseline, {label}, mean over seeds", units="1")
        result[f"{name}_difference_ci95"] = half_width.assign_attrs(
            long_name=f"SpikeDyn minus baseline, {label}, 95 % CI half-width (paired t)",
            units="1")
    return xarray.Dataset(result)

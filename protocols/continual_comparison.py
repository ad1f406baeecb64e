"""Continual-learning comparison: baselines, SpikeDyn and its ablations, several seeds.

Every (variant, seed) pair runs the dynamic-digits protocol on the same stream
definition, as an independent task on a Dask cluster (a LocalCluster with one
single-threaded worker process per core by default, or an existing scheduler).
A worker that dies loses only its task, which Dask retries. Per-run results
files are kept next to the merged file, so a re-run skips finished pairs.

The merged Dataset has dims ``variant`` and ``seed`` in front of the
per-run metrics (accuracy matrix, recent/previous-task accuracy, forgetting,
…) and their mean and standard deviation over seeds.
"""

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import xarray

from spikedyn_brian.analysis.storage import read_dataset, write_dataset
from spikedyn_brian.cluster import dask_client, import_brian2_in_worker
from spikedyn_brian.config import ContinualExperiment, load_experiment, merge

__all__ = ["VARIANTS", "ComparisonPlan", "run"]

#: Variant name → overrides of the ``[network]`` table.
VARIANTS = {
    "diehl-cook": {"variant": "diehl-cook"},
    "asp": {"variant": "asp"},
    "spikedyn": {"variant": "spikedyn"},
    "spikedyn-no-adaptive-learning-rate": {
        "variant": "spikedyn", "spikedyn": {"adaptive_learning_rate": False}},
    "spikedyn-no-adaptive-threshold": {
        "variant": "spikedyn", "spikedyn": {"adaptive_threshold": False}},
    "spikedyn-no-weight-decay": {"variant": "spikedyn", "spikedyn": {"weight_decay": False}},
    "spikedyn-no-spurious-update-reduction": {
        "variant": "spikedyn", "spikedyn": {"spurious_update_reduction": False}},
}

#: Per-run variables gathered into the merged Dataset.
_GATHERED = (
    "accuracy",
    "recent_task_accuracy",
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
    scheduler : str or None
        Address of an existing Dask scheduler; None starts a LocalCluster.
    workers : int
        Worker processes of the LocalCluster (default: the number of cores).
    """

    base: dict = field(default_factory=dict)
    variants: list = field(default_factory=lambda: list(VARIANTS))
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    output: str = "results/continual_comparison.nc"
    scheduler: str | None = None
    workers: int = 0

    def experiment(self, variant, seed):
        """The ContinualExperiment of one (variant, seed) run."""
        if variant not in VARIANTS:
            raise ValueError(
                f"variant {variant!r} is unknown; choose from {', '.join(VARIANTS)}"
            )
        overrides = merge(copy.deepcopy(self.base), {
            "network": merge(self.base.get("network", {}), VARIANTS[variant]),
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
        return str(path), None
    dynamic_digits.run(experiment)
    return str(path), os.getpid()


def run(plan, progress=None):
    """Run every (variant, seed) pair on Dask, merge, write and return the Dataset."""
    experiments = {(v, s): plan.experiment(v, s) for v in plan.variants for s in plan.seeds}
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
    """Gather per-run metrics over ``variant`` and ``seed``; add seed means and spreads."""
    rows = []
    for variant in plan.variants:
        per_seed = []
        for seed in plan.seeds:
            run_dataset = read_dataset(paths[(variant, seed)])
            per_seed.append(run_dataset[list(_GATHERED)])
        rows.append(xarray.concat(per_seed, dim=xarray.DataArray(plan.seeds, dims="seed")))
    merged = xarray.concat(rows, dim=xarray.DataArray(plan.variants, dims="variant"))
    for name in ("recent_task_accuracy", "previous_tasks_accuracy", "average_seen_accuracy",
                 "average_forgetting", "backward_transfer", "accuracy"):
        merged[f"{name}_mean"] = merged[name].mean("seed").assign_attrs(
            long_name=f"{name.replace('_', ' ')}, mean over seeds", units="1")
        merged[f"{name}_std"] = merged[name].std("seed", ddof=1 if len(plan.seeds) > 1 else 0
                                                 ).assign_attrs(
            long_name=f"{name.replace('_', ' ')}, standard deviation over seeds", units="1")
    first = read_dataset(paths[(plan.variants[0], plan.seeds[0])])
    merged.attrs = {
        "title": "spikedyn-brian continual-learning comparison",
        "protocol": "dynamic-digits comparison",
        "variants": list(plan.variants),
        "seeds": [int(s) for s in plan.seeds],
        "base_config": first.attrs["config"],
        "versions": first.attrs["versions"],
        "run_files": [str(paths[(v, s)]) for v in plan.variants for s in plan.seeds],
    }
    return merged

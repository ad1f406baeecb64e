"""Equal-budget tuning on the validation split: one tuner for every variant.

Methods, in order:

1. **Search space** per variant (`SEARCH_SPACES`): Diehl & Cook and ASP get
   their learning rates and theta parameters (Diehl & Cook also the reading
   of the original's timer, both published networks; ASP its leak and
   significance rate); SpikeDyn its own constants. The spaces, their ranges
   and the reasons are in ``docs/results.md``.
2. **Trials**: Optuna's TPE sampler (seeded) proposes parameters; each trial
   is one dynamic-digits run with ``stream.evaluation = 'validation'``: the
   network learns the class-incremental stream from training digits outside
   the fixed validation split and is evaluated on validation digits only. No
   test digit is ever presented while tuning.
3. **Objective** (`objective`): the mean of the recent-task and the
   previous-task accuracy, the two figures the SpikeDyn claims are about.
4. **Budget**: every variant gets the same number of trials (``--trials``),
   counted whatever their outcome (a failed trial uses its share).
5. **Storage**: every trial is kept — in Optuna's SQLite file
   (``<output>.db``, which also makes the study resumable: re-running the
   same command continues it, and a trial interrupted mid-run runs again
   with the same parameters) and as its dynamic-digits results file
   (``<output stem>_trials/``); the trial table (one Dataset over ``trial``)
   goes to ``<output>``.

Trials run as Dask tasks, one per worker (a LocalCluster with one
single-threaded worker per core, or ``--scheduler ADDRESS``). Run it with
``spikedyn run tune --variant V --trials T ...``.
"""

import copy
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray

from spikedyn_brian import provenance
from spikedyn_brian.analysis.storage import read_dataset, write_dataset
from spikedyn_brian.cluster import dask_client, import_brian2_in_worker
from spikedyn_brian.config import ConfigError, ContinualExperiment, load_experiment, merge

__all__ = ["Dimension", "SEARCH_SPACES", "TuningPlan", "objective", "run", "best_overrides",
           "OBJECTIVE_DESCRIPTION"]

OBJECTIVE_DESCRIPTION = (
    "mean of recent-task and previous-task accuracy (all-activity rule) on the "
    "validation split, dynamic-digits protocol"
)


@dataclass(frozen=True)
class Dimension:
    """One tuned parameter: a ``[network]`` key and its range or choices.

    Attributes
    ----------
    key : str
        Dotted path below ``[network]``, e.g. ``'plasticity.nu_post'``.
    low, high : float
        Range of a numeric parameter.
    log : bool
        Sample the range on a log scale.
    choices : tuple
        Values of a categorical parameter (then ``low``/``high`` are unused).
    """

    key: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()

    def distribution(self):
        import optuna

        if self.choices:
            return optuna.distributions.CategoricalDistribution(self.choices)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def __repr__(self):
        if self.choices:
            return f"Dimension({self.key!r}, choices={self.choices!r})"
        scale = ", log" if self.log else ""
        return f"Dimension({self.key!r}, {self.low:g}..{self.high:g}{scale})"


_LEARNING = (
    Dimension("plasticity.nu_post", 1e-3, 1e-1, log=True),
    Dimension("plasticity.nu_pre", 1e-5, 1e-3, log=True),
    Dimension("excitatory.theta_plus_mV", 0.01, 0.5, log=True),
    Dimension("excitatory.tau_theta_ms", 1e5, 1e8, log=True),
)

#: Variant → tuned dimensions. Ranges span at least a decade around the
#: published (Diehl & Cook) or default values.
SEARCH_SPACES = {
    "diehl-cook": _LEARNING + (Dimension("excitatory.timer", choices=("original", "brian2-port")),),
    "asp": _LEARNING + (
        Dimension("asp.leak_per_sample", 1e-4, 1e-1, log=True),
        Dimension("asp.significance_rate", 1e-3, 1.0, log=True),
    ),
    "spikedyn": (
        Dimension("plasticity.nu_post", 1e-3, 1e-1, log=True),
        Dimension("spikedyn.x_target", 0.0, 0.5),
        Dimension("spikedyn.w_lateral", 3.0, 50.0, log=True),
        Dimension("spikedyn.consolidation_spikes", 10.0, 1e4, log=True),
        Dimension("spikedyn.activity_tau_presentations", 1e2, 1e6, log=True),
        Dimension("spikedyn.theta_rate_mV", 0.005, 0.5, log=True),
        Dimension("spikedyn.target_response", 5.0, 100.0, log=True),
        Dimension("spikedyn.weight_decay_per_sample", 1e-5, 1e-2, log=True),
    ),
}


def objective(dataset):
    """The tuning objective of a dynamic-digits results Dataset (`OBJECTIVE_DESCRIPTION`)."""
    return 0.5 * (float(dataset.recent_task_accuracy) + float(dataset.previous_tasks_accuracy))


def _nested(params):
    """``{'a.b': 1}`` → ``{'a': {'b': 1}}`` (network overrides)."""
    nested = {}
    for key, value in params.items():
        table = nested
        *parents, leaf = key.split(".")
        for parent in parents:
            table = table.setdefault(parent, {})
        table[leaf] = value
    return nested


@dataclass
class TuningPlan:
    """One variant's tuning study.

    Attributes
    ----------
    variant : str
        Key of `SEARCH_SPACES` (also the network variant).
    trials : int
        Budget: trials run (complete or failed).
    base : dict
        Overrides of the dynamic-digits defaults shared by every trial
        (network size, stream length, data directory, validation digits per
        class, seed). ``stream.evaluation`` is always ``'validation'``.
    output : str
        Trial table (netCDF); the study is ``<output>.db``, the trials'
        results files ``<output stem>_trials/``.
    scheduler : str or None
        Existing Dask scheduler; None starts a LocalCluster.
    workers : int
        LocalCluster worker processes (0: one per core).
    sampler_seed : int
        Seed of the TPE sampler.
    """

    variant: str
    trials: int = 30
    base: dict = field(default_factory=dict)
    output: str = "results/tuning.nc"
    scheduler: str | None = None
    workers: int = 0
    sampler_seed: int = 0

    def __post_init__(self):
        if self.variant not in SEARCH_SPACES:
            raise ConfigError(f"variant {self.variant!r} has no search space; choose one of "
                              f"{', '.join(SEARCH_SPACES)}")
        if int(self.trials) < 1:
            raise ConfigError(f"the tuning budget must be at least 1 trial, got {self.trials}")

    @property
    def space(self):
        return SEARCH_SPACES[self.variant]

    @property
    def study_path(self):
        return Path(self.output).with_suffix(".db")

    @property
    def trials_directory(self):
        output = Path(self.output)
        return output.with_name(f"{output.stem}_trials")

    def study_name(self):
        """Names the study by variant, space and base configuration (one .db may hold several)."""
        text = json.dumps([self.variant, [repr(d) for d in self.space], self.base], sort_keys=True)
        return f"{self.variant}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def experiment(self, params):
        """The ContinualExperiment of one trial (its results file named by its parameters)."""
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        overrides = merge(copy.deepcopy(self.base), {
            "network": merge(merge(self.base.get("network", {}), {"variant": self.variant}),
                             _nested(params)),
            "stream": merge(self.base.get("stream", {}), {"evaluation": "validation"}),
            "output": {"path": str(self.trials_directory / f"trial-{key}.nc"),
                       "progress": False},
        })
        from spikedyn_brian.protocols import dynamic_digits

        return load_experiment(dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)


def _run_trial(experiment):
    """Dask task: one dynamic-digits run on validation digits; its metrics.

    Compiled in a build directory of its own, removed afterwards (every trial
    has other constants); a results file that exists already is reused, and
    an interrupted trial resumes from its checkpoint.
    """
    import_brian2_in_worker()
    from spikedyn_brian.protocols import dynamic_digits

    path = Path(experiment.output.path)
    if not path.exists():
        # A build of its own (every trial has other constants), next to the
        # trial's results so that a killed trial's build is found and removed
        # by its re-run; removed afterwards.
        build_root = path.parent / ".builds" / path.stem
        shutil.rmtree(build_root, ignore_errors=True)
        experiment.device.build_dir = str(build_root)
        try:
            dynamic_digits.run(experiment)
        finally:
            shutil.rmtree(build_root, ignore_errors=True)
    dataset = read_dataset(path)
    return {
        "objective": objective(dataset),
        "recent_task_accuracy": float(dataset.recent_task_accuracy),
        "previous_tasks_accuracy": float(dataset.previous_tasks_accuracy),
        "average_seen_accuracy": float(dataset.average_seen_accuracy),
        "path": str(path),
        "worker_pid": os.getpid(),
    }


def _load_study(plan):
    import optuna

    plan.study_path.parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=plan.sampler_seed,
                                         n_startup_trials=max(1, min(10, plan.trials // 3)))
    study = optuna.create_study(
        study_name=plan.study_name(), storage=f"sqlite:///{plan.study_path}",
        direction="maximize", sampler=sampler, load_if_exists=True)
    # Trials a previous (interrupted) process left running run again with
    # the same parameters; their results file is reused if it was written.
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})
    return study


def _spent(study):
    """Trials that used their share of the budget (complete or failed, not re-run ones)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    rerun = {t.user_attrs.get("rerun_of") for t in study.get_trials(deepcopy=False)}
    return sum(1 for t in study.get_trials(deepcopy=False, states=states)
               if t.number not in rerun)


def run(plan, progress=None):
    """Run (or continue) the study to its budget; write and return the trial table."""
    import optuna
    from dask.distributed import wait

    study = _load_study(plan)
    distributions = {d.key: d.distribution() for d in plan.space}
    client, cluster = dask_client(plan.scheduler, plan.workers)
    try:
        slots = max(1, len(client.scheduler_info().get("workers", {})) or plan.workers or 1)
        pending = {}
        while True:
            while len(pending) < slots and _spent(study) + len(pending) < plan.trials:
                trial = study.ask(distributions)
                experiment = plan.experiment(trial.params)
                future = client.submit(_run_trial, experiment, pure=False, retries=1,
                                       key=f"trial-{plan.variant}-{trial.number}")
                pending[future] = trial
            if not pending:
                break
            done, _ = wait(list(pending), return_when="FIRST_COMPLETED")
            for future in done:
                trial = pending.pop(future)
                try:
                    metrics = future.result()
                except Exception as error:  # a failed trial still used its budget
                    trial.set_user_attr("error", f"{type(error).__name__}: {error}")
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    continue
                for name, value in metrics.items():
                    trial.set_user_attr(name, value)
                study.tell(trial, metrics["objective"])
                if progress:
                    print(f"trial {trial.number}: objective {metrics['objective']:.4f} "
                          f"(recent {metrics['recent_task_accuracy']:.3f}, previous "
                          f"{metrics['previous_tasks_accuracy']:.3f})", flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    builds = plan.trials_directory / ".builds"
    if builds.is_dir() and not any(builds.iterdir()):
        builds.rmdir()
    dataset = trial_table(plan, study)
    write_dataset(dataset, plan.output)
    return dataset


def trial_table(plan, study):
    """Every trial of the study as a Dataset over ``trial``."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    numbers = np.array([t.number for t in trials], dtype=np.int64)
    data = {
        "objective": (("trial",), np.array([np.nan if t.value is None else t.value
                                            for t in trials]),
                      {"long_name": OBJECTIVE_DESCRIPTION, "units": "1"}),
        "state": (("trial",), np.array([t.state.name for t in trials], dtype=object),
                  {"long_name": "Optuna trial state"}),
    }
    for metric in ("recent_task_accuracy", "previous_tasks_accuracy", "average_seen_accuracy"):
        data[metric] = (("trial",), np.array([t.user_attrs.get(metric, np.nan) for t in trials]),
                        {"long_name": f"{metric.replace('_', ' ')} (validation)", "units": "1"})
    for dimension in plan.space:
        values = [t.params.get(dimension.key) for t in trials]
        if dimension.choices:
            data[f"param.{dimension.key}"] = (("trial",), np.array(
                ["" if v is None else str(v) for v in values], dtype=object), {})
        else:
            data[f"param.{dimension.key}"] = (("trial",), np.array(
                [np.nan if v is None else v for v in values], dtype=float),
                {"log_scale": int(dimension.log), "range": [dimension.low, dimension.high]})
    complete = [t for t in trials if t.value is not None]
    best = max(complete, key=lambda t: t.value) if complete else None
    dataset = xarray.Dataset(data, coords={"trial": numbers})
    dataset.attrs = {
        "title": f"spikedyn-brian tuning study, variant {plan.variant}",
        "variant": plan.variant,
        "budget_trials": int(plan.trials),
        "objective": OBJECTIVE_DESCRIPTION,
        "sampler": f"optuna TPESampler(seed={plan.sampler_seed})",
        "search_space": [repr(d) for d in plan.space],
        "base_config": json.dumps(plan.base, sort_keys=True),
        "study": f"{plan.study_path.name}:{plan.study_name()}",
        "best_trial": -1 if best is None else int(best.number),
        "best_params": json.dumps({} if best is None else best.params, sort_keys=True),
        **provenance.attributes(),
    }
    return dataset


def best_overrides(path, where=None):
    """``[network]`` overrides of the best trial of a trial table (`run`'s output).

    Parameters
    ----------
    path : str or Path
        Trial table (netCDF).
    where : dict, optional
        Parameter key → value the trial must have (e.g.
        ``{'excitatory.timer': 'brian2-port'}``: the best trial with the other
        reading of the timer).

    Returns
    -------
    dict
        Nested overrides, e.g. ``{'plasticity': {'nu_post': 0.01}}``, with the
        variant: ``{'variant': 'diehl-cook', ...}``.
    """
    dataset = read_dataset(path)
    mask = np.isfinite(dataset.objective.values)
    for key, value in (where or {}).items():
        mask &= dataset[f"param.{key}"].values.astype(str) == str(value)
    if not mask.any():
        raise ValueError(f"no complete trial in '{path}' matches {where!r}")
    position = int(np.flatnonzero(mask)[np.argmax(dataset.objective.values[mask])])
    params = {}
    for name in dataset.data_vars:
        if name.startswith("param."):
            value = dataset[name].values[position]
            params[name[len("param."):]] = value.item() if hasattr(value, "item") else value
    return merge({"variant": dataset.attrs["variant"]}, _nested(params))

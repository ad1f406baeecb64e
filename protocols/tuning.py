"""Equal-budget tuning on the validation split: one tuner for every variant.

Methods, in order:

1. **Search space** per variant (`SEARCH_SPACES`): every family tunes its
   learning rates, its threshold adaptation and its inhibition strength
   (over the same range); ASP also its decay phase, time-dependent learning
   rate and frequency gain; SpikeDyn its own constants. The spaces, their
   ranges and the reasons are in ``docs/results.md``; `edge_report` tells
   whether a best value lies near an arbitrary edge of its range.
2. **Trials**: Optuna's TPE sampler (seeded) proposes parameters; each trial
   is one dynamic-digits run per stream seed (`TRIAL_SEEDS`, the same for
   every trial and family) with ``stream.evaluation = 'validation'``: the
   network learns the class-incremental stream from training digits outside
   the fixed validation split and is evaluated on validation digits only. No
   test digit is ever presented while tuning. A run whose network falls
   silent is stopped and scores 0 (`SILENT_PRESENTATIONS`).
3. **Objective** (`objective`): the mean of the recent-task and the
   previous-task accuracy, the two figures the SpikeDyn claims are about,
   averaged over the trial's seeds.
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

from spikedyn_brian import parameter_sets, provenance
from spikedyn_brian.analysis.storage import read_dataset, write_dataset
from spikedyn_brian.cluster import dask_client, import_brian2_in_worker
from spikedyn_brian.config import ConfigError, ContinualExperiment, load_experiment, merge

__all__ = ["Dimension", "SEARCH_SPACES", "TRIAL_SEEDS", "TuningPlan", "objective", "run",
           "best_overrides", "best_trial_position", "best_so_far", "edge_report",
           "tuned_overrides", "tuned_set_path", "write_tuned_set", "TUNED_DIRECTORY",
           "OBJECTIVE_DESCRIPTION"]

OBJECTIVE_DESCRIPTION = (
    "mean of recent-task and previous-task accuracy (all-activity rule) on the "
    "validation split, dynamic-digits protocol"
)


#: Limits of the ranges that are physical rather than arbitrary: a best value
#: there means the mechanism is off (or its decay absent) within the stream,
#: so the range needs no widening. K = 1,000 digits per task: 10^4 training
#: presentations, about 5.5 × 10^6 ms of simulated time.
_OFF = "off within the stream (the whole stream changes a weight by less than 0.003)"
_NO_DECAY = "no decay within the stream (the time constant exceeds the stream's length 100-fold)"
_CONSTANT = "constant over the stream (10^4 presentations against a constant of 10^7)"


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
    low_limit, high_limit : str
        Why an edge is a physical limit (empty: an arbitrary edge, which a
        best value must not approach: `edge_report`).
    """

    key: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()
    low_limit: str = ""
    high_limit: str = ""

    def distribution(self):
        import optuna

        if self.choices:
            return optuna.distributions.CategoricalDistribution(self.choices)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def distance_to_edges(self, value):
        """(distance to ``low``, distance to ``high``): decades on a log scale,
        fractions of the range on a linear one."""
        if self.log:
            return float(np.log10(value / self.low)), float(np.log10(self.high / value))
        width = self.high - self.low
        return (value - self.low) / width, (self.high - value) / width

    def __repr__(self):
        if self.choices:
            return f"Dimension({self.key!r}, choices={self.choices!r})"
        scale = ", log" if self.log else ""
        return f"Dimension({self.key!r}, {self.low:g}..{self.high:g}{scale})"


#: A best value closer to an arbitrary edge than this (decades on a log
#: scale, fraction of the range on a linear one) asks for a wider range.
EDGE_MARGIN = {"log": 0.2, "linear": 0.05}

#: The inhibition strength every family tunes, over the same range: the
#: conductance jump one excitatory spike gives the other excitatory neurons
#: (Diehl & Cook, ASP: through its inhibitory partner, w_inh_to_exc;
#: SpikeDyn: directly, w_lateral).
_INHIBITION_RANGE = dict(low=0.3, high=100.0, log=True)

_LEARNING = (
    Dimension("plasticity.nu_post", 1e-4, 1e-1, log=True),
    Dimension("plasticity.nu_pre", 1e-7, 1e-2, log=True, low_limit=_OFF),
    Dimension("excitatory.theta_plus_mV", 1e-3, 1.0, log=True),
    Dimension("excitatory.tau_theta_ms", 1e5, 1e9, log=True, high_limit=_NO_DECAY),
    Dimension("plasticity.w_inh_to_exc", **_INHIBITION_RANGE),
)

#: Variant → tuned dimensions (reasons and the earlier, narrower ranges:
#: ``docs/results.md``). Every family tunes its learning rates, its threshold
#: adaptation and its inhibition strength, over ranges widened until no best
#: value of the earlier study lay within 0.2 decades of an arbitrary edge.
SEARCH_SPACES = {
    "diehl-cook": _LEARNING,
    "asp": _LEARNING + (
        Dimension("asp.leak_per_sample", 1e-6, 0.3, log=True, low_limit=_OFF),
        Dimension("asp.significance_rate", 1e-4, 1.0, log=True,
                  high_limit="s follows the presynaptic trace at every post spike"),
        Dimension("asp.baseline_weight", 0.0, 0.3, low_limit="a leak toward zero"),
        Dimension("asp.learning_rate_tau_presentations", 1e1, 1e7, log=True,
                  high_limit=_CONSTANT),
        Dimension("asp.frequency_gain", 1e-2, 1e2, log=True,
                  low_limit="updates independent of input frequency (1 % at most)"),
    ),
    "spikedyn": (
        Dimension("plasticity.nu_post", 1e-4, 1e-1, log=True),
        Dimension("spikedyn.x_target", 0.0, 1.0, low_limit="no depression at all",
                  high_limit="traces lie in [0, 1]: depression at every post spike"),
        Dimension("spikedyn.w_lateral", **_INHIBITION_RANGE),
        Dimension("spikedyn.consolidation_spikes", 1.0, 1e5, log=True),
        Dimension("spikedyn.activity_tau_presentations", 1e1, 1e7, log=True,
                  high_limit=_NO_DECAY),
        Dimension("spikedyn.theta_rate_mV", 1e-4, 1.0, log=True),
        Dimension("spikedyn.target_response", 1.0, 300.0, log=True),
        Dimension("spikedyn.weight_decay_per_sample", 1e-7, 1e-2, log=True, low_limit=_OFF),
    ),
}

#: Stream seeds of every trial: the objective is their mean (common random
#: numbers: every trial of every family sees the same streams).
TRIAL_SEEDS = (100, 101)

#: A trial whose network needs more than this many presentations per digit,
#: on average over a chunk (it has fallen silent: every digit is shown again
#: at rising intensity up to the cap), is stopped and scored 0.
SILENT_PRESENTATIONS = 4.0


def objective(dataset):
    """The tuning objective of one dynamic-digits results Dataset (`OBJECTIVE_DESCRIPTION`);
    a trial's objective is its mean over `TuningPlan.seeds`."""
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


#: Per-run metrics stored for every trial and seed.
_METRICS = ("objective", "recent_task_accuracy", "later_recent_task_accuracy",
            "previous_tasks_accuracy", "average_seen_accuracy")


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
        class). ``stream.evaluation`` is always ``'validation'``; the stream
        seed is each of `seeds` in turn.
    output : str
        Trial table (netCDF); the study is ``<output>.db``, the trials'
        results files ``<output stem>_trials/``.
    scheduler : str or None
        Existing Dask scheduler; None starts a LocalCluster.
    workers : int
        LocalCluster worker processes (0: one per core).
    sampler_seed : int
        Seed of the TPE sampler.
    seeds : tuple of int
        Stream seeds of every trial (its objective is their mean).
    overwrite : bool
        Replace a file at ``output`` that is not this study's trial table
        (the table of the study being continued is always rewritten).
    """

    variant: str
    trials: int = 30
    base: dict = field(default_factory=dict)
    output: str = "results/tuning.nc"
    scheduler: str | None = None
    workers: int = 0
    sampler_seed: int = 0
    seeds: tuple = TRIAL_SEEDS
    overwrite: bool = False

    def __post_init__(self):
        if self.variant not in SEARCH_SPACES:
            raise ConfigError(f"variant {self.variant!r} has no search space; choose one of "
                              f"{', '.join(SEARCH_SPACES)}")
        if int(self.trials) < 1:
            raise ConfigError(f"the tuning budget must be at least 1 trial, got {self.trials}")
        self.seeds = tuple(int(seed) for seed in self.seeds)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"a trial needs at least one stream seed, each once; got "
                              f"{list(self.seeds)}")

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
        """Names the study by variant, space, seeds and base configuration (one .db may hold several)."""
        text = json.dumps([self.variant, [repr(d) for d in self.space], self.base,
                           list(self.seeds)], sort_keys=True)
        return f"{self.variant}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def experiment(self, params, seed=None):
        """The ContinualExperiment of one trial's run with stream seed ``seed``
        (default: the first of `seeds`), its results file named by its parameters."""
        seed = self.seeds[0] if seed is None else int(seed)
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        # Trials start from the published constants, never from a shipped tuned
        # set: re-running a study reproduces it.
        overrides = merge(copy.deepcopy(self.base), {
            "network": merge(merge(self.base.get("network", {}),
                                   {"variant": self.variant, "parameter_set": "published"}),
                             _nested(params)),
            "stream": merge(self.base.get("stream", {}), {
                "evaluation": "validation", "seed": seed,
                "max_presentations_per_sample": SILENT_PRESENTATIONS}),
            "output": {"path": str(self.trials_directory / f"trial-{key}-seed{seed}.nc"),
                       "progress": False},
        })
        from spikedyn_brian.protocols import dynamic_digits

        return load_experiment(dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)

    def trial_experiments(self, params):
        """One experiment per seed of `seeds`."""
        return [self.experiment(params, seed) for seed in self.seeds]


def _run_trial(experiments):
    """Dask task: a trial's dynamic-digits runs on validation digits, one per seed; metrics.

    The runs share one build directory of their own (every trial has other
    constants; the seeds of a trial compile once), next to the trial's
    results so that a killed trial's build is found and removed by its
    re-run; removed afterwards. A results file that exists already is reused,
    and an interrupted run resumes from its checkpoint. A run whose network
    fell silent (`SILENT_PRESENTATIONS`) scores 0 on every metric.
    """
    import_brian2_in_worker()
    from spikedyn_brian.phases import SilentNetworkError
    from spikedyn_brian.protocols import dynamic_digits

    first = Path(experiments[0].output.path)
    build_root = first.parent / ".builds" / first.stem
    per_seed = []
    try:
        for experiment in experiments:
            path = Path(experiment.output.path)
            if not path.exists():
                experiment.device.build_dir = str(build_root)
                try:
                    dynamic_digits.run(experiment)
                except SilentNetworkError as error:
                    per_seed.append({**{name: 0.0 for name in _METRICS}, "silent": str(error),
                                     "path": ""})
                    continue
            dataset = read_dataset(path)
            per_seed.append({
                "objective": objective(dataset),
                **{name: float(dataset[name]) for name in _METRICS[1:]},
                "silent": "", "path": str(path),
            })
    finally:
        shutil.rmtree(build_root, ignore_errors=True)
    metrics = {name: float(np.mean([run[name] for run in per_seed])) for name in _METRICS}
    metrics.update({f"{name}_per_seed": [run[name] for run in per_seed] for name in _METRICS})
    metrics["silent"] = "; ".join(run["silent"] for run in per_seed if run["silent"])
    metrics["paths"] = [run["path"] for run in per_seed]
    metrics["worker_pid"] = os.getpid()
    return metrics


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
    # the same parameters; their results files are reused if they were written.
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


def _is_trial_table_of(plan, path):
    """Whether ``path`` is the trial table of ``plan``'s study (continuing it rewrites it)."""
    try:
        with xarray.open_dataset(path) as stored:
            study = stored.attrs.get("study")
    except (OSError, ValueError, RuntimeError):
        return False
    return study == f"{plan.study_path.name}:{plan.study_name()}"


def run(plan, progress=None):
    """Run (or continue) the study to its budget; write and return the trial table.

    The output is claimed first (`~spikedyn_brian.phases.output_lock`): a file
    there that is not this study's trial table is not replaced unless
    ``plan.overwrite``, and a second process aimed at it is refused.
    """
    from spikedyn_brian.phases import output_lock

    with output_lock(plan.output, plan.overwrite,
                     reusable=lambda path: _is_trial_table_of(plan, path)):
        return _run(plan, progress)


def _run(plan, progress):
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
                experiments = plan.trial_experiments(trial.params)
                future = client.submit(_run_trial, experiments, pure=False, retries=1,
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
                    seeds = ", ".join(f"{value:.3f}" for value in metrics["objective_per_seed"])
                    print(f"trial {trial.number}: objective {metrics['objective']:.4f} "
                          f"(seeds {seeds}; recent {metrics['recent_task_accuracy']:.3f}, "
                          f"previous {metrics['previous_tasks_accuracy']:.3f})"
                          + (f" [silent: {metrics['silent']}]" if metrics["silent"] else ""),
                          flush=True)
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
    """Every trial of the study as a Dataset over ``trial`` (and ``seed``)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    numbers = np.array([t.number for t in trials], dtype=np.int64)
    data = {
        "objective": (("trial",), np.array([np.nan if t.value is None else t.value
                                            for t in trials]),
                      {"long_name": f"{OBJECTIVE_DESCRIPTION}, mean over the trial's seeds",
                       "units": "1"}),
        "state": (("trial",), np.array([t.state.name for t in trials], dtype=object),
                  {"long_name": "Optuna trial state"}),
        "silent": (("trial",), np.array([t.user_attrs.get("silent", "") for t in trials],
                                        dtype=object),
                   {"long_name": "why a run of the trial was stopped as silent (scored 0)"}),
    }
    n_seeds = len(plan.seeds)
    for metric in _METRICS[1:]:
        data[metric] = (("trial",), np.array([t.user_attrs.get(metric, np.nan) for t in trials]),
                        {"long_name": f"{metric.replace('_', ' ')} (validation), mean over "
                                      "seeds", "units": "1"})
    for metric in _METRICS:
        values = [t.user_attrs.get(f"{metric}_per_seed") or [np.nan] * n_seeds for t in trials]
        data[f"{metric}_per_seed"] = (("trial", "seed"),
                                      np.array(values, dtype=float).reshape(len(trials), n_seeds),
                                      {"long_name": f"{metric.replace('_', ' ')} (validation) "
                                                    "of each seed", "units": "1"})
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
    dataset = xarray.Dataset(data, coords={"trial": numbers,
                                           "seed": np.array(plan.seeds, dtype=np.int64)})
    dataset.attrs = {
        "title": f"spikedyn-brian tuning study, variant {plan.variant}",
        "variant": plan.variant,
        "budget_trials": int(plan.trials),
        "objective": OBJECTIVE_DESCRIPTION,
        "trial_seeds": [int(seed) for seed in plan.seeds],
        "silent_presentations": SILENT_PRESENTATIONS,
        "sampler": f"optuna TPESampler(seed={plan.sampler_seed})",
        "search_space": [repr(d) for d in plan.space],
        "base_config": json.dumps(plan.base, sort_keys=True),
        "study": f"{plan.study_path.name}:{plan.study_name()}",
        "best_trial": -1 if best is None else int(best.number),
        "best_params": json.dumps({} if best is None else best.params, sort_keys=True),
        "core_seconds": float(sum((t.datetime_complete - t.datetime_start).total_seconds()
                                  for t in trials if t.datetime_complete and t.datetime_start)),
        **provenance.attributes(),
    }
    return dataset


def best_trial_position(dataset, where=None):
    """Index (along ``trial``) of the best complete trial of a trial table."""
    mask = np.isfinite(dataset.objective.values)
    for key, value in (where or {}).items():
        mask &= dataset[f"param.{key}"].values.astype(str) == str(value)
    if not mask.any():
        raise ValueError(f"no complete trial matches {where!r}" if where
                         else "no complete trial")
    return int(np.flatnonzero(mask)[np.argmax(dataset.objective.values[mask])])


def best_overrides(path, where=None):
    """``[network]`` overrides of the best trial of a trial table (`run`'s output).

    Parameters
    ----------
    path : str or Path
        Trial table (netCDF).
    where : dict, optional
        Parameter key → value the trial must have.

    Returns
    -------
    dict
        Nested overrides, e.g. ``{'plasticity': {'nu_post': 0.01}}``, with the
        variant: ``{'variant': 'diehl-cook', ...}``.
    """
    try:
        dataset = read_dataset(path)
    except FileNotFoundError:
        raise ConfigError(f"trial table '{path}' does not exist; give the .nc that `spikedyn "
                          "run tune --out` wrote") from None
    if "objective" not in dataset.data_vars or "variant" not in dataset.attrs:
        raise ConfigError(
            f"'{path}' is not a trial table of `spikedyn run tune` (no 'objective' variable "
            "or 'variant' attribute); give the .nc that `spikedyn run tune --out` wrote, a "
            "tuned-set .toml or a shipped set's name")
    try:
        position = best_trial_position(dataset, where)
    except (ValueError, KeyError) as error:
        raise ConfigError(f"{error} in '{path}'") from None
    params = {}
    for name in dataset.data_vars:
        if name.startswith("param."):
            value = dataset[name].values[position]
            params[name[len("param."):]] = value.item() if hasattr(value, "item") else value
    return merge({"variant": dataset.attrs["variant"]}, _nested(params))


def best_so_far(objective_values):
    """Best objective reached up to each trial (NaN, failed trials, are skipped).

    Parameters
    ----------
    objective_values : array_like
        Objectives in trial order.

    Returns
    -------
    ndarray
        Same length; NaN until the first complete trial.
    """
    values = np.asarray(objective_values, dtype=float)
    filled = np.where(np.isfinite(values), values, -np.inf)
    best = np.maximum.accumulate(filled)
    return np.where(np.isfinite(best), best, np.nan)


def edge_report(dataset, variant=None):
    """Where the best trial's values lie in their ranges.

    Returns
    -------
    list of dict
        One per numeric dimension: ``key``, ``value``, ``to_low``, ``to_high``
        (decades on a log scale, fractions of the range on a linear one),
        ``near`` (``'low'``, ``'high'`` or ``''``: within `EDGE_MARGIN`) and
        ``limit`` (why that edge is physical, or ``''`` when it is arbitrary
        and the range should be widened).
    """
    variant = variant or dataset.attrs["variant"]
    position = best_trial_position(dataset)
    rows = []
    for dimension in SEARCH_SPACES[variant]:
        if dimension.choices:
            continue
        value = float(dataset[f"param.{dimension.key}"].values[position])
        to_low, to_high = dimension.distance_to_edges(value)
        margin = EDGE_MARGIN["log" if dimension.log else "linear"]
        near = "low" if to_low < margin else ("high" if to_high < margin else "")
        limit = {"low": dimension.low_limit, "high": dimension.high_limit, "": ""}[near]
        rows.append({"key": dimension.key, "value": value, "to_low": to_low,
                     "to_high": to_high, "near": near, "limit": limit})
    return rows


# --------------------------------------------------------------------------
# Shipped tuned sets
# --------------------------------------------------------------------------

#: The committed tuned networks: ``<family>_N<size>.toml`` (`write_tuned_set`).
TUNED_DIRECTORY = parameter_sets.TUNED_DIRECTORY


def tuned_set_path(name, n_neurons=None):
    """The shipped tuned set a name selects (`spikedyn_brian.parameter_sets.tuned_set_path`).

    Raises
    ------
    ConfigError
        If no such set is shipped (naming those that are).
    """
    path = parameter_sets.tuned_set_path(name, n_neurons, TUNED_DIRECTORY)
    if not path.is_file():
        shipped = parameter_sets.shipped_sets(TUNED_DIRECTORY)
        raise ConfigError(
            f"no shipped tuned set {path.stem.split('_N')[0]!r} for N = "
            f"{path.stem.split('_N')[1]}; shipped: {', '.join(shipped) or 'none'} (or give a "
            "trial table .nc or a tuned-set .toml)")
    return path


def tuned_overrides(source, where=None, n_neurons=None):
    """``[network]`` overrides of a tuned network.

    Parameters
    ----------
    source : str or Path
        A trial table of `run` (``.nc``: its best trial, among those matching
        ``where``), a tuned-set TOML file (its ``[network]`` table), or the
        name of a shipped set (`tuned_set_path`).
    """
    from spikedyn_brian.config import read_mapping

    text = str(source)
    if text.endswith(".nc"):
        return best_overrides(text, where=where)
    path = Path(text) if text.endswith(".toml") else tuned_set_path(text, n_neurons)
    network = read_mapping(path).get("network")
    if not isinstance(network, dict):
        raise ConfigError(f"tuned set '{path}' has no [network] table")
    return network


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(float(value)) if isinstance(value, float) else str(value)


def _without_local_paths(text):
    """The study's configuration as JSON text, its data folder named by its last part
    (a shipped file names no folder of the machine that tuned it)."""
    try:
        config = json.loads(text)
    except (TypeError, ValueError):
        return text
    stream = config.get("stream", {})
    if isinstance(stream, dict) and stream.get("data_dir"):
        stream["data_dir"] = Path(stream["data_dir"]).name
    return json.dumps(config)


def write_tuned_set(table_path, output_path):
    """Write the best trial of a trial table as a tuned-set TOML file.

    The file holds the ``[network]`` overrides of the best trial, with the
    trial, its objective (per seed), the data split, the study's base
    configuration and the commit in comments.
    """
    dataset = read_dataset(table_path)
    position = best_trial_position(dataset)
    overrides = best_overrides(table_path)
    base = json.loads(dataset.attrs["base_config"])
    n_neurons = base.get("network", {}).get("n_neurons", "the protocol's default")
    per_seed = ", ".join(f"{seed}: {value:.4f}" for seed, value in zip(
        dataset.seed.values, dataset.objective_per_seed.values[position]))
    lines = [
        f"# Tuned {dataset.attrs['variant']} network, N = {n_neurons}: best trial "
        f"{int(dataset.trial.values[position])} of {int(dataset.sizes['trial'])} "
        f"(budget {dataset.attrs['budget_trials']}).",
        f"# Objective {float(dataset.objective.values[position]):.4f}: "
        f"{dataset.attrs['objective']}, mean over stream seeds ({per_seed}).",
        "# Data: training digits outside the fixed validation split of full MNIST; no test "
        "digit seen.",
        f"# Study base configuration: {_without_local_paths(dataset.attrs['base_config'])}",
        f"# Code: commit {dataset.attrs.get('code_version', 'unknown')}; written by "
        "spikedyn_brian.protocols.tuning.write_tuned_set from the trial table.",
        "",
        "[network]",
        f"variant = {_toml_value(overrides.pop('variant'))}",
    ]
    for table, values in sorted(overrides.items()):
        lines += ["", f"[network.{table}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(values.items())]
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    Path(output_path).write_text("\n".join(lines) + "\n")
    return Path(output_path)


def main(argv=None):
    """``python -m spikedyn_brian.protocols.tuning ship TRIALS.nc OUT.toml``."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "ship":
        print("usage: python -m spikedyn_brian.protocols.tuning ship TRIALS.nc OUT.toml",
              file=sys.stderr)
        return 2
    print(f"wrote {write_tuned_set(argv[1], argv[2])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

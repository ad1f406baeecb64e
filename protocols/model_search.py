"""Constrained model search: the most accurate network inside a memory and energy budget.

Methods, in order:

1. **Candidates**: every (variant, size, weight precision) of the plan.
2. **Analytical filter**: memory (``analysis.memory``) and energy per sample
   (``analysis.energy``, from calibrated activity rates) of every candidate;
   those over ``max_memory_kb`` or ``max_energy_joules_per_sample`` (applied
   to the ``energy_constraint`` phase) are dropped. If none is left,
   `ConfigError` names the tightest constraint and the smallest candidate.
3. **Evaluation** of each survivor and seed, as an independent task on Dask
   (a LocalCluster with one single-threaded worker process per core, or an
   existing scheduler), each in its own build directory: train on a short
   stream (learning on, full precision), quantise the weights to the
   candidate's precision (``analysis.memory.quantise_weights``), label the
   neurons on the training digits and test, learning off. The energy per
   sample is recomputed from the runs' spike counts, and the CPU/GPU energy
   counters are read around each compiled run where they exist
   (``spikedyn_brian.power``). A worker that dies loses only its task, which
   Dask retries; per-task files let a re-run skip finished tasks.
4. **Front and selection**: the Pareto front over (accuracy ↑, training
   energy ↓, memory ↓) among the evaluated candidates that satisfy the
   constraints with their measured spike counts, and the selected model by
   ``analysis.pareto.SELECTION_RULE``. One Dataset over ``candidate``
   (netCDF) and a figure of the front (PNG and SVG) are written.

Run it with ``spikedyn run model-search`` or ``python -m
spikedyn_brian.protocols.model_search [CONFIG.toml]``.
"""

import itertools
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import xarray

from spikedyn_brian.analysis import energy
from spikedyn_brian.analysis.memory import quantise_weights
from spikedyn_brian.analysis.pareto import SELECTION_RULE, pareto_front, select_model
from spikedyn_brian.analysis.storage import read_dataset, write_dataset
from spikedyn_brian.cluster import dask_client, import_brian2_in_worker
from spikedyn_brian.config import (
    EVALUATION_SPLITS,
    from_mapping,
    network_from_mapping,
    read_mapping,
)
from spikedyn_brian.config.bounds import check_device
from spikedyn_brian.devices.registry import DEFAULT_DEVICE
from spikedyn_brian.errors import ConfigError

__all__ = ["DEFAULT_CONFIG", "SearchPlan", "Candidate", "load_plan", "candidates",
           "analytical_table", "run"]

#: The protocol's default configuration file.
DEFAULT_CONFIG = Path(__file__).with_name("model_search.toml")

#: Variants a search may contain.
SEARCH_VARIANTS = ("diehl-cook", "spikedyn")


@dataclass
class SearchSection:
    """Candidates and constraints."""

    variants: list[str] = field(default_factory=lambda: list(SEARCH_VARIANTS))
    sizes: list[int] = field(default_factory=lambda: [100, 400])
    weight_bits: list[int] = field(default_factory=lambda: [8, 32])
    seeds: list[int] = field(default_factory=lambda: [0])
    #: Most memory of the memory model, in kB (1 kB = 1000 bytes); 0: none.
    max_memory_kb: float = 0.0
    #: Most energy per sample, in joules; 0: none.
    max_energy_joules_per_sample: float = 0.0
    #: Phase the energy limit applies to: 'train' or 'inference'.
    energy_constraint: str = "train"


@dataclass
class SearchStream:
    """The short stream each candidate is trained and tested on."""

    train_samples: int = 1000
    #: Training digits presented with learning off to label neurons (0: all).
    assignment_samples: int = 0
    test_samples: int = 500
    data_dir: str = ""
    #: Evaluation split of the selection: 'validation' (default; candidates
    #: train outside the fixed validation split) or 'test' (a final report of
    #: an already chosen model). Selecting on test digits is tuning on them.
    evaluation: str = "validation"


@dataclass
class SearchDevice:
    #: The device of every candidate's runs (its fallback where it cannot run one).
    name: str = DEFAULT_DEVICE
    #: The device's own options (``[device.options]``).
    options: dict = field(default_factory=dict)


@dataclass
class SearchOutput:
    path: str = "results/model_search.nc"
    #: Replace a results file that exists (otherwise the search refuses to start).
    overwrite: bool = False


@dataclass
class SearchDask:
    #: Address of an existing Dask scheduler; empty: a LocalCluster.
    scheduler: str = ""
    #: LocalCluster worker processes (0: one per core).
    workers: int = 0


@dataclass
class SearchPlan:
    """A whole model search (read from ``model_search.toml``)."""

    search: SearchSection = field(default_factory=SearchSection)
    stream: SearchStream = field(default_factory=SearchStream)
    device: SearchDevice = field(default_factory=SearchDevice)
    output: SearchOutput = field(default_factory=SearchOutput)
    dask: SearchDask = field(default_factory=SearchDask)

    @property
    def candidates_directory(self):
        output = Path(self.output.path)
        return output.with_name(f"{output.stem}_candidates")

    @property
    def builds_directory(self):
        output = Path(self.output.path)
        return output.with_name(f"{output.stem}_builds")


def _validate(plan):
    search, stream = plan.search, plan.stream
    for name, values in (("variants", search.variants), ("sizes", search.sizes),
                         ("weight_bits", search.weight_bits), ("seeds", search.seeds)):
        if not values:
            raise ConfigError(f"key 'search.{name}' must list at least one value")
        if len(set(values)) != len(values):
            raise ConfigError(f"key 'search.{name}' lists a value twice: {values!r}")
    unknown = [v for v in search.variants if v not in SEARCH_VARIANTS]
    if unknown:
        raise ConfigError(f"key 'search.variants' has {unknown[0]!r}; choose from "
                          f"{', '.join(SEARCH_VARIANTS)}")
    if any(n < 1 for n in search.sizes):
        raise ConfigError(f"key 'search.sizes' must hold positive integers, got {search.sizes!r}")
    if any(b < 1 or b > 64 for b in search.weight_bits):
        raise ConfigError(f"key 'search.weight_bits' must hold 1..64, got {search.weight_bits!r}")
    if stream.evaluation not in EVALUATION_SPLITS:
        raise ConfigError(f"key 'stream.evaluation' is {stream.evaluation!r}; choose one of "
                          f"{', '.join(EVALUATION_SPLITS)}")
    if search.energy_constraint not in energy.PHASES:
        raise ConfigError(f"key 'search.energy_constraint' is {search.energy_constraint!r}; "
                          f"choose one of {', '.join(energy.PHASES)}")
    for key in ("max_memory_kb", "max_energy_joules_per_sample"):
        if getattr(search, key) < 0:
            raise ConfigError(f"key 'search.{key}' must be >= 0 (0: no constraint)")
    for key in ("train_samples", "test_samples"):
        if getattr(stream, key) < 1:
            raise ConfigError(f"key 'stream.{key}' must be at least 1")
    check_device(plan.device)
    return plan


def load_plan(path=None, overrides=None):
    """Read a model-search TOML file (default: `DEFAULT_CONFIG`), apply overrides, validate."""
    mapping = read_mapping(path or DEFAULT_CONFIG, overrides)
    return _validate(from_mapping(SearchPlan, mapping))


@dataclass(frozen=True)
class Candidate:
    """One network of the search."""

    variant: str
    n_neurons: int
    weight_bits: int

    @property
    def name(self):
        return f"{self.variant}-N{self.n_neurons}-{self.weight_bits}bit"

    def parameters(self):
        """The candidate's validated network (the same route as every configuration)."""
        return network_from_mapping({"variant": self.variant, "n_neurons": self.n_neurons})


def candidates(plan):
    """Every (variant, size, weight bits) of the plan, in that nesting order."""
    search = plan.search
    return [Candidate(v, int(n), int(b)) for v, n, b in
            itertools.product(search.variants, search.sizes, search.weight_bits)]


def analytical_table(plan, table=energy.HOROWITZ_45NM):
    """Memory and rate-estimated energies of every candidate, and the constraint check.

    Returns
    -------
    xarray.Dataset
        Over dim ``candidate``: ``memory_bytes``,
        ``estimated_train_energy_joules_per_sample``,
        ``estimated_inference_energy_joules_per_sample``, ``satisfies_constraints``.
    """
    rows = candidates(plan)
    memory, train, inference = [], [], []
    for candidate in rows:
        footprint, train_estimate, inference_estimate = energy.analytical_profile(
            candidate.parameters(), weight_bits=candidate.weight_bits, table=table)
        memory.append(footprint.total_bytes)
        train.append(train_estimate.joules)
        inference.append(inference_estimate.joules)
    dataset = xarray.Dataset(
        {
            "memory_bytes": ("candidate", np.array(memory, dtype=np.int64),
                             {"long_name": "memory model (analysis.memory)", "units": "B"}),
            "estimated_train_energy_joules_per_sample": (
                "candidate", np.array(train),
                {"long_name": "training energy per sample from activity rates", "units": "J"}),
            "estimated_inference_energy_joules_per_sample": (
                "candidate", np.array(inference),
                {"long_name": "inference energy per sample from activity rates", "units": "J"}),
        },
        coords=_candidate_coords(rows),
    )
    dataset["satisfies_constraints"] = _within(
        plan, dataset.memory_bytes, dataset[f"estimated_{plan.search.energy_constraint}_energy"
                                            "_joules_per_sample"])
    return dataset


def _candidate_coords(rows):
    return {
        "candidate": [c.name for c in rows],
        "variant": ("candidate", [c.variant for c in rows]),
        "n_neurons": ("candidate", np.array([c.n_neurons for c in rows], dtype=np.int64)),
        "weight_bits": ("candidate", np.array([c.weight_bits for c in rows], dtype=np.int64)),
    }


def _within(plan, memory_bytes, energy_joules):
    search = plan.search
    ok = xarray.ones_like(memory_bytes, dtype=bool)
    if search.max_memory_kb > 0:
        ok = ok & (memory_bytes <= search.max_memory_kb * 1000)
    if search.max_energy_joules_per_sample > 0:
        ok = ok & (energy_joules <= search.max_energy_joules_per_sample)
    return ok.assign_attrs(long_name="within the memory and energy constraints")


def _no_survivor_message(plan, table):
    """Name the constraint that excludes most candidates and the smallest candidate."""
    search = plan.search
    phase = search.energy_constraint
    energy_name = f"estimated_{phase}_energy_joules_per_sample"
    total = table.sizes["candidate"]
    checks = []
    if search.max_memory_kb > 0:
        excluded = int((table.memory_bytes > search.max_memory_kb * 1000).sum())
        checks.append((excluded, f"memory ≤ {search.max_memory_kb:g} kB", "--max-memory-kb"))
    if search.max_energy_joules_per_sample > 0:
        excluded = int((table[energy_name] > search.max_energy_joules_per_sample).sum())
        checks.append((excluded, f"{'training' if phase == 'train' else 'inference'} energy ≤ "
                       f"{search.max_energy_joules_per_sample:.3g} J per sample", "--max-energy"))
    excluded, text, option = max(checks)
    smallest = table.isel(candidate=int(table.memory_bytes.argmin()))
    cheapest = table.isel(candidate=int(table[energy_name].argmin()))
    return (
        f"no candidate satisfies the constraints: the tightest, {text}, excludes "
        f"{excluded} of {total} candidates. The smallest candidate, "
        f"{smallest.candidate.item()}, needs {int(smallest.memory_bytes) / 1000:.1f} kB and "
        f"{float(smallest[energy_name]):.3g} J per {phase} sample; the most frugal, "
        f"{cheapest.candidate.item()}, {float(cheapest[energy_name]):.3g} J per {phase} sample. "
        f"Relax {option}, or add smaller sizes or fewer weight bits."
    )


@dataclass(frozen=True)
class CandidateTask:
    """One (candidate, seed) evaluation: everything a worker needs."""

    candidate: Candidate
    seed: int
    train_samples: int
    assignment_samples: int
    test_samples: int
    data_dir: str
    evaluation: str
    device: str
    build_directory: str
    result_path: str
    #: ``[device.options]`` as (key, value) pairs.
    device_options: tuple = ()


def _tasks(plan, survivors):
    tasks = []
    for candidate in survivors:
        for seed in plan.search.seeds:
            key = f"{candidate.name}_seed{seed}"
            tasks.append(CandidateTask(
                candidate, int(seed), plan.stream.train_samples, plan.stream.assignment_samples,
                plan.stream.test_samples, plan.stream.data_dir, plan.stream.evaluation,
                plan.device.name,
                str(plan.builds_directory / key), str(plan.candidates_directory / f"{key}.nc"),
                tuple(sorted(plan.device.options.items()))))
    return tasks


def evaluate_candidate(task):
    """Dask task: train, quantise, label and test one candidate; write its file, return the path.

    A finished file is not computed again.
    """
    import_brian2_in_worker()
    from spikedyn_brian.engine import engine_for
    from spikedyn_brian.phases import PhaseRunner
    from spikedyn_brian.power import EnergyMeter
    from spikedyn_brian.protocols import evaluation
    from spikedyn_brian.protocols.static_mnist import training_order
    from spikedyn_brian.seeds import RunSeeds
    from spikedyn_brian.state import StreamResult

    path = Path(task.result_path)
    if path.exists():
        return str(path)
    candidate = task.candidate
    parameters = candidate.parameters()
    train_set, test_set = evaluation.data_splits(task)
    seeds = RunSeeds(task.seed)
    order = training_order(len(train_set), task.train_samples, 1, seeds.stream_order)
    n_assign = min(task.assignment_samples or task.train_samples, task.train_samples)
    label_set = train_set.subset(np.sort(order)[:n_assign])
    if task.test_samples > len(test_set):
        raise ConfigError(f"key 'stream.test_samples' is {task.test_samples} but the "
                          f"{task.evaluation} split has only {len(test_set)} digits")
    test_set = test_set.subset(evaluation.fixed_subset(len(test_set), task.test_samples))
    engine, _ = engine_for(parameters, task.device, build_root=task.build_directory,
                           chunk_samples=max(task.train_samples, n_assign, task.test_samples),
                           options=dict(task.device_options))
    phases = PhaseRunner(engine, checkpoint=None, progress=False)
    try:
        engine.check()
        engine.build()
        with EnergyMeter() as meter:
            train = evaluation.train(phases, "train", train_set.images[order],
                                     engine.initial_state(seeds.weights), seeds)
        train_reading = meter.reading
        state = train.state.copy()
        state.weights = quantise_weights(state.weights, candidate.weight_bits,
                                         parameters.plasticity.w_max)
        with EnergyMeter() as meter:
            scores = evaluation.label_and_test(phases, "", state, label_set, test_set, seeds)
        inference_reading = meter.reading
    finally:
        engine.close()
    accuracies, assign, test = scores.accuracies, scores.label, scores.test
    inference = StreamResult.concatenate([assign, test])
    estimates = {
        "train": energy.energy_per_sample(
            parameters, energy.operation_counts_from_result(parameters, train, "train"),
            weight_bits=candidate.weight_bits),
        "inference": energy.energy_per_sample(
            parameters, energy.operation_counts_from_result(parameters, inference, "inference"),
            weight_bits=candidate.weight_bits),
    }
    n_train, n_inference = len(order), len(inference.presentations)

    def per_sample(value, n):
        return np.nan if value is None else value / n

    scalars = {
        "accuracy": (accuracies["all_activity"], f"{task.evaluation} accuracy (all-activity rule)",
                     "1"),
        "accuracy_proportion_weighting": (accuracies["proportion_weighting"],
                                          f"{task.evaluation} accuracy (proportion weighting)", "1"),
        "train_energy_joules_per_sample": (estimates["train"].joules,
                                           "training energy per sample from spike counts", "J"),
        "inference_energy_joules_per_sample": (
            estimates["inference"].joules, "inference energy per sample from spike counts", "J"),
        "measured_cpu_joules_per_train_sample": (
            per_sample(train_reading.cpu_joules, n_train),
            "CPU package energy per training sample (RAPL)", "J"),
        "measured_cpu_joules_per_inference_sample": (
            per_sample(inference_reading.cpu_joules, n_inference),
            "CPU package energy per inference sample (RAPL)", "J"),
        "train_seconds_per_sample": (train_reading.wall_seconds / n_train,
                                     "wall time per training sample (compiled runs)", "s"),
        "inference_seconds_per_sample": (inference_reading.wall_seconds / n_inference,
                                         "wall time per inference sample (compiled runs)", "s"),
        "train_slots_per_sample": (train.slots / n_train, "presentation slots per training "
                                   "sample", "1"),
        "train_excitatory_spikes_per_sample": (train.spikes_total / n_train,
                                               "excitatory spikes per training sample", "1"),
    }
    dataset = xarray.Dataset({name: ((), value, {"long_name": text, "units": units})
                              for name, (value, text, units) in scalars.items()})
    dataset.attrs = {
        "candidate": candidate.name, "variant": candidate.variant,
        "n_neurons": candidate.n_neurons, "weight_bits": candidate.weight_bits,
        "seed": task.seed, "device": engine.device_name, "build_directory": task.build_directory,
        "build_seconds": float(engine.build_seconds or 0.0),
        "cpu_energy_status": train_reading.cpu_status,
        "gpu_energy_status": train_reading.gpu_status,
        "worker_pid": os.getpid(),
    }
    write_dataset(dataset, path)
    return str(path)


def run(plan, progress=None, table=energy.HOROWITZ_45NM):
    """Run the search; write the Dataset and the front figure; return the Dataset.

    Raises
    ------
    ConfigError
        If no candidate satisfies the constraints (the message names the
        tightest constraint and the smallest candidate's figures), or the
        results file exists and ``output.overwrite`` is off, or another
        search is writing it (`~spikedyn_brian.phases.output_lock`).
    """
    from spikedyn_brian.phases import output_lock

    with output_lock(plan.output.path, plan.output.overwrite):
        return _run(plan, progress, table)


def _run(plan, progress, table):
    started = time.perf_counter()
    analytical = analytical_table(plan, table)
    rows = candidates(plan)
    survivors = [c for c, ok in zip(rows, analytical.satisfies_constraints.values) if ok]
    if not survivors:
        raise ConfigError(_no_survivor_message(plan, analytical))
    tasks = _tasks(plan, survivors)
    client, cluster = dask_client(plan.dask.scheduler, plan.dask.workers)
    try:
        futures = [client.submit(evaluate_candidate, task, key=f"candidate-{Path(task.result_path).stem}",
                                 retries=2, pure=False) for task in tasks]
        if progress is None:
            progress = sys.stdout.isatty()
        if progress:
            from dask.distributed import progress as dask_progress

            dask_progress(futures)
        paths = [future.result() for future in futures]
        workers = len(client.scheduler_info()["workers"])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    dataset = merge_results(plan, analytical, tasks, paths)
    dataset.attrs["search_seconds"] = time.perf_counter() - started
    dataset.attrs["dask_workers"] = workers
    write_dataset(dataset, plan.output.path)
    figure_paths = write_front_figure(dataset, plan.output.path)
    dataset.attrs["figures"] = [str(p) for p in figure_paths]
    return dataset


def merge_results(plan, analytical, tasks, paths):
    """One Dataset over ``candidate``: analytical figures, results, front and selection."""
    seeds = list(plan.search.seeds)
    names = list(analytical.candidate.values)
    per_candidate = {}
    for task, path in zip(tasks, paths):
        per_candidate.setdefault(task.candidate.name, {})[task.seed] = read_dataset(path)
    first = read_dataset(paths[0])
    variables = list(first.data_vars)
    dataset = analytical.copy()
    for name in variables:
        values = np.full((len(names), len(seeds)), np.nan)
        for row, candidate in enumerate(names):
            for column, seed in enumerate(seeds):
                run_dataset = per_candidate.get(candidate, {}).get(seed)
                if run_dataset is not None:
                    values[row, column] = float(run_dataset[name])
        dataset[f"{name}_per_seed"] = (("candidate", "seed"), values, first[name].attrs)
        dataset[name] = (("candidate",), _mean_or_nan(values),
                         dict(first[name].attrs, aggregate="mean over seeds"))
    dataset = dataset.assign_coords(seed=seeds)
    trained = np.isfinite(dataset.accuracy.values)
    dataset["trained"] = ("candidate", trained, {"long_name": "trained and tested in this search"})
    # Where a candidate was not trained, its energies are the rate estimates.
    for phase in energy.PHASES:
        name = f"{phase}_energy_joules_per_sample"
        dataset[name] = dataset[name].fillna(dataset[f"estimated_{name}"]).assign_attrs(
            long_name=f"{phase} energy per sample: from the run's spike counts where trained, "
                      "else from activity rates", units="J")
    feasible = trained & _within(plan, dataset.memory_bytes, dataset[
        f"{plan.search.energy_constraint}_energy_joules_per_sample"]).values
    front = pareto_front(dataset.accuracy.values, dataset.train_energy_joules_per_sample.values,
                         dataset.memory_bytes.values, eligible=feasible)
    dataset["feasible"] = ("candidate", feasible, {
        "long_name": "trained and within the constraints with its run's energy"})
    dataset["pareto"] = ("candidate", front, {
        "long_name": "Pareto-optimal over accuracy (max), training energy (min), memory (min)"})
    selected = select_model(dataset.accuracy.values, dataset.train_energy_joules_per_sample.values,
                            dataset.memory_bytes.values, front)
    rows = [read_dataset(p) for p in paths]
    statuses = sorted({r.attrs["cpu_energy_status"] for r in rows})
    dataset.attrs = {
        "title": "spikedyn-brian constrained model search",
        "protocol": "model-search",
        "selected": names[selected] if selected is not None else "",
        "selection_rule": SELECTION_RULE,
        "max_memory_kb": plan.search.max_memory_kb,
        "max_energy_joules_per_sample": plan.search.max_energy_joules_per_sample,
        "energy_constraint": plan.search.energy_constraint,
        "energy_table": energy.HOROWITZ_45NM.name,
        "energy_table_source": energy.HOROWITZ_45NM.source,
        "cpu_energy_status": "; ".join(statuses),
        "worker_pids": sorted({int(r.attrs["worker_pid"]) for r in rows}),
        "plan": asdict(plan),
        "candidate_files": [str(p) for p in paths],
    }
    return dataset


def _mean_or_nan(values):
    counts = np.isfinite(values).sum(axis=1)
    sums = np.where(np.isfinite(values), values, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def write_front_figure(dataset, output_path):
    """Draw the front (``<output stem>_pareto.png`` and ``.svg``); return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from spikedyn_brian.analysis.plots import plot_pareto_front

    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = figure.add_subplot()
    trained = dataset.trained.values
    plot_pareto_front(
        dataset.train_energy_joules_per_sample.values[trained],
        dataset.accuracy.values[trained],
        dataset.memory_bytes.values[trained],
        pareto=dataset.pareto.values[trained],
        labels=dataset.candidate.values[trained],
        selected=dataset.attrs["selected"] or None,
        ax=ax,
    )
    output = Path(output_path)
    paths = [output.with_name(f"{output.stem}_pareto.{suffix}") for suffix in ("png", "svg")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150)
    return paths


def main(argv=None):
    """``python -m spikedyn_brian.protocols.model_search [CONFIG.toml]``."""
    argv = sys.argv[1:] if argv is None else argv
    plan = load_plan(argv[0] if argv else None)
    dataset = run(plan)
    print(f"selected: {dataset.attrs['selected']}")
    print(f"results: {plan.output.path}")


if __name__ == "__main__":
    main()

"""Dynamic digits: class-incremental, unsupervised continual learning.

Methods, in order:

1. Tasks are consecutive groups of ``stream.classes_per_task`` classes of
   ``stream.task_order`` (default: ten tasks, digits 0, 1, …, 9). Each task
   has ``stream.samples_per_task`` training digits of its classes (seeded
   order); no digit of an earlier task is shown again, and no label is used
   for learning. With ``stream.control`` the same digits are shuffled across
   all tasks (a non-dynamic control with the same data).
2. After each task, with learning off and without resetting anything:
   *labelling* — ``stream.probe_per_class`` labelled training digits of every
   class seen so far (a fixed probe set) give each neuron the class of its
   highest mean response; classes not yet seen are never assigned, so their
   accuracy is 0 until they are learned. *Testing* — the first
   ``stream.test_per_class`` digits of every class seen so far in the
   evaluation split (the same digits for every seed), predicted with both
   rules. Digits of classes not yet seen are not presented: no neuron carries
   their label, so they are wrong by construction (stored as -1).
   ``stream.evaluation`` chooses the split: ``validation`` (tuning: training
   digits come from outside the fixed validation split) or ``test`` (final
   reports).
3. The accuracy matrix ``accuracy(after_task, on_task)`` and the metrics of
   :mod:`spikedyn_brian.analysis.continual` (recent-task and previous-task
   accuracy, forgetting, backward transfer, confusion matrices) go into one
   xarray Dataset, with the weights and thresholds after every task.

Every phase runs in the compiled engine and is checkpointed per chunk.
"""

import sys
import time
from pathlib import Path

import numpy as np
import xarray

from spikedyn_brian import provenance
from spikedyn_brian.analysis import continual, labelling
from spikedyn_brian.analysis.storage import write_dataset
from spikedyn_brian.config import (
    ConfigError,
    ContinualExperiment,
    load_experiment,
    task_sample_counts,
)
from spikedyn_brian.phases import protocol_run
from spikedyn_brian.protocols import evaluation
from spikedyn_brian.seeds import RunSeeds

__all__ = ["run", "task_classes", "training_streams", "DEFAULT_CONFIG"]

#: The protocol's default configuration file.
DEFAULT_CONFIG = Path(__file__).with_name("dynamic_digits.toml")


def task_classes(stream):
    """The classes of each task: a list of lists."""
    order, size = list(stream.task_order), stream.classes_per_task
    return [order[start:start + size] for start in range(0, len(order), size)]


def _class_order(labels, classes, rng):
    indices = np.flatnonzero(np.isin(labels, classes))
    return indices[rng.permutation(len(indices))]


def training_streams(labels, stream):
    """Indices of the training digits of each task, in presentation order.

    Class-incremental: task ``t`` shows only digits of its classes, chosen
    and ordered with the run's ``stream-order`` seed. With ``stream.control``
    the union of the same digits is shuffled and cut into segments of the
    same lengths.
    """
    rng = np.random.default_rng(RunSeeds(stream.seed).stream_order)
    tasks = task_classes(stream)
    counts = task_sample_counts(stream)
    key = "stream.samples_by_task" if stream.samples_by_task else "stream.samples_per_task"
    streams = []
    for classes, count in zip(tasks, counts):
        available = _class_order(labels, classes, rng)
        if count > len(available):
            raise ConfigError(
                f"key '{key}' asks for {count} digits of classes {classes} but the training "
                f"split has only {len(available)}; lower it or use full MNIST (--data-dir)"
            )
        streams.append(available[:count])
    if stream.control:
        shuffled = np.concatenate(streams)[rng.permutation(sum(len(s) for s in streams))]
        streams = np.split(shuffled, np.cumsum(counts)[:-1])
    return streams


def _padded(rows, fill=-1):
    """Rows of different lengths as one array, padded with ``fill``."""
    width = max(len(row) for row in rows)
    return np.stack([np.pad(np.asarray(row), (0, width - len(row)), constant_values=fill)
                     for row in rows])


def run(experiment, engine=None):
    """Run the dynamic-digits protocol; write and return the results Dataset."""
    stream, output = experiment.stream, experiment.output
    train_set, evaluation_set = evaluation.data_splits(stream)
    tasks = task_classes(stream)
    all_classes = [c for classes in tasks for c in classes]
    streams = training_streams(train_set.labels, stream)
    seeds = RunSeeds(stream.seed)
    try:
        probe_by_class = dict(zip(all_classes, evaluation.per_class_indices(
            train_set.labels, all_classes, stream.probe_per_class,
            np.random.default_rng(seeds.probe_choice), "key 'stream.probe_per_class'")))
        # Fixed evaluation digits: the first test_per_class of each class,
        # whatever the seed.
        test_by_class = dict(zip(all_classes, evaluation.per_class_indices(
            evaluation_set.labels, all_classes, stream.test_per_class,
            what="key 'stream.test_per_class'")))
    except ValueError as error:
        raise ConfigError(f"{error}; lower it or use full MNIST (--data-dir)") from None
    test_indices = np.concatenate([test_by_class[c] for c in all_classes])
    test_labels = evaluation_set.labels[test_indices]

    started = time.perf_counter()
    with protocol_run(experiment, train_set.source, "dynamic-digits", engine) as (engine, phases):
        state = engine.initial_state(seeds.weights)
        records = []
        for task, indices in enumerate(streams):
            # Only digits of the classes seen so far are labelled and tested: a
            # class not yet seen is assigned to no neuron, so its digits are
            # wrong by construction (stored as -1, no prediction).
            seen = [c for classes in tasks[: task + 1] for c in classes]
            probe_indices = np.concatenate([probe_by_class[c] for c in seen])
            tested = np.isin(test_labels, seen)
            label_set = train_set.subset(probe_indices)
            test_set = evaluation_set.subset(test_indices[tested])
            name = f"task {task + 1}/{len(tasks)}"
            # One progress bar for the task's training, labelling and test digits.
            with phases.one_bar(len(indices) + len(label_set) + len(test_set), name):
                result = evaluation.train(phases, f"train{task}", train_set.images[indices],
                                          state, seeds, description=f"{name}: train")
                state = result.state
                scores = evaluation.label_and_test(phases, str(task), state, label_set,
                                                   test_set, seeds, description=name)
            predictions = {}
            for rule, values in scores.predictions.items():
                predictions[rule] = np.full(len(test_indices), labelling.NO_PREDICTION)
                predictions[rule][tested] = values
            records.append(dict(train=result, test=scores.test,
                                assignments=scores.assignments, predictions=predictions,
                                state=state, tested=tested))
        dataset = _to_dataset(experiment, engine, tasks, streams, train_set, evaluation_set,
                              test_indices, test_labels, records, seeds,
                              time.perf_counter() - started)
        dataset.attrs["warnings"] = phases.warnings
        write_dataset(dataset, output.path)
        if phases.checkpoint is not None:
            phases.checkpoint.remove()
    return dataset


def _to_dataset(experiment, engine, tasks, streams, train_set, evaluation_set, test_indices,
                test_labels, records, seeds, total_seconds):
    network, stream = experiment.network, experiment.stream
    n_tasks = len(tasks)
    rules = list(labelling.PREDICTION_RULES)
    predictions = xarray.DataArray(
        np.array([[r["predictions"][rule] for r in records] for rule in rules]),
        dims=("rule", "after_task", "sample"),
        coords={"rule": rules, "after_task": np.arange(n_tasks)},
    )
    labels = xarray.DataArray(test_labels, dims=("sample",))
    by_rule = continual.accuracy_matrix(predictions, labels, tasks)
    summary = continual.summarise(by_rule.sel(rule=stream.prediction_rule, drop=True))
    summary["accuracy"].attrs["prediction_rule"] = stream.prediction_rule
    confusion = continual.confusion_matrices(
        predictions.sel(rule=stream.prediction_rule, drop=True), labels
    )
    train_seconds = sum(r["train"].simulation_seconds for r in records)
    n_train = sum(len(s) for s in streams)
    weights = np.stack([r["state"].weight_matrix(network.n_inputs) for r in records])
    data_vars = {
        "accuracy_by_rule": by_rule.assign_attrs(
            long_name="accuracy on each task after each task, per prediction rule", units="1"),
        "predictions": predictions.assign_attrs(long_name="predicted class (-1: no response)"),
        "test_labels": (("sample",), test_labels, {"long_name": "true test labels"}),
        "test_index": (("sample",), test_indices,
                       {"long_name": f"index in the {stream.evaluation} split"}),
        "tested": (("after_task", "sample"), np.stack([r["tested"] for r in records]),
                   {"long_name": "whether the digit was presented after this task "
                    "(digits of classes not yet seen are not: prediction -1)"}),
        "confusion": confusion.assign_attrs(long_name="confusion matrix after each task"),
        "assignments": (("after_task", "neuron"), np.stack([r["assignments"] for r in records]),
                        {"long_name": "class assigned to each neuron (-1: never fired)"}),
        "weights": (("after_task", "input", "neuron"), weights.astype(np.float32),
                    {"long_name": "input to excitatory weights after each task", "units": "1"}),
        "theta": (("after_task", "neuron"),
                  np.stack([r["state"].theta for r in records]) * 1e3,
                  {"long_name": "adaptive threshold after each task", "units": "mV"}),
        "task_classes": (("task_slot", "class_in_task"), np.array(tasks),
                         {"long_name": "classes of each task"}),
        "train_index": (("after_task", "position"), _padded(streams),
                        {"long_name": "training digit shown at each position of each task "
                                      "(-1: the task had fewer digits)"}),
        "train_labels": (("after_task", "position"),
                         _padded([train_set.labels[s] for s in streams]),
                         {"long_name": "labels of the training digits (not used for learning)"}),
        "train_presentations": (("after_task", "position"),
                                _padded([r["train"].presentations for r in records], 0),
                                {"long_name": "presentations of each training digit"}),
    }
    dataset = xarray.Dataset(data_vars, coords={
        "after_task": np.arange(n_tasks), "on_task": np.arange(n_tasks),
        "neuron": np.arange(network.n_neurons), "input": np.arange(network.n_inputs),
        "sample": np.arange(len(test_labels)), "rule": rules,
    })
    dataset = dataset.merge(summary)
    phase_names = [f"{kind}{task}" for task in range(n_tasks) for kind in ("train", "label", "test")]
    dataset.attrs = {
        "title": "spikedyn-brian dynamic digits protocol (class-incremental)",
        "protocol": "dynamic-digits",
        "network": network.variant,
        "n_neurons": network.n_neurons,
        "device": engine.device_name,
        "control": int(stream.control),
        "evaluation_split": stream.evaluation,
        "data_source": train_set.source,
        "config": experiment.to_json(),
        **provenance.attributes(seeds=seeds.as_dict(phase_names),
                                data={"train": train_set, "evaluation": evaluation_set}),
        "train_seconds_per_sample": train_seconds / n_train,
        "build_seconds": float(engine.build_seconds or 0.0),
        "total_seconds": float(total_seconds),
        "label_rule": (
            f"{stream.probe_per_class} labelled training digits per class seen so far, "
            "learning off; classes not yet seen are never assigned"
        ),
        "evaluation_rule": (
            f"the first {stream.test_per_class} digits of each class seen so far in the "
            f"{stream.evaluation} split, the same for every seed"
        ),
        "command": " ".join(sys.argv),
    }
    return dataset


def main(argv=None):
    """``python -m spikedyn_brian.protocols.dynamic_digits [CONFIG.toml]``."""
    argv = sys.argv[1:] if argv is None else argv
    experiment = load_experiment(argv[0] if argv else DEFAULT_CONFIG,
                                 experiment_class=ContinualExperiment)
    dataset = run(experiment)
    print(f"recent task accuracy: {float(dataset.recent_task_accuracy):.4f}")
    print(f"previous tasks accuracy: {float(dataset.previous_tasks_accuracy):.4f}")


if __name__ == "__main__":
    main()

"""Static MNIST: train without labels, assign neuron labels, test.

Methods, in order:

1. Take ``stream.train_samples`` training digits (a seeded shuffle of the
   training split) and present them ``stream.epochs`` times, each pass in a
   new seeded order, with learning on (STDP, adaptive threshold,
   normalisation before every presentation; SpikeDyn: its mechanisms).
2. Present ``stream.assignment_samples`` of those digits (0: all) with
   learning off; each excitatory neuron takes the class of its highest mean
   response (Diehl & Cook 2015).
3. Present ``stream.test_samples`` test digits with learning off; predict
   with the all-activity rule and with proportion weighting.

Every phase runs inside the compiled engine, one chunk of
``device.chunk_samples`` digits per run of the binary; a checkpoint after
each chunk lets an interrupted run resume where it stopped. The result is
one xarray Dataset written atomically to netCDF.

Run it with ``spikedyn run static-mnist`` or ``python -m
spikedyn_brian.protocols.static_mnist CONFIG.toml``.
"""

import sys
import time
from pathlib import Path

import numpy as np
import xarray

from spikedyn_brian import provenance
from spikedyn_brian.analysis import labelling
from spikedyn_brian.analysis.storage import write_dataset
from spikedyn_brian.config import ConfigError, load_experiment
from spikedyn_brian.phases import protocol_run
from spikedyn_brian.protocols import evaluation
from spikedyn_brian.seeds import RunSeeds
from spikedyn_brian.state import StreamResult

__all__ = ["run", "training_order", "DEFAULT_CONFIG"]

#: The protocol's default configuration file.
DEFAULT_CONFIG = Path(__file__).with_name("static_mnist.toml")

def training_order(n_available, train_samples, epochs, seed):
    """Indices of the training digits in presentation order.

    The first ``train_samples`` of a seeded permutation of the available
    digits are used; every epoch presents them in a new seeded order.
    Returns an int array of length ``train_samples * epochs``.
    """
    if train_samples > n_available:
        raise ConfigError(
            f"key 'stream.train_samples' is {train_samples} but the training split has only "
            f"{n_available} digits (of the selected classes); lower it or use full MNIST "
            "(--data-dir)"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(n_available)[:train_samples]
    return np.concatenate([chosen[rng.permutation(train_samples)] for _ in range(epochs)])


def run(experiment, engine=None):
    """Run the static MNIST protocol; write and return the results Dataset.

    Parameters
    ----------
    experiment : Experiment
    engine : Engine, optional
        An engine already built for ``experiment.network`` (reused, e.g. by
        benchmarks); by default one is built.
    """
    stream, output = experiment.stream, experiment.output
    train_set, test_set = evaluation.data_splits(stream)
    train_set = train_set.select_classes(stream.classes)
    test_set = test_set.select_classes(stream.classes)
    if stream.test_samples > len(test_set):
        raise ConfigError(
            f"key 'stream.test_samples' is {stream.test_samples} but the {stream.evaluation} "
            f"split has only {len(test_set)} digits (of the selected classes); lower it or "
            "use full MNIST (--data-dir)"
        )
    seeds = RunSeeds(stream.seed)
    order = training_order(len(train_set), stream.train_samples, stream.epochs,
                           seeds.stream_order)
    chosen = order[: stream.train_samples]
    n_assign = stream.assignment_samples or stream.train_samples
    n_assign = min(n_assign, stream.train_samples)
    assign_indices = np.sort(chosen)[:n_assign]
    # The same evaluation digits for every seed.
    test_indices = evaluation.fixed_subset(len(test_set), stream.test_samples)
    label_set, evaluation_set = train_set.subset(assign_indices), test_set.subset(test_indices)

    started = time.perf_counter()
    with protocol_run(experiment, train_set.source, "static-mnist", engine) as (engine, phases):
        state = engine.initial_state(seeds.weights)
        per_epoch = []
        train_parts = []
        for epoch in range(stream.epochs):
            epoch_order = order[epoch * stream.train_samples:(epoch + 1) * stream.train_samples]
            result = evaluation.train(phases, f"train{epoch}", train_set.images[epoch_order],
                                      state, seeds,
                                      description=f"train epoch {epoch + 1}/{stream.epochs}")
            train_parts.append(result)
            state = result.state
            last = epoch == stream.epochs - 1
            if stream.evaluate_each_epoch or last:
                scores = evaluation.label_and_test(phases, str(epoch), state, label_set,
                                                   evaluation_set, seeds)
                per_epoch.append((epoch, scores.accuracies))
        total_seconds = time.perf_counter() - started
        train = StreamResult.concatenate(train_parts)
        phase_names = [f"{kind}{epoch}" for epoch in range(stream.epochs)
                       for kind in ("train", "label", "test")]
        dataset = _to_dataset(
            experiment, engine, train, order, train_set, evaluation_set, scores,
            assign_indices, per_epoch, total_seconds, test_indices,
            provenance.attributes(seeds=seeds.as_dict(phase_names),
                                  data={"train": train_set, "evaluation": test_set},
                                  warnings=phases.warnings),
        )
        write_dataset(dataset, output.path)
        if phases.checkpoint is not None:
            phases.checkpoint.remove()
    return dataset


def _to_dataset(experiment, engine, train, order, train_set, evaluation_set, scores,
                assign_indices, per_epoch, total_seconds, test_indices, provenance_attrs):
    assign, test, test_labels = scores.label, scores.test, evaluation_set.labels
    assignments, proportions = scores.assignments, scores.proportions
    predictions, accuracies = scores.predictions, scores.accuracies
    network = experiment.network
    n_neurons, n_inputs = network.n_neurons, network.n_inputs
    rule = experiment.stream.prediction_rule
    rules = list(predictions)
    weights = train.state.weight_matrix(n_inputs)
    n_train = len(order)
    data_vars = {
        "accuracy": (
            (),
            accuracies[rule],
            {
                "long_name": "fraction of test digits classified correctly",
                "units": "1",
                "prediction_rule": rule,
                "rule_description": labelling.PREDICTION_RULES[rule],
            },
        ),
        "accuracy_by_rule": (
            ("rule",),
            np.array([accuracies[r] for r in rules]),
            {"long_name": "test accuracy of each prediction rule", "units": "1"},
        ),
        "weights": (
            ("input", "neuron"),
            weights,
            {"long_name": "input to excitatory weights after training", "units": "1"},
        ),
        "theta": (
            ("neuron",),
            train.state.theta * 1e3,
            {"long_name": "adaptive threshold after training", "units": "mV"},
        ),
        "assignments": (
            ("neuron",),
            assignments,
            {"long_name": "class assigned to each neuron (-1: never fired)", "units": "1"},
        ),
        "class_proportions": (
            ("neuron", "class"),
            proportions,
            {"long_name": "share of each neuron's mean response per class", "units": "1"},
        ),
        "test_spike_counts": (
            ("sample", "neuron"),
            test.spike_counts.astype(np.int32),
            {"long_name": "excitatory spikes during the accepted test presentation",
             "units": "1"},
        ),
        "test_labels": (("sample",), test_labels, {"long_name": "true test labels"}),
        "test_index": (
            ("sample",),
            test_indices,
            {"long_name": f"index of the digit in the (class-selected) "
                          f"{experiment.stream.evaluation} split"},
        ),
        "predictions": (
            ("rule", "sample"),
            np.stack([predictions[r] for r in rules]),
            {"long_name": "predicted class (-1: no response)"},
        ),
        "test_presentations": (
            ("sample",),
            test.presentations,
            {"long_name": "presentations of each test digit (1 + intensity boosts)"},
        ),
        "assignment_spike_counts": (
            ("assignment_sample", "neuron"),
            assign.spike_counts.astype(np.int32),
            {"long_name": "excitatory spikes to the labelling digits (learning off)"},
        ),
        "assignment_labels": (
            ("assignment_sample",),
            train_set.labels[assign_indices],
            {"long_name": "labels of the labelling digits"},
        ),
        "train_index": (
            ("train_position",),
            order,
            {"long_name": "index of the training digit shown at each stream position"},
        ),
        "train_labels": (
            ("train_position",),
            train_set.labels[order],
            {"long_name": "label of the training digit (not used for learning)"},
        ),
        "train_presentations": (
            ("train_position",),
            train.presentations,
            {"long_name": "presentations of each training digit (1 + intensity boosts)"},
        ),
        "train_response": (
            ("train_position",),
            train.spike_counts.sum(axis=1).astype(np.int32),
            {"long_name": "excitatory spikes to the accepted training presentation"},
        ),
    }
    coords = {
        "neuron": np.arange(n_neurons),
        "input": np.arange(n_inputs),
        "class": np.arange(10),
        "rule": rules,
        "sample": np.arange(len(test_labels)),
        "assignment_sample": assign_indices,
        "train_position": np.arange(n_train),
    }
    if per_epoch:
        data_vars["accuracy_after_epoch"] = (
            ("epoch", "rule"),
            np.array([[acc[r] for r in rules] for _, acc in per_epoch]),
            {"long_name": "test accuracy after each evaluated epoch", "units": "1"},
        )
        coords["epoch"] = np.array([e + 1 for e, _ in per_epoch])
    train_seconds = train.simulation_seconds
    attrs = {
        "title": "spikedyn-brian static MNIST protocol",
        "protocol": "static-mnist",
        "network": network.variant,
        "n_neurons": n_neurons,
        "device": engine.device_name,
        "data_source": train_set.source,
        "evaluation_split": experiment.stream.evaluation,
        "config": experiment.to_json(),
        **provenance_attrs,
        "train_seconds_per_sample": train_seconds / n_train,
        "test_seconds_per_sample": test.simulation_seconds / len(test_labels),
        "train_slots_per_sample": train.slots / n_train,
        "build_seconds": float(engine.build_seconds or 0.0),
        "train_input_spikes_per_sample": train.input_spikes_total / n_train,
        "train_excitatory_spikes_per_sample": train.spikes_total / n_train,
        "train_synaptic_events_per_sample": train.synaptic_events(network) / n_train,
        "total_seconds": float(total_seconds),
        "command": " ".join(sys.argv),
    }
    return xarray.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)


def main(argv=None):
    """``python -m spikedyn_brian.protocols.static_mnist [CONFIG.toml]``."""
    argv = sys.argv[1:] if argv is None else argv
    experiment = load_experiment(argv[0] if argv else DEFAULT_CONFIG)
    dataset = run(experiment)
    print(f"accuracy ({dataset.accuracy.attrs['prediction_rule']}): {float(dataset.accuracy):.4f}")
    print(f"results: {experiment.output.path}")


if __name__ == "__main__":
    main()

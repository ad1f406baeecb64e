"""The one train → label → test path of every protocol.

Every protocol (static MNIST, dynamic digits, model search, tuning) and every
benchmark evaluates a network the same way:

1. **train**: a stream of digits with learning on (`train`);
2. **label**: labelled digits with learning off; each excitatory neuron takes
   the class of its highest mean response (Diehl & Cook 2015);
3. **test**: evaluation digits with learning off, predicted with the
   all-activity rule and with proportion weighting (`label_and_test`).

Each phase is a named phase of a `~spikedyn_brian.phases.PhaseRunner`
(checkpointed, resumable), and its Poisson input spikes come from the seed
derived from the run's root seed and the phase name
(`spikedyn_brian.seeds.RunSeeds.inputs`): no seed of a phase is an offset of
another.
"""

from dataclasses import dataclass

import numpy as np

from spikedyn_brian.analysis import labelling
from spikedyn_brian.data import load_digits

__all__ = ["Evaluation", "train", "label_and_test", "per_class_indices", "data_splits",
           "fixed_subset", "EVALUATION_ORDER_SEED"]

#: Seed of the fixed order from which a protocol takes a subset of evaluation
#: digits (`fixed_subset`): a constant, never a run's seed, so that every run
#: is evaluated on the same digits.
EVALUATION_ORDER_SEED = 20150099


@dataclass
class Evaluation:
    """Labels and predictions of one evaluation.

    Attributes
    ----------
    label, test : StreamResult
        Responses to the labelling digits and to the evaluation digits.
    assignments : ndarray (n_neurons,)
        Class of each neuron (-1: never responded to a labelling digit).
    proportions : ndarray (n_neurons, n_classes)
    predictions : dict
        Rule → predicted class of each evaluation digit (-1: no response).
    accuracies : dict
        Rule → fraction of evaluation digits classified correctly.
    """

    label: object
    test: object
    assignments: np.ndarray
    proportions: np.ndarray
    predictions: dict
    accuracies: dict

    def __repr__(self):
        scores = ", ".join(f"{rule} {value:.4f}" for rule, value in self.accuracies.items())
        return (
            f"Evaluation({len(self.label.presentations)} labelling digits, "
            f"{len(self.test.presentations)} evaluation digits; {scores})"
        )


def train(phases, name, images, state, seeds, description=None):
    """Present ``images`` with learning on as phase ``name``; return its `StreamResult`."""
    return phases.run(name, images, state, plastic=True, seed=seeds.inputs(name),
                      description=description or name)


def label_and_test(phases, suffix, state, label_set, test_set, seeds, description=""):
    """Label the neurons with ``label_set``, then predict ``test_set`` (learning off).

    Parameters
    ----------
    phases : PhaseRunner
    suffix : str
        Phase names are ``label<suffix>`` and ``test<suffix>``.
    state : LearnedState
        The state to evaluate (not changed: learning is off).
    label_set, test_set : DigitSet
        Labelled digits that assign the neurons' classes, and evaluation digits.
    seeds : RunSeeds

    Returns
    -------
    Evaluation
    """
    prefix = f"{description}: " if description else ""
    label = phases.run(f"label{suffix}", label_set.images, state, plastic=False,
                       seed=seeds.inputs(f"label{suffix}"), description=f"{prefix}label")
    test = phases.run(f"test{suffix}", test_set.images, state, plastic=False,
                      seed=seeds.inputs(f"test{suffix}"), description=f"{prefix}test")
    assignments, proportions, predictions, accuracies = labelling.label_and_predict(
        label.spike_counts, label_set.labels, test.spike_counts, test_set.labels
    )
    return Evaluation(label, test, assignments, proportions, predictions, accuracies)


def per_class_indices(labels, classes, count, rng=None, what="digits"):
    """``count`` positions of each class of ``classes`` in ``labels``, class by class.

    Without ``rng`` the first ``count`` digits of each class (file order) are
    taken: a fixed choice, the same for every seed (evaluation digits). With a
    generator they are a seeded random choice, sorted (labelling probes).

    Raises
    ------
    ValueError
        When a class has fewer than ``count`` digits (the message names it).
    """
    chosen = []
    for digit in classes:
        positions = np.flatnonzero(labels == digit)
        if count > len(positions):
            raise ValueError(
                f"{what}: {count} per class asked for, but class {digit} has only "
                f"{len(positions)} digits in this split"
            )
        if rng is None:
            chosen.append(positions[:count])
        else:
            chosen.append(np.sort(positions[rng.permutation(len(positions))[:count]]))
    return chosen


def data_splits(stream):
    """(training pool, evaluation split) of a run: ``fit``/``validation`` or ``train``/``test``.

    Digits of the evaluation split are never trained on: tuning
    (``stream.evaluation = 'validation'``) trains on the training digits
    outside the fixed validation split; final reports train on the training
    split and evaluate on the test split.
    """
    data_dir = stream.data_dir or None
    if stream.evaluation == "validation":
        return load_digits("fit", data_dir), load_digits("validation", data_dir)
    return load_digits("train", data_dir), load_digits("test", data_dir)


def fixed_subset(n_available, count):
    """Sorted positions of ``count`` of ``n_available`` evaluation digits, the same in every run.

    All of them when ``count == n_available``; otherwise the first ``count`` of
    a permutation seeded with the constant `EVALUATION_ORDER_SEED` (the
    embedded splits are grouped by class, so the first ``count`` in file order
    would not cover every class).
    """
    if count >= n_available:
        return np.arange(n_available)
    order = np.random.default_rng(EVALUATION_ORDER_SEED).permutation(n_available)
    return np.sort(order[:count])

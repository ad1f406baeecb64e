"""Pareto front over (accuracy ↑, energy ↓, memory ↓) and the model selection rule.

Pure functions on numpy arrays (or anything :func:`numpy.asarray` accepts).
"""

import numpy as np

__all__ = ["pareto_front", "select_model", "SELECTION_RULE"]

#: The documented rule of `select_model`.
SELECTION_RULE = (
    "among the Pareto-optimal candidates that satisfy the constraints, the highest "
    "accuracy; ties go to the lower training energy per sample, then to the smaller memory"
)


def pareto_front(accuracy, energy, memory, eligible=None):
    """Which points no other point dominates.

    A point dominates another when its accuracy is at least as high, its
    energy and memory at most as high, and one of the three strictly better.
    Identical points do not dominate each other (both stay on the front).

    Parameters
    ----------
    accuracy, energy, memory : array_like, shape (n,)
    eligible : array_like of bool, optional
        Points that take part (e.g. those that satisfy the constraints and
        were evaluated); the others are never on the front and dominate nothing.
        NaN accuracy is never eligible.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    accuracy = np.asarray(accuracy, dtype=float)
    energy = np.asarray(energy, dtype=float)
    memory = np.asarray(memory, dtype=float)
    if not accuracy.shape == energy.shape == memory.shape or accuracy.ndim != 1:
        raise ValueError(
            "accuracy, energy and memory must be 1-D arrays of the same length; got shapes "
            f"{accuracy.shape}, {energy.shape}, {memory.shape}"
        )
    eligible = (np.ones(accuracy.shape, bool) if eligible is None
                else np.asarray(eligible, dtype=bool).copy())
    eligible &= np.isfinite(accuracy) & np.isfinite(energy) & np.isfinite(memory)
    front = eligible.copy()
    for i in np.flatnonzero(eligible):
        others = eligible.copy()
        others[i] = False
        at_least_as_good = (
            (accuracy >= accuracy[i]) & (energy <= energy[i]) & (memory <= memory[i]) & others
        )
        strictly_better = (accuracy > accuracy[i]) | (energy < energy[i]) | (memory < memory[i])
        if np.any(at_least_as_good & strictly_better):
            front[i] = False
    return front


def select_model(accuracy, energy, memory, pareto):
    """Index of the selected candidate by `SELECTION_RULE`, or None if the front is empty."""
    candidates = np.flatnonzero(np.asarray(pareto, dtype=bool))
    if candidates.size == 0:
        return None
    accuracy = np.asarray(accuracy, dtype=float)
    energy = np.asarray(energy, dtype=float)
    memory = np.asarray(memory, dtype=float)
    # np.lexsort sorts by the last key first.
    order = np.lexsort((memory[candidates], energy[candidates], -accuracy[candidates]))
    return int(candidates[order[0]])

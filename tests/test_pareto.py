"""Pareto front and model selection on hand-made points."""

import numpy as np
import pytest

from spikedyn_brian.analysis.pareto import pareto_front, select_model

#            A     B     C     D     E     F
ACCURACY = [0.90, 0.80, 0.85, 0.70, 0.90, 0.60]
ENERGY = [10.0, 5.0, 10.0, 4.0, 12.0, 4.0]
MEMORY = [100., 50.0, 100., 60.0, 100., 60.0]


def test_front_of_hand_made_points():
    # C is dominated by A (same energy and memory, lower accuracy); E by A (more
    # energy); F by D (lower accuracy, same cost). A, B, D trade off.
    front = pareto_front(ACCURACY, ENERGY, MEMORY)
    assert front.tolist() == [True, True, False, True, False, False]


def test_identical_points_both_stay():
    front = pareto_front([0.5, 0.5], [1.0, 1.0], [2.0, 2.0])
    assert front.tolist() == [True, True]


def test_ineligible_points_neither_count_nor_dominate():
    eligible = [False, True, True, True, True, True]
    # Without A, neither C nor E is dominated (E: more accurate, C: cheaper).
    front = pareto_front(ACCURACY, ENERGY, MEMORY, eligible=eligible)
    assert front.tolist() == [False, True, True, True, True, False]
    nan_accuracy = np.array(ACCURACY)
    nan_accuracy[1] = np.nan
    assert not pareto_front(nan_accuracy, ENERGY, MEMORY)[1]


def test_selection_rule_and_ties():
    front = pareto_front(ACCURACY, ENERGY, MEMORY)
    assert select_model(ACCURACY, ENERGY, MEMORY, front) == 0
    # A tie in accuracy goes to the lower energy, then to the smaller memory.
    accuracy, energy, memory = [0.9, 0.9, 0.9], [2.0, 1.0, 1.0], [1.0, 3.0, 2.0]
    assert select_model(accuracy, energy, memory, [True, True, True]) == 2
    assert select_model(accuracy, energy, memory, [False, False, False]) is None


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same length"):
        pareto_front([1.0, 2.0], [1.0], [1.0, 2.0])

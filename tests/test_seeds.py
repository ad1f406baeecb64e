"""Tests for spikedyn_brian.seeds: named seeds from one SeedSequence."""

import subprocess
import sys

import numpy as np
import pytest

from spikedyn_brian.seeds import MAXIMUM_SEED, RunSeeds, chunk_seed, derive


def test_same_name_same_seed_other_name_other_seed():
    assert derive(3, "inputs", "train0") == derive(3, "inputs", "train0")
    seeds = {derive(3, "inputs", f"train{k}") for k in range(50)}
    seeds |= {derive(3, "weights"), derive(4, "weights"), derive(3, "stream-order")}
    assert len(seeds) == 53
    assert all(0 <= s <= MAXIMUM_SEED for s in seeds)


def test_seeds_are_no_arithmetic_offsets_of_each_other():
    # The old scheme gave seed*1000 + 500 and seed*1000 + 700: neighbours.
    a, b = derive(1, "inputs", "label0"), derive(1, "inputs", "test0")
    c, d = derive(2, "inputs", "label0"), derive(2, "inputs", "test0")
    assert len({b - a, d - c}) == 2


def test_derived_seeds_are_stable_across_processes():
    code = "from spikedyn_brian.seeds import derive; print(derive(7, 'inputs', 'test3'))"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert int(printed) == derive(7, "inputs", "test3")


def test_run_seeds_names_and_chunks():
    seeds = RunSeeds(5)
    assert seeds.weights == derive(5, "weights")
    assert seeds.inputs("train2") == derive(5, "inputs", "train2")
    named = seeds.as_dict(["train0"])
    assert named["root"] == 5 and named["inputs.train0"] == seeds.inputs("train0")
    assert chunk_seed(seeds.inputs("train0"), 0) != chunk_seed(seeds.inputs("train0"), 1000)
    assert "RunSeeds(root=5)" == repr(seeds)


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_bad_seed_components_are_refused(bad):
    with pytest.raises((TypeError, ValueError), match="seed name components"):
        derive(0, bad)


def test_numpy_integers_are_accepted():
    assert derive(np.int64(3), np.int32(2)) == derive(3, 2)

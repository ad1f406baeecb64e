"""The genn device, checked in its own environment (``make genn-venv``).

brian2genn 1.7 needs brian2 < 2.6, so these tests run the package in
``.venv-genn`` through a subprocess and are skipped, with the reason, when
that environment is missing. End-to-end runs (marker ``genn``) also need
GeNN (``GENN_PATH``).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from spikedyn_brian import devices

REPOSITORY = Path(__file__).resolve().parent.parent
GENN_PYTHON = REPOSITORY / ".venv-genn" / "bin" / "python"
needs_genn_environment = pytest.mark.skipif(
    not GENN_PYTHON.exists(),
    reason="no genn environment (.venv-genn): `make genn-venv` needs Python 3.11",
)


def _run_in_genn_environment(arguments, tmp_path):
    environment = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [str(GENN_PYTHON), *arguments], capture_output=True, text=True, cwd=tmp_path,
        env=environment, timeout=600,
    )


@needs_genn_environment
def test_genn_environment_has_brian2_2_5_and_brian2genn(tmp_path):
    result = _run_in_genn_environment(
        ["-c", "import brian2, brian2genn, numpy, json; print(json.dumps("
               "[brian2.__version__, brian2genn.__version__, numpy.__version__]))"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    brian2_version, brian2genn_version, numpy_version = json.loads(result.stdout)
    assert brian2_version.startswith("2.5.")
    assert brian2genn_version.startswith("1.7")
    assert int(numpy_version.split(".")[0]) < 2


@needs_genn_environment
def test_genn_formulation_learns_on_brian2_2_5(tmp_path):
    """The package code of the genn path runs on brian2 2.5: the GeNN
    formulation of SpikeDyn (runtime device) answers, boosts and normalises."""
    script = """
import json, numpy as np
from spikedyn_brian.data import load_embedded
from spikedyn_brian.engine import Engine
from spikedyn_brian.models.parameters import network_parameters
images = load_embedded("train").images[:3]
engine = Engine(network_parameters("spikedyn", 8), device="runtime", formulation="genn")
result = engine.run_stream(images, engine.initial_state(1), plastic=True, seed=4)
print(json.dumps({"counts": result.spike_counts.sum(axis=1).tolist(),
                  "sums": result.state.weight_matrix(784).sum(axis=0).tolist()}))
"""
    result = _run_in_genn_environment(["-c", script], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert min(values["counts"]) >= 1
    # Normalised before each presentation, then learning moves the sums a little.
    assert all(abs(total - 78.0) < 5.0 for total in values["sums"])


@needs_genn_environment
def test_genn_codegen_names_what_cannot_be_expressed(tmp_path):
    """Before anything is built: a clear error naming the feature and the alternative."""
    result = _run_in_genn_environment(
        ["-m", "spikedyn_brian.cli", "codegen", "--device", "genn", "--network",
         "diehl-cook", "--neurons", "20", "--stream-samples", "5", "--out", "project"],
        tmp_path,
    )
    if devices.GENN_STDP_FORMULATION_READY:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "project").exists()
    else:
        assert result.returncode == 2
        assert "on_post" in result.stderr and "--device cuda" in result.stderr
        assert not (tmp_path / "project").exists()


@pytest.mark.genn
def test_genn_end_to_end_matches_cpp_standalone():
    """GeNN (CPU backend) against cpp_standalone on the same seed and data."""
    if devices.genn_path() is None:
        pytest.skip("GeNN is not set up (GENN_PATH)")
    if not GENN_PYTHON.exists():
        pytest.skip("no genn environment (.venv-genn)")
    if not devices.GENN_STDP_FORMULATION_READY:
        pytest.skip("the GeNN formulation of the STDP rule is not written yet "
                    "(brian2genn refuses postsynaptic variables in on_post)")

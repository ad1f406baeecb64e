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
    if devices.GENN_SLOT_OPERATIONS_READY:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "project").exists()
    else:
        assert result.returncode == 2
        assert "run_regularly" in result.stderr and "--device cuda" in result.stderr
        assert not (tmp_path / "project").exists()


def _learning_codes(model_source, synapses="input_synapses"):
    """GeNN's sim (on_pre) and learn-post (on_post) code of ``synapses``."""
    import re

    start = model_source.index(f"class {synapses}WEIGHTUPDATE")
    block = model_source[start:model_source.index("IMPLEMENT_MODEL", start)]
    codes = {}
    for name in ("SIM_CODE", "LEARN_POST_CODE"):
        match = re.search(rf'SET_{name}\("(.*?)"\);', block, re.S)
        codes[name] = match.group(1).replace("\\n\\\n", "\n") if match else ""
    return codes


@needs_genn_environment
@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn", "asp"])
def test_brian2genn_accepts_the_synaptic_stdp_rule(tmp_path, variant):
    """brian2genn generates the GeNN model of the STDP rule (it refuses a rule
    that reads postsynaptic variables in on_post): traces, learning flag and
    rate factor are synaptic, and on_post reads post2 before it resets it."""
    script = f"""
from spikedyn_brian import devices
from spikedyn_brian.engine import generate_project
from spikedyn_brian.models.parameters import network_parameters
devices.GENN_SLOT_OPERATIONS_READY = True  # code generation only, nothing compiled
generate_project(network_parameters({variant!r}, 20), "genn", "project", stream_capacity=5)
"""
    result = _run_in_genn_environment(["-c", script], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    codes = _learning_codes((tmp_path / "project" / "magicnetwork_model.cpp").read_text())
    on_pre, on_post = codes["SIM_CODE"], codes["LEARN_POST_CODE"]
    assert "$(addToInSyn,$(w))" in on_pre and "$(pre_trace) = 1;" in on_pre
    assert "$(learning_on)" in on_post
    # Event-driven: decayed to the spike time, t - lastupdate.
    assert "exp(1.0f*(- (t - $(lastupdate)))/$(tau_pre))" in on_post
    if variant == "spikedyn":
        assert "$(rate_factor)" in on_post and "$(x_target)" in on_post
        assert "post2_trace" not in on_post
    else:
        rule = on_post.index("$(w) = _clip(")
        assert "$(post2_trace)" in on_post[rule:on_post.index(";", rule)]
        assert rule < on_post.index("$(post2_trace) = 1;")  # post2 before its reset
        assert "$(post1_trace)" in on_pre
    if variant == "asp":
        assert "$(significance)" in on_post


@pytest.mark.genn
def test_genn_end_to_end_matches_cpp_standalone():
    """GeNN (CPU backend) against cpp_standalone on the same seed and data."""
    if devices.genn_path() is None:
        pytest.skip("GeNN is not set up (GENN_PATH)")
    if not GENN_PYTHON.exists():
        pytest.skip("no genn environment (.venv-genn)")
    if not devices.GENN_SLOT_OPERATIONS_READY:
        pytest.skip("brian2genn cannot compile the per-slot operations yet "
                    "(devices.check_formulation)")

"""Interruption end to end (slow): SIGKILL, resume, identical results, nothing left behind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "kill_resume.py"


@pytest.mark.slow
@pytest.mark.standalone
@pytest.mark.parametrize("protocol", ["static-mnist", "dynamic-digits"])
def test_sigkill_and_resume_gives_identical_results(protocol, tmp_path):
    """Two SIGKILLs at random moments: no orphan program, the resumed results
    equal an uninterrupted run's, no run file, lock or temporary left."""
    run = subprocess.run([sys.executable, str(BENCHMARK), "--protocol", protocol, "--kills", "2",
                          "--seed", "3", "--work", str(tmp_path)],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "results identical to the uninterrupted run, no orphan" in run.stdout


@pytest.mark.slow
@pytest.mark.standalone
def test_full_mnist_static_run(tmp_path):
    """A short static run on the full MNIST files, where they are (SPIKEDYN_MNIST_DIR)."""
    directory = os.environ.get("SPIKEDYN_MNIST_DIR")
    if not directory:
        pytest.skip("set SPIKEDYN_MNIST_DIR to a directory with the four MNIST IDX files")
    from spikedyn_brian.config import load_experiment
    from spikedyn_brian.protocols import static_mnist

    experiment = load_experiment(static_mnist.DEFAULT_CONFIG, {
        "network": {"n_neurons": 50},
        "stream": {"train_samples": 600, "test_samples": 500, "assignment_samples": 300,
                   "data_dir": directory},
        "device": {"name": "cpp_dense", "build_dir": str(tmp_path / "builds")},
        "output": {"path": str(tmp_path / "full.nc"), "progress": False},
    })
    dataset = static_mnist.run(experiment)
    assert "MNIST IDX" in dataset.attrs["data_source"]
    assert float(dataset.accuracy) > 0.3  # far above chance after 600 digits

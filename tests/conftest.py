"""Shared fixtures: the same model tests run on every device they apply to.

Markers (``setup.cfg``): ``standalone`` (compiles C++), ``cluster`` (starts a
Dask LocalCluster), ``genn_env`` (runs in the GeNN environment, ``make
genn-venv``), ``slow`` (long end-to-end runs), ``genn`` / ``cuda`` (GPU
devices, skipped without them). ``make test-fast`` leaves out the first
three and ``slow``; a test that compiles or starts a cluster without its
marker fails here, so the quick lane stays quick.
"""

import os

import brian2
import pytest
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

from spikedyn_brian import cluster
from spikedyn_brian.engine import COMPILER_FLAGS

DEVICE_PARAMS = [
    "runtime",
    pytest.param("cpp_standalone", marks=pytest.mark.standalone),
    pytest.param("cpp_dense", marks=pytest.mark.standalone),
]


@pytest.fixture(scope="session")
def build_root(tmp_path_factory):
    """One build root for the whole session: identical configurations compile once."""
    root = os.environ.get("SPIKEDYN_TEST_BUILD_DIR")
    if root:
        return root
    return str(tmp_path_factory.mktemp("builds"))


@pytest.fixture(params=DEVICE_PARAMS)
def device_name(request):
    """Each test using this fixture runs on the runtime and both C++ standalone devices."""
    return request.param


@pytest.fixture
def brian_device(device_name, tmp_path):
    """Activate ``device_name`` for a plain Brian2 script; reset afterwards.

    Yields a ``run(duration)`` function that runs (and, in standalone,
    builds) the network of the magic ``run``.
    """
    brian2.device.reinit()
    brian2.device.activate()
    if device_name != "runtime":
        import spikedyn_brian.devices.dense  # noqa: F401  (registers cpp_dense)

        brian2.set_device(device_name, directory=str(tmp_path / "standalone"), build_on_run=True)
        brian2.prefs.codegen.cpp.extra_compile_args_gcc = list(COMPILER_FLAGS)
    else:
        brian2.set_device("runtime")
        brian2.prefs.codegen.target = "numpy"
    yield device_name
    brian2.device.reinit()
    # The magic network keeps the clocks of its last run (and so their names):
    # a later Engine build in this process would get suffixed clock names,
    # other code than a fresh process, and a rebuild of a shared build.
    from brian2.core.magic import magic_network

    magic_network._clocks = set()
    magic_network._clock_variables = {}
    brian2.device.activate()
    brian2.set_device("runtime")


@pytest.fixture(autouse=True)
def _marked_costs(request, monkeypatch):
    """A test compiles only with marker ``standalone``, starts a cluster only with ``cluster``."""
    markers = {marker.name for marker in request.node.iter_markers()}
    if "standalone" not in markers:
        def compile_source(*args, **kwargs):
            pytest.fail(f"{request.node.nodeid} compiles C++: mark it "
                        "@pytest.mark.standalone (make test-fast leaves those out)")

        monkeypatch.setattr(CPPStandaloneDevice, "compile_source", compile_source)
    if "cluster" not in markers:
        def local_cluster(*args, **kwargs):
            pytest.fail(f"{request.node.nodeid} starts a Dask cluster: mark it "
                        "@pytest.mark.cluster (make test-fast leaves those out)")

        monkeypatch.setattr(cluster, "local_cluster", local_cluster)


@pytest.fixture
def default_experiment():
    """What a configuration without keys gives: the dataclass defaults, with the
    network of the shipped Diehl & Cook set (protocols/tuned/) over the published
    constants, read from the shipped file itself."""
    import dataclasses

    from spikedyn_brian.config import Experiment, experiment_from_mapping, merge
    from spikedyn_brian.protocols.tuning import tuned_overrides

    network = experiment_from_mapping(
        {"network": merge(tuned_overrides("diehl-cook"), {"parameter_set": "published"})},
        check_files=False).network
    return dataclasses.replace(Experiment(), network=network)

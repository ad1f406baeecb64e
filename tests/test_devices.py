"""GPU devices: generated projects (no compiling), device errors, the GeNN formulation.

Code generation for ``cuda`` needs brian2cuda (``pip install -e .[cuda]``, part
of ``make test``'s environment) but no GPU and no nvcc; the generated code is
read and checked for the models' equations and parameter values. End-to-end
runs need a GPU (``cuda``) or GeNN (``genn``) and are in `test_genn.py` and
the ``cuda``-marked tests below.
"""

import importlib.util
import re
import shutil
from pathlib import Path

import brian2
import numpy as np
import pytest

from spikedyn_brian import devices
from spikedyn_brian.cli import main
from spikedyn_brian.data import load_embedded
from spikedyn_brian.engine import Engine, generate_project
from spikedyn_brian.models.parameters import network_parameters

HAS_BRIAN2CUDA = importlib.util.find_spec("brian2cuda") is not None
needs_brian2cuda = pytest.mark.skipif(
    not HAS_BRIAN2CUDA, reason="brian2cuda is not installed (pip install -e '.[cuda]')"
)


def _sources(directory, suffix):
    """All generated source text of a project, one string per file name."""
    files = list(Path(directory).glob(f"*{suffix}")) + list(
        (Path(directory) / "code_objects").glob(f"*{suffix}")
    )
    return {path.name: path.read_text() for path in files}


def _constant(text, name):
    """Value of ``const double name = value;`` in generated code."""
    match = re.search(rf"const\s+(?:double|float)\s+{name}\s*=\s*([-+ 0-9.eE]+)\s*;", text)
    assert match, f"constant {name} not found"
    return float(match.group(1).replace(" ", ""))


def _code_object(sources, name, suffix):
    matches = [text for file, text in sources.items() if file == f"{name}{suffix}"]
    assert matches, f"{name}{suffix} not generated; have {sorted(sources)[:5]}…"
    return matches[0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Projects generated once per (device, network) for the checks below."""
    projects = {}

    def project(device, variant):
        if (device, variant) not in projects:
            directory = tmp_path_factory.mktemp(f"{device}-{variant}")
            generate_project(network_parameters(variant, 20), device, directory,
                             stream_capacity=10)
            projects[device, variant] = directory
        return projects[device, variant]

    return project


DEVICE_SUFFIX = [
    ("cpp_standalone", ".cpp"),
    pytest.param("cuda", ".cu", marks=needs_brian2cuda),
]


@pytest.mark.parametrize("device, suffix", DEVICE_SUFFIX)
@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn"])
def test_generated_project_holds_the_excitatory_neuron(generated, device, suffix, variant):
    directory = generated(device, variant)
    assert (directory / "makefile").exists()
    assert (directory / f"main{suffix}").exists()
    assert not (directory / "main").exists()  # not compiled
    sources = _sources(directory, suffix)
    update = _code_object(sources, "excitatory_stateupdater_codeobject", suffix)
    assert _constant(update, "v_rest") == pytest.approx(-0.065)
    assert _constant(update, "E_inh") == pytest.approx(-0.1)
    assert _constant(update, "tau_membrane") == pytest.approx(0.1)
    parameters = network_parameters(variant, 20)
    tau_theta = (parameters.excitatory.tau_theta_ms if variant == "diehl-cook"
                 else parameters.spikedyn.tau_theta_ms) * 1e-3  # seconds
    assert _constant(update, "tau_theta") == pytest.approx(tau_theta)
    reset = _code_object(sources, "excitatory_spike_resetter_codeobject", suffix)
    assert _constant(reset, "theta_plus") == pytest.approx(5e-5)
    assert re.search(r"theta \+= (_lio_\d+|plastic \* theta_plus)", reset)
    threshold = _code_object(sources, "excitatory_spike_thresholder_codeobject", suffix)
    assert _constant(threshold, "threshold_base") == pytest.approx(-0.072)


@pytest.mark.parametrize("device, suffix", DEVICE_SUFFIX)
@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn"])
def test_generated_project_holds_the_synapses(generated, device, suffix, variant):
    sources = _sources(generated(device, variant), suffix)
    post = _code_object(sources, "input_synapses_post_codeobject", suffix)
    assert _constant(post, "nu_post") == pytest.approx(1e-2)
    assert _constant(post, "w_max") == pytest.approx(1.0)
    if variant == "diehl-cook":
        pre = _code_object(sources, "input_synapses_pre_codeobject", suffix)
        assert _constant(pre, "nu_pre") == pytest.approx(1e-4)
        lateral = _code_object(sources, "inhibitory_to_excitatory_pre_codeobject", suffix)
        assert _constant(lateral, "w_inh_to_exc") == pytest.approx(17.0)
        assert "excitatory_to_inhibitory_pre_codeobject" + suffix in sources
    else:
        assert _constant(post, "x_target") == pytest.approx(0.1)
        lateral = _code_object(sources, "lateral_inhibition_pre_codeobject", suffix)
        assert _constant(lateral, "w_lateral") == pytest.approx(17.0)
        assert not any(name.startswith("inhibitory_") for name in sources)
    weight_sum = _code_object(sources, "input_synapses_weight_sum_codeobject", suffix)
    if device == "cuda":
        # Parallel column sums need atomic additions.
        assert "_brian_atomicAdd(&_ptr_array_excitatory_input_weight_sum" in weight_sum


@pytest.mark.parametrize("device, suffix", DEVICE_SUFFIX)
def test_controller_stops_or_idles(generated, device, suffix):
    sources = _sources(generated(device, "spikedyn"), suffix)
    controller = _code_object(sources, "controller_slot_codeobject", suffix)
    if device == "cpp_standalone":
        assert "stop_at(" in controller
        assert "Network::_globally_stopped = true" in controller
    else:
        assert "stop_at" not in controller
        assert re.search(r"intensity \*= 1 - stopped|intensity = intensity \* \(1 - stopped\)",
                         controller)


@needs_brian2cuda
def test_cuda_project_settings(generated):
    directory = generated("cuda", "diehl-cook")
    makefile = (directory / "makefile").read_text()
    flags = re.search(r"^NVCCFLAGS = (.*)$", makefile, re.M).group(1).split()
    # nvcc takes the last -std: C++17 for CUB of CUDA >= 12.
    assert [flag for flag in flags if flag.startswith("-std=")][-1] == "-std=c++17"
    assert "-arch=sm_90" in flags
    main_cu = (directory / "main.cu").read_text()
    # Early end of the fixed-duration run, seeded from run_args.
    assert "dev_array_controller_stopped" in main_cu
    assert "random_number_buffer.set_seed((unsigned long long)_array_controller_random_seed[0]" \
        in main_cu
    duration = float(re.search(r"spikedyn_network\.run\(([0-9.]+),", main_cu).group(1))
    assert duration == pytest.approx((np.ceil(1.5 * 10) + 1) * 0.5)  # 10-sample stream
    curand = devices._curand_wheel()
    if curand is not None:
        assert f"-I{curand[0]}" in flags
        assert (directory / "curand_link" / "libcurand.so").resolve() == curand[1].resolve()


@needs_brian2cuda
def test_cuda_compute_capability_is_an_option(tmp_path, capsys):
    code = main(["codegen", "--device", "cuda", "--network", "spikedyn", "--neurons", "5",
                 "--stream-samples", "2", "--compute-capability", "8.0", "--out",
                 str(tmp_path / "a100")])
    assert code == 0
    assert "not compiled" in capsys.readouterr().out
    assert "-arch=sm_80" in (tmp_path / "a100" / "makefile").read_text()


def test_genn_in_the_main_environment_names_the_genn_environment(tmp_path, capsys):
    if tuple(int(x) for x in brian2.__version__.split(".")[:2]) < (2, 6):
        pytest.skip("this is the genn environment")
    code = main(["codegen", "--device", "genn", "--network", "diehl-cook", "--neurons", "5",
                 "--out", str(tmp_path / "genn")])
    assert code == 2
    error = capsys.readouterr().err
    assert "brian2 < 2.6" in error and "make genn-venv" in error
    assert not (tmp_path / "genn").exists()


def test_genn_refuses_heterogeneous_delays_before_building():
    parameters = network_parameters("diehl-cook", 5)
    parameters.plasticity.max_input_delay_ms = 10.0
    with pytest.raises(devices.DeviceError, match="heterogeneous synaptic delays.*set it to 0"):
        devices.check_formulation(parameters, "genn")
    devices.check_formulation(parameters, "cuda")  # CUDA has them


@needs_brian2cuda
def test_cuda_engine_without_gpu_is_a_clear_error(tmp_path):
    if devices.cuda_gpu_present() and shutil.which("nvcc"):
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(devices.DeviceError, match="device 'cuda' needs"):
        Engine(network_parameters("diehl-cook", 5), device="cuda", build_root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was built


def test_genn_formulation_matches_the_standard_one():
    """The GeNN formulation (no linked variables, one clock, reset instead of a
    custom event, fixed duration with an idling controller) gives the same
    responses and weights as the standard one on the runtime device; θ differs
    only by its decay during the idle slots at the end."""
    digits = load_embedded("train")
    images = digits.images[np.random.default_rng(0).permutation(len(digits))[:3]]
    parameters = network_parameters("spikedyn", 8)
    standard = Engine(parameters, device="runtime")
    genn = Engine(parameters, device="runtime", formulation="genn")
    state = standard.initial_state(1)
    a = standard.run_stream(images, state, plastic=True, seed=4)
    b = genn.run_stream(images, state, plastic=True, seed=4)
    assert a.spike_counts.sum() > 0
    np.testing.assert_array_equal(a.spike_counts, b.spike_counts)
    np.testing.assert_array_equal(a.presentations, b.presentations)
    np.testing.assert_allclose(a.state.weights, b.state.weights, atol=1e-7)
    # Idle time: the run lasts ceil(1.5 * 3) + 1 = 6 slots; the standard run
    # stops at the start of the slot after the stream.
    idle_seconds = (6 - a.presentations.sum()) * 0.5
    tau_theta = parameters.spikedyn.tau_theta_ms * 1e-3
    np.testing.assert_allclose(b.state.theta, a.state.theta * np.exp(-idle_seconds / tau_theta),
                               rtol=1e-6)


def test_fixed_budget_too_short_names_the_fix():
    parameters = network_parameters("diehl-cook", 4)
    parameters.inputs.minimum_spikes = 10_000  # every digit shown at 2, 3, 4, 5
    parameters.inputs.maximum_intensity = 5.0
    engine = Engine(parameters, device="runtime", formulation="genn", slots_per_sample=1.5)
    images = load_embedded("train").images[:2]
    with pytest.raises(RuntimeError, match="never presented.*larger slots_per_sample"):
        engine.run_stream(images, engine.initial_state(0), plastic=False, seed=2)
    engine = Engine(parameters, device="runtime", formulation="genn", slots_per_sample=4)
    result = engine.run_stream(images, engine.initial_state(0), plastic=False, seed=2)
    np.testing.assert_array_equal(result.presentations, [4, 4])


@pytest.mark.cuda
def test_cuda_end_to_end_matches_cpp_standalone(build_root):
    """Spike statistics and learning on the GPU against cpp_standalone."""
    if not (HAS_BRIAN2CUDA and devices.cuda_gpu_present()):
        pytest.skip("needs brian2cuda and an NVIDIA GPU")
    digits = load_embedded("train")
    images = digits.images[np.random.default_rng(0).permutation(len(digits))[:50]]
    parameters = network_parameters("diehl-cook", 100)
    results = {}
    for device in ("cpp_standalone", "cuda"):
        engine = Engine(parameters, device=device, build_root=build_root, chunk_samples=50)
        results[device] = engine.run_stream(images, engine.initial_state(0), plastic=True,
                                            seed=1)
    cpp, cuda = results["cpp_standalone"], results["cuda"]
    # Different random streams: compare statistics, not spike trains.
    assert cuda.input_spikes_total == pytest.approx(cpp.input_spikes_total, rel=0.05)
    assert cuda.spike_counts.sum() == pytest.approx(cpp.spike_counts.sum(), rel=0.25)
    np.testing.assert_allclose(cuda.state.weight_matrix(784).sum(axis=0), 78.0, rtol=0.05)

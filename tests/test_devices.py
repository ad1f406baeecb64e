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
from spikedyn_brian.devices import checks
from spikedyn_brian.cli import main
from spikedyn_brian.data import load_embedded
from spikedyn_brian.engine import Engine, generate_project
from spikedyn_brian.models import equations as model_equations
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
    reset = _code_object(sources, "excitatory_spike_resetter_codeobject", suffix)
    if variant == "diehl-cook":
        tau_theta = parameters.excitatory.tau_theta_ms * 1e-3  # seconds
        assert _constant(update, "tau_theta") == pytest.approx(tau_theta)
        assert _constant(reset, "theta_plus") == pytest.approx(5e-5)
        assert re.search(r"theta \+= (_lio_\d+|plastic \* theta_plus)", reset)
    else:
        # SpikeDyn's set-point threshold: per slot, from the spikes the reset counts.
        assert "slot_spikes" in reset
        history = _code_object(sources, "excitatory_spike_history_codeobject", suffix)
        assert _constant(history, "theta_rate") == pytest.approx(5e-5)
        assert _constant(history, "target_spikes") == pytest.approx(20.0 / 20)
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
        # Once stopped, the inputs fall silent (the run idles to its fixed end).
        assert re.search(r"intensity = intensity \* int\(stopped == 0\)|"
                         r"intensity = intensity \* \(int\)\(stopped == 0\)|"
                         r"intensity \*= [^;]*stopped == 0", controller), controller[-3000:]


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
    curand = checks._curand_wheel()
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


@needs_brian2cuda
def test_cuda_preferences_do_not_reach_a_later_cpp_standalone_build(tmp_path):
    """Generating CUDA code sets link directories for curand; a cpp_standalone
    project generated afterwards in the same process links as without it."""
    def cpp_makefile(name):
        out = tmp_path / name
        assert main(["codegen", "--device", "cpp_standalone", "--network", "diehl-cook",
                     "--neurons", "5", "--stream-samples", "2", "--out", str(out)]) == 0
        return (out / "makefile").read_text()

    before = cpp_makefile("cpp-before")
    assert main(["codegen", "--device", "cuda", "--network", "diehl-cook", "--neurons", "5",
                 "--stream-samples", "2", "--out", str(tmp_path / "cuda")]) == 0
    after = cpp_makefile("cpp-after")
    assert "curand_link" not in after
    assert after.replace("cpp-after", "cpp-before") == before


def test_genn_in_the_main_environment_names_the_genn_environment(tmp_path, capsys):
    if tuple(int(x) for x in brian2.__version__.split(".")[:2]) < (2, 6):
        pytest.skip("this is the genn environment")
    code = main(["codegen", "--device", "genn", "--network", "diehl-cook", "--neurons", "5",
                 "--out", str(tmp_path / "genn")])
    assert code == 2
    error = capsys.readouterr().err
    assert "brian2 < 2.6" in error and "make genn-venv" in error
    assert not (tmp_path / "genn").exists()


def test_genn_refuses_heterogeneous_delays_before_building(tmp_path):
    parameters = network_parameters("diehl-cook", 5)
    parameters.plasticity.max_input_delay_ms = 10.0
    genn = Engine(parameters, "genn", build_root=tmp_path, build=False).backend
    with pytest.raises(devices.DeviceError, match="heterogeneous synaptic delays.*set it to 0"):
        genn.check(compile=False, run=False)
    if HAS_BRIAN2CUDA:  # CUDA has them
        Engine(parameters, "cuda", build_root=tmp_path, build=False).backend.check(
            compile=False, run=False)


@needs_brian2cuda
def test_cuda_engine_without_gpu_is_a_clear_error(tmp_path):
    if devices.cuda_gpu_present() and shutil.which("nvcc"):
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(devices.DeviceError, match="device 'cuda' needs"):
        Engine(network_parameters("diehl-cook", 5), device="cuda", build_root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was built


# Tolerance on the weights of the whole-network comparison below. SpikeDyn
# (no depression at input spikes): identical to rounding. Diehl & Cook: the
# standard run ends at the end of the time step in which the controller stops
# it, and in that step the inputs may fire (the stimulus table clamps the
# sample index to its last row), each such spike depressing its weights by
# nu_pre * post1 (post1 long decayed: ~1e-8); the GeNN formulation's idling
# controller silences the inputs instead. With a blank row after the stream
# the two agree to 1e-16 (checked by hand).
GENN_FORMULATION_WEIGHT_TOLERANCE = {"spikedyn": 1e-12, "diehl-cook": 1e-7}


@pytest.mark.parametrize("variant", sorted(GENN_FORMULATION_WEIGHT_TOLERANCE))
def test_genn_formulation_matches_the_standard_one(variant):
    """The GeNN formulation (no linked variables, one clock, reset instead of a
    custom event, fixed duration with an idling controller, traces, learning
    flag and rate factor on the synapses) gives the same responses and weights
    as the standard one on the runtime device; Diehl & Cook's θ differs only
    by its decay during the idle slots at the end."""
    digits = load_embedded("train")
    images = digits.images[np.random.default_rng(0).permutation(len(digits))[:3]]
    parameters = network_parameters(variant, 8)
    standard = Engine(parameters, device="runtime")
    genn = Engine(parameters, device="runtime", formulation="genn")
    state = standard.initial_state(1)
    a = standard.run_stream(images, state, plastic=True, seed=4)
    b = genn.run_stream(images, state, plastic=True, seed=4)
    assert a.spike_counts.sum() > 0
    assert np.abs(a.state.weights - state.weights).max() > 1e-2  # it learned
    np.testing.assert_array_equal(a.spike_counts, b.spike_counts)
    np.testing.assert_array_equal(a.presentations, b.presentations)
    np.testing.assert_allclose(a.state.weights, b.state.weights,
                               atol=GENN_FORMULATION_WEIGHT_TOLERANCE[variant], rtol=0)
    # Idle time: the run lasts ceil(1.5 * 3) + 1 = 6 slots; the standard run
    # stops at the start of the slot after the stream.
    idle_seconds = (6 - a.presentations.sum()) * 0.5
    if variant == "diehl-cook":
        tau_theta = model_equations._theta_rule(parameters)[1] * 1e-3
        np.testing.assert_allclose(b.state.theta,
                                   a.state.theta * np.exp(-idle_seconds / tau_theta), rtol=1e-6)
    else:
        # SpikeDyn's threshold changes after training slots only: not while idle.
        np.testing.assert_array_equal(b.state.theta, a.state.theta)
        np.testing.assert_allclose(b.state.neurons["activity"], a.state.neurons["activity"])


def _raster(rng, steps, n, rate, coincident):
    """Spike raster (steps, n) with spikes forced at the steps ``coincident``."""
    raster = (rng.random((steps, n)) < rate).astype(float)
    raster[coincident] = 1.0
    return raster


@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn", "asp"])
def test_synaptic_trace_rule_matches_the_neuron_trace_rule(variant):
    """GeNN's form of the STDP rule (event-driven per-synapse traces, learning
    flag and rate factor on the synapse) against the standard rule (traces,
    flag and factor on the neurons), side by side on the same random pre and
    post spike trains, with pre and post spikes in the same step (the
    ordering: pre trace set before on_post, on_post reads post2 before its
    reset, on_pre reads post1 before a post spike of the same step)."""
    brian2.device.reinit()
    brian2.device.activate()
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "numpy"
    parameters = network_parameters(variant, 3)
    dt = parameters.inputs.dt_ms * brian2.ms
    rng = np.random.default_rng(7)
    steps, n_pre, n_post = 600, 6, 3
    both = [40, 41, 120, 300, 301, 302, 450]  # pre and post spikes in one step
    pre_raster = brian2.TimedArray(_raster(rng, steps, n_pre, 0.05, both), dt=dt)
    post_raster = brian2.TimedArray(_raster(rng, steps, n_post, 0.02, both), dt=dt)
    stub = brian2.NeuronGroup(1, "normalise_now : 1\nintensity : 1", name="controller_stub")
    exc = model_equations.excitatory_neuron(parameters)
    post = brian2.NeuronGroup(
        n_post, exc.equations, threshold="post_raster(t, i) > 0.5", reset=exc.reset,
        method=exc.method, namespace=dict(exc.namespace, post_raster=post_raster), dt=dt,
        name="excitatory",
    )
    post.normalise_now = brian2.linked_var(stub, "normalise_now", index=np.zeros(n_post, int))
    post.plastic = 1.0
    post.theta = 20 * brian2.mV
    if "learning_rate_factor" in post.equations.names:
        post.learning_rate_factor = [1.0, 0.5, 0.1]
    inputs = model_equations.poisson_input(parameters)
    frequency = model_equations.uses_asp_frequency(parameters)
    pre = brian2.NeuronGroup(
        n_pre, "dpre/dt = -pre/tau_pre : 1" + ("\nfeature_frequency : 1" if frequency else ""),
        threshold="pre_raster(t, i) > 0.5",
        namespace={"tau_pre": inputs.namespace["tau_pre"], "pre_raster": pre_raster},
        method="exact", dt=dt, name="inputs",
    )
    if frequency:  # ASP's input frequencies scale the potentiation
        pre.feature_frequency = rng.uniform(0.0, 1.0, n_pre)
    pre.run_on_event("spike", "pre = 1", when=inputs.events["spike"][1])
    weights = rng.uniform(0.0, 1.0, n_pre * n_post)
    weights[:3] = [0.0, 1e-5, 0.99999]  # clipping at 0 and w_max
    formulations = {
        "neurons": model_equations.input_synapses(parameters),
        "synapses": model_equations.input_synapses_with_synaptic_traces(parameters),
    }
    synapses = {}
    for name, model in formulations.items():
        synapses[name] = brian2.Synapses(
            pre, post, model.equations, on_pre=model.on_pre, on_post=model.on_post,
            namespace=model.namespace, dt=dt, name=f"{name}_synapses",
        )
        synapses[name].connect()
        synapses[name].w = weights
    # What brian2genn refuses: postsynaptic variables in on_post.
    read_in_on_post = brian2.utils.stringtools.get_identifiers(formulations["synapses"].on_post)
    assert not [name for name in read_in_on_post
                if name.endswith("_post") and name[:-len("_post")] in post.variables]
    synapses["synapses"].learning_on = 1.0
    if "rate_factor" in synapses["synapses"].variables:
        synapses["synapses"].rate_factor = "learning_rate_factor_post"
    brian2.Network(stub, post, pre, *synapses.values()).run(steps * dt, namespace={})
    standard, synaptic = (np.asarray(synapses[name].w[:]) for name in formulations)
    assert np.abs(standard - weights).max() > 1e-2  # it learned
    np.testing.assert_allclose(synaptic, standard, atol=1e-12, rtol=0)
    if variant == "asp":
        significance = [np.asarray(synapses[name].significance[:]) for name in formulations]
        assert significance[0].max() > 0.1
        np.testing.assert_allclose(significance[1], significance[0], atol=1e-12, rtol=0)


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
    if not HAS_BRIAN2CUDA:
        pytest.skip("brian2cuda is not installed (pip install -e '.[cuda]')")
    if not devices.cuda_gpu_present():
        pytest.skip("no NVIDIA GPU here (nvidia-smi lists none)")
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


def test_preferences_newer_than_brian2_2_5_are_set_only_where_registered(monkeypatch):
    """brian2 2.5 (the GeNN environment) has no ``core.stop_on_keyboard_interrupt``:
    activating a device there must not raise PreferenceError (it did)."""
    from spikedyn_brian.devices import backends

    assert backends.set_preference_if_registered("core.stop_on_keyboard_interrupt", False)
    assert brian2.prefs["core.stop_on_keyboard_interrupt"] is False
    assert not backends.set_preference_if_registered("core.not_a_preference_here", True)
    # A Brian2 without the preference, as brian2 2.5: unregister it for this test.
    definitions, doc = brian2.prefs.pref_register["core"]
    monkeypatch.setitem(brian2.prefs.pref_register, "core", (
        {k: v for k, v in definitions.items() if k != "stop_on_keyboard_interrupt"}, doc))
    monkeypatch.delitem(brian2.prefs.prefs, "core.stop_on_keyboard_interrupt")
    with pytest.raises(KeyError):
        brian2.prefs["core.stop_on_keyboard_interrupt"]
    assert backends.activate_device("runtime") is not None


def test_the_program_watcher_stops_a_program_that_cannot_read_its_input(tmp_path):
    """The compiled program's stderr is watched while it runs: "Error reading '...'" kills
    it at once (it would otherwise run on with its build-time values), and the run
    ends in a ProgramInputError quoting the program's line."""
    import subprocess
    import sys
    import time

    from spikedyn_brian.devices.backends import (
        ProgramInputError,
        _capturing_stderr,
        _PositionWatcher,
    )

    stdout, stderr, pid = tmp_path / "stdout.txt", tmp_path / "stderr.txt", tmp_path / "p.pid"
    marker = "spikedyn-test-program"
    script = ("import sys, time; print('started', flush=True); sys.stderr.write(\"Error "
              "reading 'static_arrays/w.dat': file size 800 does not match expected size "
              "627200\\n\"); sys.stderr.flush(); time.sleep(60)")
    command = _capturing_stderr([sys.executable, "-c", script, marker], stderr, pid)
    watcher = _PositionWatcher(stdout, None, stderr_path=stderr, pid_path=pid, program=marker)
    start = time.perf_counter()
    with watcher, open(stdout, "w") as out:
        status = subprocess.call(command, stdout=out)
    assert time.perf_counter() - start < 10 and status == -9  # killed, not slept out
    with pytest.raises(ProgramInputError, match="file size 800 does not match") as caught:
        watcher.raise_input_error(0, 3)
    assert "samples 0 to 2" in str(caught.value) and "\n" not in str(caught.value)
    assert stdout.read_text() == ""  # Brian2 would print it: nothing left to print

    # A program that writes other things to stderr runs to its end; they are passed on.
    quiet = _capturing_stderr(["/bin/sh", "-c", "echo note >&2; sleep 0.3"], stderr, pid)
    watcher = _PositionWatcher(stdout, None, stderr_path=stderr, pid_path=pid, program="sh")
    with watcher:
        assert subprocess.call(quiet) == 0
    watcher.raise_input_error(0, 1)  # nothing raised
    assert watcher.input_error is None

"""The engine: in-simulation controller, normalisation, inhibition, chunks, run_args."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikedyn_brian.data import load_embedded
from spikedyn_brian.engine import Engine, LearnedState
from spikedyn_brian.models.parameters import network_parameters


def _images(n, seed=0):
    digits = load_embedded("train")
    order = np.random.default_rng(seed).permutation(len(digits))[:n]
    return digits.images[order]


def _engine(parameters, device_name, build_root, **kwargs):
    return Engine(parameters, device=device_name, build_root=build_root, **kwargs)


def test_normalisation_scales_every_column_to_78(device_name, build_root):
    """With STDP switched off (learning rates 0) only normalisation changes the
    weights: every neuron's input weights sum to 78 afterwards."""
    parameters = network_parameters("diehl-cook", 8)
    parameters.plasticity.nu_pre = 0.0
    parameters.plasticity.nu_post = 0.0
    engine = _engine(parameters, device_name, build_root, chunk_samples=4)
    state = engine.initial_state(seed=3)
    before = state.weight_matrix(784).sum(axis=0)
    assert np.all(np.abs(before - 78) > 10)  # initial sums are ~120
    result = engine.run_stream(_images(2), state, plastic=True, seed=1)
    sums = result.state.weight_matrix(784).sum(axis=0)
    np.testing.assert_allclose(sums, 78.0, rtol=1e-9)
    # Relative weights are kept: normalisation is a per-column scaling.
    ratio = result.state.weight_matrix(784) / state.weight_matrix(784)
    np.testing.assert_allclose(ratio, ratio[0:1, :] * np.ones_like(ratio), rtol=1e-9)


def test_no_learning_when_not_plastic(device_name, build_root):
    parameters = network_parameters("diehl-cook", 8)
    engine = _engine(parameters, device_name, build_root, chunk_samples=4)
    state = engine.initial_state(seed=3)
    result = engine.run_stream(_images(2), state, plastic=False, seed=1)
    np.testing.assert_array_equal(result.state.weights, state.weights)
    np.testing.assert_array_equal(result.state.theta, state.theta)
    assert result.spike_counts.sum() > 0


def test_intensity_boost_until_enough_spikes_or_cap(device_name, build_root):
    """Demanding more spikes than the network can give: every sample is shown at
    intensity 2, 3, 4, 5 (the cap) and accepted there."""
    parameters = network_parameters("diehl-cook", 4)
    parameters.inputs.minimum_spikes = 10_000
    parameters.inputs.maximum_intensity = 5.0
    engine = _engine(parameters, device_name, build_root, chunk_samples=3)
    result = engine.run_stream(_images(3), engine.initial_state(0), plastic=False, seed=2)
    np.testing.assert_array_equal(result.presentations, [4, 4, 4])
    np.testing.assert_array_equal(result.final_intensity, [5.0, 5.0, 5.0])
    assert result.slots == 12


def test_boost_only_when_too_few_spikes(device_name, build_root):
    """A normal network answers most digits at once; a silent one (no input
    weights) needs a boost for every digit, and its counts stay 0."""
    parameters = network_parameters("diehl-cook", 4)
    parameters.inputs.maximum_intensity = 3.0
    engine = _engine(parameters, device_name, build_root, chunk_samples=3)
    images = _images(3)
    silent = LearnedState(np.zeros(784 * 4), np.full(4, 0.02))
    result = engine.run_stream(images, silent, plastic=False, seed=2)
    np.testing.assert_array_equal(result.presentations, [2, 2, 2])
    assert result.spike_counts.sum() == 0
    strong = engine.initial_state(0)
    strong.weights[:] = 0.5
    result = engine.run_stream(images, strong, plastic=False, seed=2)
    np.testing.assert_array_equal(result.presentations, [1, 1, 1])
    assert np.all(result.spike_counts.sum(axis=1) >= 5)


@pytest.mark.parametrize("variant", ["diehl-cook", "spikedyn"])
def test_lateral_inhibition_silences_the_others(variant, device_name, build_root):
    """Neuron 0 gets 25% stronger input than neurons 1-3: without inhibition
    all fire; with it, neuron 0 wins and the others nearly stop. (Input weak
    enough that the neurons are not all pinned at the 50 ms timer limit,
    where identical neurons would fire in the same step.)"""
    counts = {}
    for inhibited in (True, False):
        parameters = network_parameters(variant, 4)
        if not inhibited:
            parameters.plasticity.w_inh_to_exc = 0.0
            parameters.spikedyn.w_lateral = 0.0
        engine = _engine(parameters, device_name, build_root, chunk_samples=2)
        state = engine.initial_state(0)
        weights = state.weight_matrix(784)
        weights[:] = 0.06
        weights[:, 0] = 0.075
        result = engine.run_stream(_images(2), state, plastic=False, seed=4)
        counts[inhibited] = result.spike_counts.sum(axis=0)
    free, inhibited = counts[False], counts[True]
    assert np.all(free[1:] >= 5), free
    assert inhibited[0] >= 5, inhibited
    assert inhibited[1:].sum() <= 0.2 * free[1:].sum(), (inhibited, free)


def test_asp_input_frequency_averages_training_presentations_only(device_name, build_root):
    """ASP: f_i moves by 1/tau towards 1 in every training slot in which input i
    spiked, towards 0 in the others, and not at all while testing; across
    chunks, as in one run. Bright pixels (255 at 64 Hz and more: no silent
    presentation) reach 1 - (1 - 1/tau)^slots; black pixels stay 0."""
    parameters = network_parameters("asp", 6)
    parameters.asp.frequency_tau_presentations = 5.0
    image = _images(1)[0]
    engine = _engine(parameters, device_name, build_root, chunk_samples=2)
    state = engine.initial_state(seed=3)
    result = engine.run_stream(np.stack([image] * 3), state, plastic=True, seed=1)
    frequency = result.state.inputs["feature_frequency"]
    pixels = np.asarray(image).ravel()
    expected = 1 - (1 - 1 / 5.0) ** result.slots
    np.testing.assert_allclose(frequency[pixels == 255], expected, rtol=1e-12)
    assert np.all(frequency[pixels == 0] == 0)
    assert result.state.neurons["training_presentations"][0] == result.slots
    tested = engine.run_stream(np.stack([image] * 2), result.state, plastic=False, seed=2)
    np.testing.assert_array_equal(tested.state.inputs["feature_frequency"],
                                  result.state.inputs["feature_frequency"])
    assert tested.state.neurons["training_presentations"][0] == result.slots


@pytest.mark.standalone
def test_chunks_resume_exactly_and_leave_no_run_args_files(build_root):
    """A stream run in chunks equals the same stream resumed from its middle
    (chunk seeds depend on the stream position), and Brian2's run_args files
    are deleted after every run."""
    parameters = network_parameters("diehl-cook", 10)
    engine = Engine(parameters, "cpp_standalone", build_root=build_root, chunk_samples=3)
    images = _images(6)
    state = engine.initial_state(1)
    whole = engine.run_stream(images, state, plastic=True, seed=9)
    first = engine.run_stream(images[:3], state, plastic=True, seed=9)
    second = engine.run_stream(images[3:], first.state, plastic=True, seed=9, stream_offset=3)
    np.testing.assert_array_equal(
        whole.spike_counts, np.concatenate([first.spike_counts, second.spike_counts])
    )
    np.testing.assert_array_equal(whole.state.weights, second.state.weights)
    np.testing.assert_array_equal(whole.state.theta, second.state.theta)
    assert not np.array_equal(whole.state.weights, state.weights)
    static = Path(engine.build_directory) / "static_arrays"
    leftovers = [p.name for p in static.iterdir() if p.name.startswith(("init_", "results-"))]
    assert static.is_dir()
    assert leftovers == []


@pytest.mark.standalone
def test_engines_sharing_a_build_never_share_run_args_files(build_root):
    """Brian2 names run_args files by their content in the build's shared
    static_arrays/: two processes with equal arrays (every seed's initial θ)
    shared one file, and the first to finish removed it while the other's
    program still had to read it. Each engine now writes its own files."""
    parameters = network_parameters("diehl-cook", 5)
    names, results, directories = [], [], []
    for _ in range(2):  # one engine after the other, as two processes would
        engine = Engine(parameters, "cpp_standalone", build_root=build_root, chunk_samples=2)
        directories.append(engine.build_directory)
        state, backend = engine.initial_state(0), engine.backend
        arguments, files = backend._private_run_args(
            backend.network.run_args(state, True, 2, 7, np.zeros((3, 784))))
        # Every array (θ, weights, stimulus) goes to a file named after the engine's run.
        assert len(files) >= 3
        for path in files:
            assert path.name.startswith(backend.results_directory + "-init_") and path.is_file()
            assert f"static_arrays/{path.name}" in " ".join(arguments)
            path.unlink()
        names.append({path.name for path in files})
        results.append(engine.run_stream(_images(2), state, plastic=True, seed=5))
        static = Path(engine.build_directory) / "static_arrays"
        assert not [p.name for p in static.iterdir() if p.name.startswith(("init_", "results-"))]
    assert directories[0] == directories[1]
    # Equal arrays, yet no file name in common.
    assert not names[0] & names[1]
    np.testing.assert_array_equal(results[0].spike_counts, results[1].spike_counts)
    np.testing.assert_array_equal(results[0].state.weights, results[1].state.weights)


@pytest.mark.standalone
def test_second_engine_reuses_the_compiled_build(build_root):
    """The same configuration in a new process recompiles no code object (make
    finds their object files up to date; only main.cpp, where Brian2 orders
    clock initialisations by a set, may change); the results agree."""
    parameters = network_parameters("diehl-cook", 5)
    first = Engine(parameters, "cpp_standalone", build_root=build_root, chunk_samples=2)
    objects = sorted((Path(first.build_directory) / "code_objects").glob("*.o"))
    assert len(objects) > 20
    stamps = [path.stat().st_mtime_ns for path in objects]
    images = _images(2)
    expected = first.run_stream(images, first.initial_state(0), plastic=True, seed=5)
    script = (
        "import sys, numpy as np\n"
        "from spikedyn_brian.engine import Engine\n"
        "from spikedyn_brian.models.parameters import network_parameters\n"
        "e = Engine(network_parameters('diehl-cook', 5), 'cpp_standalone',"
        f" build_root={str(build_root)!r}, chunk_samples=2)\n"
        "print(e.build_directory)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip().splitlines()[-1]
    assert output == str(first.build_directory)
    assert [path.stat().st_mtime_ns for path in objects] == stamps
    again = first.run_stream(images, first.initial_state(0), plastic=True, seed=5)
    np.testing.assert_array_equal(again.spike_counts, expected.spike_counts)


def test_bad_inputs_are_rejected_with_clear_errors(build_root):
    parameters = network_parameters("diehl-cook", 3)
    with pytest.raises(ValueError, match="device 'gpu' is not supported"):
        Engine(parameters, device="gpu")
    engine = Engine(parameters, device="runtime")
    with pytest.raises(ValueError, match=r"shape \(n_samples, 784\)"):
        engine.run_stream(np.zeros((2, 100)), engine.initial_state(0), True, 0)
    with pytest.raises(ValueError, match="stream is empty"):
        engine.run_stream(np.zeros((0, 784)), engine.initial_state(0), True, 0)
    with pytest.raises(ValueError, match="variant 'loihi' is unknown"):
        network_parameters("loihi", 3)


def test_a_silent_phase_is_reported(tmp_path):
    """A network that never answers during a phase: a warning naming the phase,
    kept by the PhaseRunner for the results file."""
    from spikedyn_brian.phases import PhaseRunner

    parameters = network_parameters("diehl-cook", 3)
    parameters.inputs.maximum_intensity = 3.0  # give up after two presentations
    engine = Engine(parameters, "runtime")
    phases = PhaseRunner(engine, None, False)
    silent = LearnedState(np.zeros(784 * 3), np.full(3, 0.02))
    with pytest.warns(RuntimeWarning, match="phase 'quiet': the network was silent for all 2"):
        phases.run("quiet", _images(2), silent, plastic=False, seed=1, description="quiet")
    assert len(phases.warnings) == 1 and "quiet" in phases.warnings[0]


def test_a_saturated_phase_is_reported():
    """Without lateral inhibition and with strong weights every neuron answers
    every digit: the phase is reported as saturated."""
    from spikedyn_brian.phases import PhaseRunner

    parameters = network_parameters("diehl-cook", 20)
    parameters.plasticity.w_inh_to_exc = 0.0
    engine = Engine(parameters, "runtime")
    phases = PhaseRunner(engine, None, False)
    strong = LearnedState(np.full(784 * 20, 0.05), np.full(20, 0.02))
    with pytest.warns(RuntimeWarning, match=r"phase 'loud': the network was saturated: on "
                                            r"average 100 % of its 20 neurons"):
        phases.run("loud", _images(2), strong, plastic=False, seed=1, description="loud")
    assert len(phases.warnings) == 1
    # A working network (the same one with its inhibition) is not reported.
    working = PhaseRunner(Engine(network_parameters("diehl-cook", 20), "runtime"), None, False)
    working.run("fine", _images(2), working.engine.initial_state(0), plastic=False, seed=1,
                description="fine")
    assert working.warnings == []


@pytest.mark.standalone
def test_a_program_that_cannot_read_an_input_file_stops_at_once(build_root):
    """Brian2's standalone program prints "Error reading '...': file size ... does not match"
    and carries on with its build-time values (a silent stream for minutes). The engine
    stops it at once with a clear error; the engine stays usable."""
    import time

    from spikedyn_brian.devices.backends import ProgramInputError

    parameters = network_parameters("diehl-cook", 10)
    engine = Engine(parameters, "cpp_standalone", build_root=build_root, chunk_samples=3)
    good = engine.initial_state(1)
    # The state check of run_stream is bypassed: weights of another network size.
    bad = LearnedState(good.weights[:100].copy(), good.theta.copy())
    start = time.perf_counter()
    with pytest.raises(ProgramInputError, match=r"Error reading '.*input_synapses_w.*'"
                                                r": file size 800 does not match") as caught:
        engine.backend.run_chunk(_images(3), bad, True, 9, 0)
    assert time.perf_counter() - start < 20
    assert "nothing of this run was kept" in str(caught.value)
    binary = f"main-{engine.backend.results_directory}"
    running = subprocess.run(["pgrep", "-f", binary], capture_output=True, text=True).stdout
    assert running.strip() == ""
    result = engine.run_stream(_images(3), good, plastic=True, seed=9)
    assert len(result.presentations) == 3
    engine.close()


def test_device_options_are_the_devices_own():
    """Each device takes the fields of its options dataclass, as keywords or a table."""
    from spikedyn_brian.devices.registry import GennOptions
    from spikedyn_brian.models.formulation import GENN

    parameters = network_parameters("diehl-cook", 3)
    engine = Engine(parameters, "runtime", formulation="genn", slots_per_sample=4)
    assert engine.backend.formulation is GENN
    assert engine.options.slots_per_sample == 4.0 and engine.options.target == "numpy"
    engine = Engine(parameters, "runtime", options={"formulation": "genn"}, slots_per_sample=2)
    assert (engine.options.formulation, engine.options.slots_per_sample) == ("genn", 2.0)
    with pytest.raises(ValueError, match="device 'cpp_standalone' has no option 'formulation'; "
                                         "its options: none"):
        Engine(parameters, "cpp_standalone", formulation="genn", build=False)
    with pytest.raises(ValueError, match="device 'genn' has no option 'gpu_id'; its options: "
                                         "use_gpu, slots_per_sample"):
        Engine(parameters, "genn", gpu_id=1, build=False)
    genn = Engine(parameters, "genn", options=GennOptions(use_gpu=True), build=False)
    assert genn.options.use_gpu is True
    assert genn.run_duration(10) == Engine(parameters, "genn", build=False).run_duration(10)


def test_engine_for_serves_the_network_with_the_devices_fallback(tmp_path):
    from spikedyn_brian.engine import engine_for

    parameters = network_parameters("diehl-cook", 3)
    engine, note = engine_for(parameters, "cpp_dense", build_root=tmp_path)
    assert (engine.device_name, note) == ("cpp_dense", "")
    parameters.plasticity.max_input_delay_ms = 10.0
    engine, note = engine_for(parameters, "cpp_dense", build_root=tmp_path)
    assert engine.device_name == "cpp_standalone" and "input delays" in note
    assert engine.builds_once and not engine.is_built()
    assert not any(tmp_path.iterdir())  # nothing built

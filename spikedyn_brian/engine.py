"""The engine: builds a network once on a device and runs digit streams on it.

One `Engine` owns one Brian2 device. On ``cpp_standalone`` the network is
generated and compiled once (per configuration: the build directory is keyed
by a hash of the parameters, so an unchanged configuration is not compiled
again) and every stream runs inside the compiled program: the stream's pixel
values, its length, the learning flag, the learned state and the random seed
are handed to the binary through Brian2's ``run_args``. A stream longer than
the build's capacity runs as several chunks, each one checkpointable. On the
``runtime`` device the same network is built per stream and run by Brian2's
Python runtime (for debugging). On ``cuda`` (brian2cuda) the build works as on
``cpp_standalone`` but its run has a fixed slot budget (the controller idles
once the stream is done); ``genn`` (brian2genn, no ``run_args``) builds one
project per stream. Results come out of the same code (`_collect`) on every
device; device-specific knowledge lives in :mod:`spikedyn_brian.devices`.
"""

import fcntl
import gc
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import brian2
from brian2 import second, prefs, set_device

from spikedyn_brian import devices
from spikedyn_brian.devices import DEVICES, FIXED_DURATION_DEVICES
from spikedyn_brian.models.equations import (
    learned_neuron_variables,
    learned_synapse_variables,
    presentation_slot,
)
from spikedyn_brian.models.parameters import as_dict
from spikedyn_brian.network import build_network, initial_weights
from spikedyn_brian.state import LearnedState, StreamResult
from spikedyn_brian.seeds import chunk_seed

__all__ = ["DEVICES", "LearnedState", "StreamResult", "Engine", "generate_project"]

#: Default slot budget of fixed-duration devices (GeNN, CUDA): slots per
#: sample of a build's capacity. Digits mostly take 1.0–1.05 slots
#: (``docs/performance.md``); a stream that needs more fails with an error
#: naming ``slots_per_sample``.
DEFAULT_SLOTS_PER_SAMPLE = 1.5

#: Wall-clock seconds between two looks of the CUDA host loop at the
#: controller's ``stopped`` flag (an early end of the fixed-duration run).
CUDA_STOP_CHECK_SECONDS = 0.05

#: gcc flags of the compiled program. Brian2's defaults add
#: ``-fno-finite-math-only``, which hides glibc's vectorised ``exp`` from gcc,
#: and gcc's default limit on alias checks stops it from vectorising the
#: excitatory state update (9 arrays). With these flags every neuron update
#: loop is vectorised (AVX-512 here); the models never produce inf or NaN.
COMPILER_FLAGS = (
    "-w",
    "-O3",
    "-ffast-math",
    "-march=native",
    "-std=c++11",
    "--param=vect-max-version-for-alias-checks=200",
)

#: Upper bound of one compiled run; the controller stops the run when its
#: stream is done, long before (1e6 s of biological time).
_MAXIMUM_RUN_DURATION = 1e6 * second


def parameters_hash(parameters, extra=()):
    """Short stable hash of a parameter set (names a build directory)."""
    text = json.dumps([as_dict(parameters), list(extra)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Engine:
    """Build a network once on a device; run streams on it.

    Parameters
    ----------
    parameters : NetworkParameters
    device : {'runtime', 'cpp_standalone', 'genn', 'cuda'}
        ``genn`` and ``cuda`` need their packages and hardware
        (:mod:`spikedyn_brian.devices`); a clear `devices.DeviceError` is
        raised before anything is built when they are missing.
    build_root : str or Path, optional
        Where compiled builds live (default ``$SPIKEDYN_BUILD_DIR`` or
        ``~/.cache/spikedyn_brian/builds``); one subdirectory per configuration.
    chunk_samples : int
        Most samples one compiled run presents (the stimulus capacity). Longer
        streams run as several chunks; ``on_chunk`` callbacks see each.
    threads : int
        OpenMP threads of the compiled program (0: no OpenMP).
    runtime_target : str
        Brian2 code generation target of the runtime device.
    slots_per_sample : float
        Slot budget of fixed-duration devices (``genn``, ``cuda``): a run
        lasts ``ceil(slots_per_sample * chunk_samples) + 1`` slots.
    cuda_options : devices.CudaOptions, optional
        GPU id and compute capability of a ``cuda`` build.
    use_gpu : bool
        ``genn`` only: GeNN's CUDA backend (True) or its single-threaded CPU
        backend (False).
    formulation : {None, 'genn'}
        ``runtime`` only: build the network as formulated for GeNN (no linked
        variables, one clock, fixed duration with an idling controller), to
        check that formulation against the standard one without GeNN.
    """

    def __init__(
        self,
        parameters,
        device="cpp_standalone",
        build_root=None,
        chunk_samples=1000,
        threads=0,
        runtime_target="numpy",
        profile=False,
        slots_per_sample=DEFAULT_SLOTS_PER_SAMPLE,
        cuda_options=None,
        use_gpu=False,
        formulation=None,
    ):
        if device not in DEVICES:
            raise ValueError(
                f"device {device!r} is not supported by this engine; choose one of "
                f"{', '.join(DEVICES)}"
            )
        if device in FIXED_DURATION_DEVICES:
            devices.import_device_package(device)
            devices.check_formulation(parameters, device)
            devices.check_can_run(device, use_gpu=use_gpu)
        self.slots_per_sample = float(slots_per_sample)
        self.cuda_options = cuda_options or devices.CudaOptions()
        self.use_gpu = bool(use_gpu)
        if formulation not in (None, "genn") or (formulation and device != "runtime"):
            raise ValueError(
                f"formulation {formulation!r} is not available on device {device!r}: "
                "only the runtime device runs the 'genn' formulation"
            )
        self.formulation = formulation
        if int(chunk_samples) < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples!r}")
        self.parameters = parameters
        self.device_name = device
        self.chunk_samples = int(chunk_samples)
        self.threads = int(threads)
        self.runtime_target = runtime_target
        self.profile = bool(profile)
        if build_root is None:
            build_root = os.environ.get(
                "SPIKEDYN_BUILD_DIR", Path.home() / ".cache" / "spikedyn_brian" / "builds"
            )
        self.build_root = Path(build_root)
        self.build_directory = None
        self.build_seconds = None
        self._network = None
        self._genn_builds = 0
        if device in ("cpp_standalone", "cuda"):
            self._build_standalone()

    def __repr__(self):
        p = self.parameters
        where = f", build_directory='{self.build_directory}'" if self.build_directory else ""
        return (
            f"Engine(variant={p.variant!r}, n_neurons={p.n_neurons}, "
            f"device={self.device_name!r}{where})"
        )

    # ------------------------------------------------------------------ build
    def _build_standalone(self):
        extra = (self.chunk_samples, self.threads, self.profile, brian2.__version__)
        name = self.parameters.variant
        if self.device_name == "cuda":
            extra += ("cuda", self.slots_per_sample, self.cuda_options.compute_capability)
            name += "-cuda"
        key = parameters_hash(self.parameters, extra)
        self.build_directory = self.build_root / f"{name}-{key}"
        self.build_directory.mkdir(parents=True, exist_ok=True)
        # Brian2 suffixes the name of a code object whose name a live object
        # still holds; collect dead networks first, so that the generated code
        # (and therefore the compiled build) does not depend on what this
        # process did before.
        brian2.device.reinit()
        gc.collect()
        brian2.device.activate()
        # Keep this engine's own device object: another engine may activate
        # a new device later in the same process.
        self._device = devices.activate(
            self.device_name, self.build_directory, COMPILER_FLAGS, self.cuda_options
        )
        if self.device_name == "cpp_standalone":
            prefs.devices.cpp_standalone.openmp_threads = self.threads
        start = time.perf_counter()
        # Several processes (Dask workers) may build the same configuration:
        # one builds, the others wait and find the object files up to date.
        lock = open(self.build_directory / ".build.lock", "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            net = self._generate_and_compile()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        self.build_seconds = time.perf_counter() - start
        self._network = net
        # Each engine writes its results to its own directory, so that
        # processes sharing a build can run the binary at the same time.
        self._nonce = uuid.uuid4().int % 2**52
        self.results_directory = f"results-{os.getpid()}-{self._nonce:x}"

    def _generate_and_compile(self, compile=True):
        # One spare stimulus row holds a per-engine nonce (never presented):
        # Brian2 names run_args files by the MD5 of their content, so the
        # nonce keeps processes sharing a build from sharing (and deleting)
        # each other's stimulus files.
        net = build_network(self.parameters, self.chunk_samples + 1, device=self.device_name)
        seed_array = self._device.get_array_name(net.controller.variables["random_seed"])
        if self.device_name == "cuda":
            _prepare_cuda_run(self._device, net, seed_array)
            net.network.run(
                self.run_duration(self.chunk_samples), namespace={}, profile=self.profile,
                report=_cuda_stop_check(self._device, net),
                report_period=CUDA_STOP_CHECK_SECONDS * second,
            )
        else:
            self._device.apply_run_args()
            n_generators = max(self.threads, 1)
            self._device.insert_code(
                "main",
                f"for (int _i=0; _i<{n_generators}; _i++) brian::_random_generators[_i]"
                f".seed((unsigned long){seed_array}[0] * 1000003UL + _i);",
            )
            net.network.run(_MAXIMUM_RUN_DURATION, namespace={}, profile=self.profile)
        self._device.build(
            directory=str(self.build_directory), compile=compile, run=False, with_output=False
        )
        return net

    def run_duration(self, capacity):
        """Fixed run duration of a ``genn``/``cuda`` build holding ``capacity`` samples."""
        slots = math.ceil(self.slots_per_sample * capacity) + 1
        return slots * presentation_slot(self.parameters)

    def close(self):
        """Remove this engine's results directory (the build stays cached)."""
        if self.build_directory is not None and getattr(self, "results_directory", None):
            shutil.rmtree(self.build_directory / self.results_directory, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def profiling_summary(self):
        """Brian2's per-code-object timing of the last run (needs ``profile=True``)."""
        return brian2.profiling_summary(self._network.network)

    # -------------------------------------------------------------------- run
    def initial_state(self, seed):
        """The untrained state: Diehl & Cook's random weights, theta at its start."""
        p = self.parameters
        weights = initial_weights(p, seed)
        theta = np.full(p.n_neurons, p.excitatory.theta_initial_mV * 1e-3)
        synapses = {name: np.zeros_like(weights) for name in learned_synapse_variables(p)}
        neurons = {name: np.zeros(p.n_neurons) for name in learned_neuron_variables(p)}
        return LearnedState(weights, theta, synapses, neurons)

    def run_stream(
        self, images, state, plastic, seed, on_chunk=None, progress=None, stream_offset=0
    ):
        """Present a stream of images; return the responses and the new state.

        Parameters
        ----------
        images : ndarray (n_samples, n_inputs)
            Pixel values 0..255 in presentation order.
        state : LearnedState
            Learned state to start from (not modified).
        plastic : bool
            Learning on (STDP, theta adaptation, normalisation) or off.
        seed : int
            Seed of the Poisson inputs (each chunk derives its own).
        on_chunk : callable, optional
            ``on_chunk(first_sample, partial_result)`` after every chunk, e.g.
            to checkpoint.
        progress : tqdm-like, optional
            Updated with the number of samples each chunk completes.
        stream_offset : int
            Position of ``images[0]`` in a longer stream (a resumed run): chunk
            seeds depend on the absolute position, so a resumed stream draws
            the same input spikes as an uninterrupted one.
        """
        images = np.asarray(images)
        p = self.parameters
        if images.ndim != 2 or images.shape[1] != p.n_inputs:
            raise ValueError(
                f"images must have shape (n_samples, {p.n_inputs}), got {images.shape}"
            )
        if len(images) == 0:
            raise ValueError("the stream is empty: give at least one image")
        chunk = self.chunk_samples if self.device_name in ("cpp_standalone", "cuda") else len(images)
        parts = []
        state = state.copy()
        for first in range(0, len(images), chunk):
            part = self._run_chunk(
                images[first:first + chunk], state, plastic, seed, stream_offset + first
            )
            state = part.state
            parts.append(part)
            if progress is not None:
                progress.update(len(part.presentations))
            if on_chunk is not None:
                on_chunk(stream_offset + first, part)
        return StreamResult(
            spike_counts=np.concatenate([x.spike_counts for x in parts]),
            presentations=np.concatenate([x.presentations for x in parts]),
            final_intensity=np.concatenate([x.final_intensity for x in parts]),
            state=state,
            simulation_seconds=float(sum(x.simulation_seconds for x in parts)),
            slots=int(sum(x.slots for x in parts)),
            spikes_total=int(sum(x.spikes_total for x in parts)),
            input_spikes_total=int(sum(x.input_spikes_total for x in parts)),
            inhibitory_spikes_total=int(sum(x.inhibitory_spikes_total for x in parts)),
            chunk_seconds=[x.simulation_seconds for x in parts],
        )

    def _chunk_seed(self, seed, first):
        return chunk_seed(seed, first)

    def _run_chunk(self, images, state, plastic, seed, first):
        if self.device_name in ("cpp_standalone", "cuda"):
            return self._run_chunk_standalone(images, state, plastic, seed, first)
        if self.device_name == "genn":
            return self._run_chunk_genn(images, state, plastic, first)
        return self._run_chunk_runtime(images, state, plastic, seed, first)

    def _run_chunk_standalone(self, images, state, plastic, seed, first):
        net = self._network
        n = len(images)
        stimulus = np.zeros((self.chunk_samples + 1, self.parameters.n_inputs))
        stimulus[:n] = images
        stimulus[-1, 0] = self._nonce
        run_args = net.run_args(state, plastic, n, self._chunk_seed(seed, first), stimulus)
        start = time.perf_counter()
        try:
            self._device.run(
                directory=str(self.build_directory),
                results_directory=self.results_directory,
                with_output=False,
                run_args=run_args,
            )
        finally:
            # Brian2 writes one static array file (and a lock file) per
            # distinct run_args value: remove them so that repeated runs do
            # not fill the disk.
            static = self.build_directory / "static_arrays"
            for name in self._device.run_args_arrays:
                for leftover in (static / name, static / f"{name}.lock"):
                    leftover.unlink(missing_ok=True)
        elapsed = time.perf_counter() - start
        # Brian2 remembers the shape of 2-D dynamic arrays (StateMonitor
        # records) from the previous run of the binary and then refuses a
        # record of another length: let it infer the length again.
        for variable in net.slot_monitor.variables.values():
            size = getattr(variable, "size", None)
            if isinstance(size, tuple) and len(size) == 2:
                variable.size = (0, size[1])
        return self._collect(n, elapsed)

    def _run_chunk_genn(self, images, state, plastic, first):
        """GeNN: one project per stream, data set before the run (no run_args).

        GeNN draws the Poisson inputs with its own generator, which Brian2's
        seed does not reach: the same seed does not give the same input
        spikes as on the other devices.
        """
        brian2.device.reinit()
        gc.collect()
        brian2.device.activate()
        directory = self.build_root / f"{self.parameters.variant}-genn-{os.getpid()}-{first}"
        self._genn_builds += 1
        self._device = devices.activate("genn", directory, use_gpu=self.use_gpu)
        self.build_directory = directory
        net = _genn_network(self.parameters, images, state, plastic)
        self._network = net
        # Generates, compiles and runs the project (build_on_run).
        start = time.perf_counter()
        net.network.run(self.run_duration(len(images)), namespace={})
        total = time.perf_counter() - start
        # Simulation alone: GeNN's own timing of the run (brian2genn's
        # last_run_info); the build (code generation + compilation) is the rest.
        info = getattr(self._device, "_last_run_time", None)
        elapsed = float(info) if info else total
        self.build_seconds = total - elapsed if info else None
        return self._collect(len(images), elapsed)

    def _run_chunk_runtime(self, images, state, plastic, seed, first):
        brian2.device.reinit()
        brian2.device.activate()
        set_device("runtime")
        prefs.codegen.target = self.runtime_target
        brian2.seed(self._chunk_seed(seed, first))
        if self.formulation == "genn":
            net = _genn_network(self.parameters, images, state, plastic)
            duration = self.run_duration(len(images))
        else:
            net = build_network(self.parameters, len(images), stimulus_values=images)
            net.apply_state(state, plastic, len(images))
            duration = _MAXIMUM_RUN_DURATION
        self._network = net
        start = time.perf_counter()
        net.network.run(duration, namespace={}, profile=self.profile)
        elapsed = time.perf_counter() - start
        return self._collect(len(images), elapsed)

    def _collect(self, n_samples, elapsed):
        """Per-sample responses from the monitors (the same on every device)."""
        net = self._network
        presentation = self.parameters.inputs.presentation_ms * 1e-3
        record_times = np.asarray(net.slot_monitor.t / second)
        index = np.asarray(net.slot_monitor.index[0], dtype=np.int64)
        intensity = np.asarray(net.slot_monitor.intensity[0], dtype=float)
        # Record k (k >= 1) describes the slot that started at record k-1.
        slot_starts = record_times[:-1]
        slot_index = index[1:]
        slot_intensity = intensity[1:]
        n_slots = len(slot_starts)
        spike_times = np.asarray(net.spike_monitor.t / second)
        spike_neurons = np.asarray(net.spike_monitor.i, dtype=np.int64)
        slot_of_spike = np.searchsorted(slot_starts, spike_times + 1e-9, side="right") - 1
        in_presentation = (slot_of_spike >= 0) & (
            spike_times - slot_starts[np.clip(slot_of_spike, 0, None)] < presentation - 1e-9
        )
        in_presentation &= slot_of_spike < n_slots
        counts_per_slot = np.zeros((n_slots, self.parameters.n_neurons), dtype=np.int64)
        np.add.at(counts_per_slot, (slot_of_spike[in_presentation], spike_neurons[in_presentation]), 1)
        valid = slot_index < n_samples
        # The accepted presentation of a sample is its last slot.
        accepted = np.zeros(n_samples, dtype=np.int64) - 1
        presentations = np.bincount(slot_index[valid], minlength=n_samples)[:n_samples]
        last_slot = np.flatnonzero(valid)
        accepted[slot_index[last_slot]] = last_slot  # later slots overwrite earlier ones
        if np.any(accepted < 0):
            missing = int(np.sum(accepted < 0))
            hint = ""
            if self.device_name in FIXED_DURATION_DEVICES or self.formulation:
                hint = (
                    f" ({n_slots} slots, the fixed budget of a {self.device_name} run; "
                    "give the Engine a larger slots_per_sample, e.g. "
                    f"{2 * self.slots_per_sample:g})"
                )
            raise RuntimeError(
                f"{missing} of {n_samples} samples were never presented: the run ended "
                f"before the stream did{hint}"
            )
        return StreamResult(
            spike_counts=counts_per_slot[accepted],
            presentations=presentations.astype(np.int64),
            final_intensity=slot_intensity[accepted],
            state=net.read_state(),
            simulation_seconds=elapsed,
            slots=int(valid.sum()),
            spikes_total=int(len(spike_times)),
            input_spikes_total=int(net.controller.input_spike_total[0]),
            inhibitory_spikes_total=int(net.controller.inhibitory_spike_total[0]),
        )


def _genn_network(parameters, images, state, plastic):
    """The network of one GeNN stream, with its data as initial values."""
    net = build_network(parameters, len(images), stimulus_values=images, device="genn")
    net.apply_state(state, plastic, len(images))
    return net


def _prepare_cuda_run(device, net, seed_array):
    """Per-run seed on brian2cuda (its main has no ``apply_run_args`` slot).

    The ``run_args`` values are applied before the network run; applying them
    once more just before seeding lets the seed come from ``run_args`` too.
    """
    device.insert_code(
        "before_network_run",
        "set_from_command_line(args);\n"
        f"random_number_buffer.set_seed((unsigned long long){seed_array}[0] * 1000003ULL);",
    )


def _cuda_stop_check(device, net):
    """C++ body of the report function that ends a CUDA run early.

    Brian2CUDA calls the report function from its host loop every
    `CUDA_STOP_CHECK_SECONDS` of wall-clock time; it copies the controller's
    ``stopped`` flag from the GPU and sets the network's stop flag, so a run
    ends at most that much wall-clock time after its stream, well before its
    fixed slot budget. The stream's results do not depend on when it ends:
    after the stream the controller idles.
    """
    stopped = device.get_array_name(net.controller.variables["stopped"], access_data=False)
    return (
        "int32_t _spikedyn_stopped = 0;\n"
        f"cudaMemcpy(&_spikedyn_stopped, brian::dev{stopped}, sizeof(int32_t), "
        "cudaMemcpyDeviceToHost);\n"
        "if (_spikedyn_stopped) Network::_globally_stopped = true;"
    )


def generate_project(
    parameters, device, directory, stream_capacity=1000, seed=0, slots_per_sample=None,
    cuda_options=None, use_gpu=False,
):
    """Write the generated project of a training stream without compiling or running it.

    Parameters
    ----------
    parameters : NetworkParameters
    device : {'cpp_standalone', 'genn', 'cuda'}
    directory : str or Path
        Where the project is written (created).
    stream_capacity : int
        Samples one run of the project presents (``cpp_standalone`` and ``cuda``
        take the pixels through ``run_args``; ``genn``, which has none, holds
        zero pixels in its stimulus table, to be replaced by the user).
    seed : int
        Seed of the initial weights written into the project.
    slots_per_sample : float, optional
        Slot budget of fixed-duration devices (default
        `DEFAULT_SLOTS_PER_SAMPLE`).

    Returns
    -------
    Path
        The project directory.
    """
    if device not in devices.STANDALONE_DEVICES:
        raise devices.DeviceError(
            f"device {device!r} generates no project; choose one of "
            f"{', '.join(devices.STANDALONE_DEVICES)}"
        )
    devices.import_device_package(device)
    devices.check_formulation(parameters, device)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    engine = Engine.__new__(Engine)
    engine.parameters = parameters
    engine.device_name = device
    engine.chunk_samples = int(stream_capacity)
    engine.threads = 0
    engine.profile = False
    engine.slots_per_sample = float(slots_per_sample or DEFAULT_SLOTS_PER_SAMPLE)
    engine.cuda_options = cuda_options or devices.CudaOptions()
    engine.build_directory = directory
    brian2.device.reinit()
    gc.collect()
    brian2.device.activate()
    engine._device = devices.activate(
        device, directory, COMPILER_FLAGS, engine.cuda_options, use_gpu=use_gpu,
        compile=False, run=False,
    )
    try:
        if device == "genn":
            images = np.zeros((int(stream_capacity), parameters.n_inputs))
            state = engine.initial_state(seed)
            net = _genn_network(parameters, images, state, plastic=True)
            # brian2genn generates the project from within run (build_on_run).
            net.network.run(engine.run_duration(len(images)), namespace={})
        else:
            # Pixels, weights, thresholds and the seed come through run_args.
            engine._generate_and_compile(compile=False)
    finally:
        brian2.device.reinit()
        brian2.device.activate()
        set_device("runtime")
    return directory

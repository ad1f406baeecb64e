"""The engine: builds a network once on a device and runs digit streams on it.

One `Engine` owns one backend (:mod:`spikedyn_brian.devices.backends`), the
class that knows its device. On the compiled devices (``cpp_standalone``,
``cpp_dense``, ``cuda``) the network is generated and compiled once per
configuration (the build directory is keyed by a hash of the parameters, so
an unchanged configuration is not compiled again) and every stream runs
inside the compiled program: the stream's pixel values, its length, the
learning flag, the learned state and the random seed are handed to the
binary through Brian2's ``run_args``. A stream longer than the build's
capacity runs as several chunks, each one checkpointable. ``runtime`` builds
the network per stream (debugging), ``genn`` one project per stream. Results
come out of the same code (`Backend.collect`) on every device.
"""

from pathlib import Path

import numpy as np

import brian2

from spikedyn_brian.cache import default_build_root
from spikedyn_brian.devices import BACKENDS, DEVICES, DeviceError, activate_device
from spikedyn_brian.devices.backends import (
    COMPILER_FLAGS,
    DEFAULT_SLOTS_PER_SAMPLE,
    parameters_hash,
    run_duration,
)
from spikedyn_brian.devices.checks import CudaOptions
from spikedyn_brian.models.equations import (
    learned_input_variables,
    learned_neuron_variables,
    learned_synapse_variables,
)
from spikedyn_brian.network import initial_weights
from spikedyn_brian.state import LearnedState, StateError, StreamResult, state_problem

__all__ = ["DEVICES", "LearnedState", "StreamResult", "Engine", "generate_project",
           "COMPILER_FLAGS", "parameters_hash"]


class Engine:
    """Build a network once on a device; run streams on it.

    Parameters
    ----------
    parameters : NetworkParameters
    device : str
        One of `DEVICES`. ``genn`` and ``cuda`` need their packages and
        hardware; a clear `DeviceError` is raised before anything is built
        when they are missing.
    build_root : str or Path, optional
        Where compiled builds live (default `default_build_root`); one
        subdirectory per configuration.
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
    cuda_options : CudaOptions, optional
        GPU id and compute capability of a ``cuda`` build.
    use_gpu : bool
        ``genn`` only: GeNN's CUDA backend (True) or its single-threaded CPU
        backend (False).
    formulation : {None, 'genn'}
        ``runtime`` only: build the network as formulated for GeNN, to check
        that formulation against the standard one without GeNN.
    build : bool
        Build at once (default); False leaves it to `build` (e.g. to write a
        project without compiling it).
    """

    def __init__(self, parameters, device="cpp_standalone", build_root=None, chunk_samples=1000,
                 threads=0, runtime_target="numpy", profile=False,
                 slots_per_sample=DEFAULT_SLOTS_PER_SAMPLE, cuda_options=None, use_gpu=False,
                 formulation=None, build=True):
        if device not in BACKENDS:
            raise ValueError(
                f"device {device!r} is not supported by this engine; choose one of "
                f"{', '.join(DEVICES)}"
            )
        if formulation not in (None, "genn") or (formulation and device != "runtime"):
            raise ValueError(
                f"formulation {formulation!r} is not available on device {device!r}: "
                "only the runtime device runs the 'genn' formulation"
            )
        if int(chunk_samples) < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples!r}")
        self.parameters = parameters
        self.device_name = device
        self.chunk_samples = int(chunk_samples)
        self.threads = int(threads)
        if self.threads > 1:
            from spikedyn_brian.devices.errors import MULTITHREADING_REFUSAL

            raise ValueError(f"threads={self.threads}: {MULTITHREADING_REFUSAL}")
        self.runtime_target = runtime_target
        self.profile = bool(profile)
        self.slots_per_sample = float(slots_per_sample)
        self.cuda_options = cuda_options or CudaOptions()
        self.use_gpu = bool(use_gpu)
        self.formulation = formulation
        self.build_root = Path(build_root) if build_root is not None else default_build_root()
        self.genn_builds = 0
        self.backend = BACKENDS[device](self)
        if build:
            self.backend.check()
            self.backend.build()

    def __repr__(self):
        where = self.build_directory
        where = f", build_directory='{where}'" if where else ""
        p = self.parameters
        return (f"Engine(variant={p.variant!r}, n_neurons={p.n_neurons}, "
                f"device={self.device_name!r}{where})")

    @property
    def build_directory(self):
        return self.backend.build_directory

    @property
    def build_seconds(self):
        return self.backend.build_seconds

    def run_duration(self, capacity):
        """Fixed run duration of a ``genn``/``cuda`` build holding ``capacity`` samples."""
        return run_duration(self.parameters, self.slots_per_sample, capacity)

    def close(self):
        """Remove this engine's run files (the build stays cached)."""
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def profiling_summary(self):
        """Brian2's per-code-object timing of the last run (needs ``profile=True``)."""
        return brian2.profiling_summary(self.backend.network.network)

    def initial_state(self, seed):
        """The untrained state: Diehl & Cook's random weights, theta at its start."""
        p = self.parameters
        weights = initial_weights(p, seed)
        theta = np.full(p.n_neurons, p.excitatory.theta_initial_mV * 1e-3)
        synapses = {name: np.zeros_like(weights) for name in learned_synapse_variables(p)}
        neurons = {name: np.zeros(p.n_neurons) for name in learned_neuron_variables(p)}
        inputs = {name: np.zeros(p.n_inputs) for name in learned_input_variables(p)}
        return LearnedState(weights, theta, synapses, neurons, inputs)

    def run_stream(self, images, state, plastic, seed, on_chunk=None, progress=None,
                   stream_offset=0):
        """Present a stream of images; return the responses and the new state.

        Parameters
        ----------
        images : ndarray (n_samples, n_inputs)
            Pixel values 0..255 in presentation order.
        state : LearnedState
            Learned state to start from (not modified).
        plastic : bool
            Learning on (STDP, adaptive threshold, normalisation) or off.
        seed : int
            Seed of the Poisson inputs (each chunk derives its own,
            `spikedyn_brian.seeds.chunk_seed`).
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
        # A state that does not fit the network would be handed to a compiled
        # program that cannot read it (Brian2 keeps the build-time values).
        problem = state_problem(state.arrays(), p)
        if problem:
            raise StateError(f"the learned state to start the stream from does not fit the "
                             f"network: {problem}; nothing was simulated")
        chunk = self.backend.chunk_size(len(images))
        parts = []
        state = state.copy()
        for first in range(0, len(images), chunk):
            # Compiled runs report the sample they are at while they run.
            reported = [0]

            def on_position(position):
                if position > reported[0]:
                    progress.update(position - reported[0])
                    reported[0] = position

            part = self.backend.run_chunk(images[first:first + chunk], state, plastic, seed,
                                          stream_offset + first,
                                          on_position=on_position if progress else None)
            state = part.state
            parts.append(part)
            if progress is not None:
                progress.update(len(part.presentations) - reported[0])
            if on_chunk is not None:
                on_chunk(stream_offset + first, part)
        from spikedyn_brian.phases import concatenate_results

        result = concatenate_results(parts)
        result.chunk_seconds = [x.simulation_seconds for x in parts]
        return result


def generate_project(parameters, device, directory, stream_capacity=1000, seed=0,
                     slots_per_sample=None, cuda_options=None, use_gpu=False):
    """Write the generated project of a training stream without compiling or running it.

    Parameters
    ----------
    parameters : NetworkParameters
    device : str
        A device that generates a project (`spikedyn_brian.devices.STANDALONE_DEVICES`).
    directory : str or Path
        Where the project is written (created).
    stream_capacity : int
        Samples one run of the project presents (``cpp_standalone``,
        ``cpp_dense`` and ``cuda`` take the pixels through ``run_args``;
        ``genn``, which has none, holds zero pixels in its stimulus table, to
        be replaced by the user).
    seed : int
        Seed of the initial weights written into a ``genn`` project.
    slots_per_sample : float, optional
        Slot budget of fixed-duration devices (default `DEFAULT_SLOTS_PER_SAMPLE`).

    Returns
    -------
    Path
        The project directory.
    """
    backend = BACKENDS.get(device)
    if backend is None or not backend.generates_project:
        raise DeviceError(
            f"device {device!r} generates no project; choose one of "
            f"{', '.join(name for name, b in BACKENDS.items() if b.generates_project)}"
        )
    engine = Engine(parameters, device, chunk_samples=stream_capacity,
                    slots_per_sample=slots_per_sample or DEFAULT_SLOTS_PER_SAMPLE,
                    cuda_options=cuda_options, use_gpu=use_gpu, build=False)
    engine.backend.check(compile=False, run=False)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        engine.backend.build(compile=False, directory=directory, seed=seed)
    finally:
        activate_device("runtime")
    return directory

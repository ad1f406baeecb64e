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
come out of the same code (`Backend.collect`) on every device. The engine is
the façade of its backend: protocols and benchmarks check, build, run and
close through it (`Engine.check`, `Engine.build`, `Engine.run_stream`), and
each device's own options (`spikedyn_brian.devices.registry`) reach the
backend through it.
"""

from pathlib import Path

import numpy as np

import brian2

from spikedyn_brian.cache import default_build_root
from spikedyn_brian.devices import BACKENDS, DEVICES, SPECS, DeviceError, activate_device
from spikedyn_brian.devices.backends import COMPILER_FLAGS, parameters_hash
from spikedyn_brian.devices.errors import MULTITHREADING_REFUSAL
from spikedyn_brian.models.equations import (
    learned_input_variables,
    learned_neuron_variables,
    learned_synapse_variables,
)
from spikedyn_brian.network import initial_weights
from spikedyn_brian.state import LearnedState, StateError, StreamResult, state_problem

__all__ = ["DEVICES", "LearnedState", "StreamResult", "Engine", "engine_for",
           "generate_project", "COMPILER_FLAGS", "parameters_hash"]


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
    profile : bool
        Brian2's per-code-object timing (`profiling_summary`).
    options : mapping or options dataclass, optional
        The device's own options (`spikedyn_brian.devices.registry`: e.g.
        ``slots_per_sample`` of ``genn`` and ``cuda``, ``gpu_id`` of ``cuda``,
        ``use_gpu`` of ``genn``, ``formulation='genn'`` of ``runtime``, to
        check the GeNN formulation without GeNN); ``**option_values`` are
        given the same way, as keywords, over them.
    build : bool
        Build at once (default); False leaves it to `build` (e.g. to write a
        project without compiling it).

    Raises
    ------
    ValueError
        For an unknown device, an option the device does not have, or a
        value out of range.
    """

    def __init__(self, parameters, device="cpp_standalone", build_root=None, chunk_samples=1000,
                 threads=0, profile=False, options=None, build=True, **option_values):
        if device not in BACKENDS:
            raise ValueError(
                f"device {device!r} is not supported by this engine; choose one of "
                f"{', '.join(DEVICES)}"
            )
        if int(chunk_samples) < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples!r}")
        self.parameters = parameters
        self.device_name = device
        self.chunk_samples = int(chunk_samples)
        self.threads = int(threads)
        if self.threads > 1:
            raise ValueError(f"threads={self.threads}: {MULTITHREADING_REFUSAL}")
        self.profile = bool(profile)
        self.options = SPECS[device].make_options(options, **option_values)
        self.build_root = Path(build_root) if build_root is not None else default_build_root()
        self.backend = BACKENDS[device](self, self.options)
        if build:
            self.check()
            self.build()

    def __repr__(self):
        where = self.build_directory
        where = f", build_directory='{where}'" if where else ""
        p = self.parameters
        return (f"Engine(variant={p.variant!r}, n_neurons={p.n_neurons}, "
                f"device={self.device_name!r}{where})")

    # The build: what every stream of this engine runs on.
    def check(self, compile=True, run=True):
        """Raise a `DeviceError` when the device cannot build (with ``compile``) and run
        (with ``run``) the network: before anything is built."""
        self.backend.check(compile=compile, run=run)

    @property
    def builds_once(self):
        """Whether one compiled build serves every stream (the build is worth announcing)."""
        return self.backend.spec.builds_once

    def is_built(self):
        """Whether the cached build of this configuration has a program already."""
        return self.backend.is_built()

    def build(self, compile=True, directory=None, seed=0):
        """Generate (and, with ``compile``, compile) what every stream runs on.

        Nothing for devices that build per chunk. ``directory`` receives the
        project (default: the cached build directory of this configuration);
        ``seed`` seeds the initial weights of a project that holds them (GeNN).
        Returns the build directory (None where nothing is built once).
        """
        self.backend.build(compile=compile, directory=directory, seed=seed)
        return self.build_directory

    def build_status(self):
        """A few words on how far a build under way is (e.g. sources compiled), or ''."""
        return self.backend.build_status()

    def write_project(self, directory, seed=0):
        """Write the generated project to ``directory`` without compiling or running it."""
        self.check(compile=False, run=False)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.build(compile=False, directory=directory, seed=seed)
        finally:
            activate_device("runtime")
        return directory

    @property
    def build_directory(self):
        return self.backend.build_directory

    @property
    def build_seconds(self):
        return self.backend.build_seconds

    @property
    def results_directory(self):
        """Where this engine's compiled runs write their results (None before a build)."""
        return self.backend.results_path()

    def run_duration(self, capacity):
        """Fixed run duration of a ``genn``/``cuda`` build holding ``capacity`` samples."""
        return self.backend.run_duration(capacity)

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
        result = StreamResult.concatenate(parts)
        result.chunk_seconds = [x.simulation_seconds for x in parts]
        return result


def engine_for(parameters, device, **arguments):
    """An `Engine` (not built yet) on ``device``, or on the device's fallback where it
    cannot run ``parameters``; and the one-line note that says so ('' where it can).

    The decision is the device's (`~spikedyn_brian.devices.registry.DeviceSpec.serving`):
    ``cpp_dense`` hands a network with input delays to ``cpp_standalone``.
    ``arguments`` go to `Engine`.
    """
    spec, note = SPECS[device].serving(parameters)
    return Engine(parameters, spec.name, build=False, **arguments), note


def generate_project(parameters, device, directory, stream_capacity=1000, seed=0,
                     options=None, **option_values):
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
    options, **option_values
        The device's options, as for `Engine` (e.g. ``slots_per_sample`` of
        fixed-duration devices, ``compute_capability`` of ``cuda``).

    Returns
    -------
    Path
        The project directory.
    """
    spec = SPECS.get(device)
    if spec is None or not spec.generates_project:
        raise DeviceError(
            f"device {device!r} generates no project; choose one of "
            f"{', '.join(name for name, s in SPECS.items() if s.generates_project)}"
        )
    engine = Engine(parameters, device, chunk_samples=stream_capacity, options=options,
                    build=False, **option_values)
    return engine.write_project(directory, seed=seed)

"""One backend class per device: how the engine builds and runs a network there.

Every backend has the same interface — `Backend.build` (generate, and compile
where the device compiles), `Backend.run_chunk` (one run of a stream chunk,
returning a `StreamResult`) and the shared `Backend.collect` (per-sample
responses from the monitors, the same on every device) — and is registered
in `BACKENDS`, the way Brian2 registers its ``Device`` subclasses in
``all_devices``. Each carries its device's entry of the registry (``spec``,
`spikedyn_brian.devices.registry`: name, options dataclass, formulation,
capabilities, what it refuses) and gets the options object of the engine's
run. The engine delegates to its backend and never asks which device it is
on; what differs between devices (Brian2 device, preferences, formulation of
the models, how data reach a run, how a run ends) lives in the backend
classes and their specs.

==================  ==========================  ================================
backend             Brian2 device               formulation
==================  ==========================  ================================
``runtime``         ``runtime`` (numpy)         standard, built per chunk
``cpp_standalone``  ``cpp_standalone``          standard, built once, run_args
``cpp_dense``       ``cpp_dense`` (this         standard, built once, run_args,
                    package's, `dense`)         dense input pathway
``cuda``            ``cuda_standalone``         CUDA (fixed duration, atomics)
``genn``            ``genn`` (brian2genn)       GeNN, one project per chunk
==================  ==========================  ================================
"""

import contextlib
import copy
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
from brian2 import second
from brian2.devices.device import get_device

from spikedyn_brian.devices import checks
from spikedyn_brian.devices.errors import DeviceError
from spikedyn_brian.devices.registry import DEFAULT_SLOTS_PER_SAMPLE, MAXIMUM_RUN_SECONDS, SPECS
from spikedyn_brian.models.equations import presentation_slot, runaway_spikes
from spikedyn_brian.models.formulation import GENN
from spikedyn_brian.models.parameters import as_dict
from spikedyn_brian.network import POSITION_PREFIX, build_network
from spikedyn_brian.seeds import chunk_seed
from spikedyn_brian.state import StreamResult

__all__ = [
    "Backend",
    "RunawayError",
    "ProgramInputError",
    "RuntimeBackend",
    "CppStandaloneBackend",
    "DenseBackend",
    "CudaBackend",
    "GennBackend",
    "BACKENDS",
    "COMPILER_FLAGS",
    "DEFAULT_SLOTS_PER_SAMPLE",
    "activate_device",
    "set_preference_if_registered",
    "device_scope",
    "parameters_hash",
]

#: gcc flags of the compiled program. Brian2's defaults add
#: ``-fno-finite-math-only``, which hides glibc's vectorised ``exp`` from gcc,
#: and gcc's default limit on alias checks stops it from vectorising the
#: excitatory state update (9 arrays). With these flags every neuron update
#: loop is vectorised; the models never produce inf or NaN. No fused
#: multiply-adds, no reassociation and no reciprocals: which of them gcc
#: applies depends on how a loop is vectorised and what it can hoist out of
#: it, so without them the dense pathways of ``cpp_dense`` and Brian2's
#: generic ones compute bit-identical results.
COMPILER_FLAGS = (
    "-w",
    "-O3",
    "-ffast-math",
    "-ffp-contract=off",
    "-fno-associative-math",
    "-fno-reciprocal-math",
    "-march=native",
    "-std=c++11",
    "--param=vect-max-version-for-alias-checks=200",
)

#: Wall-clock seconds between two looks of the CUDA host loop at the
#: controller's ``stopped`` flag (an early end of the fixed-duration run).
CUDA_STOP_CHECK_SECONDS = 0.05

#: Upper bound of one compiled run; the controller stops the run when its
#: stream is done, long before (1e6 s of biological time).
MAXIMUM_RUN_DURATION = MAXIMUM_RUN_SECONDS * second


#: Compiler output of a build, in its build directory.
MAKE_LOG = "make.log"

#: Wall-clock seconds between two looks at a compiled run's position reports.
PROGRESS_SECONDS = 1.0


def _keep_the_shells_interrupt_disposition():
    """Brian2 replaces the SIGINT handler at import and calls the one it found on Ctrl-C.

    A process a shell started with SIGINT ignored (a background job, ``nohup``)
    had ``SIG_IGN`` there, which Brian2 then calls (``TypeError: 'Handlers'
    object is not callable``) when a SIGINT arrives. Such a process keeps
    ignoring SIGINT, as the shell asked; one with the default disposition
    (``SIG_DFL``) is ended by it, as without Brian2.
    """
    import signal

    handler = getattr(brian2, "_int_handler", None)
    previous = getattr(handler, "previous_handler", signal.default_int_handler)
    if previous is signal.SIG_IGN:
        try:
            if signal.getsignal(signal.SIGINT) is handler:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: the handler ignores it instead
            pass
        handler.previous_handler = lambda signalnum, frame: None
    elif previous is signal.SIG_DFL or previous is None:
        def default(signalnum, frame):
            signal.signal(signalnum, signal.SIG_DFL)
            os.kill(os.getpid(), signalnum)

        handler.previous_handler = default


_keep_the_shells_interrupt_disposition()


class RunawayError(RuntimeError):
    """A run produced impossible values: NaN or infinite state, or runaway spiking."""


class ProgramInputError(DeviceError):
    """The compiled program could not read one of its input files (it was stopped at once)."""


#: What Brian2's standalone code prints to stderr when a run_args file cannot be
#: used (``set_variable_from_file`` in ``objects.cpp``): it then keeps the
#: variable's build-time values and carries on, so the run is stopped.
PROGRAM_INPUT_ERRORS = ("Error reading '", "Could not read '")


def parameters_hash(parameters, extra=()):
    """Short stable hash of a parameter set (names a build directory)."""
    text = json.dumps([as_dict(parameters), list(extra)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------- Brian2 devices
#: Brian2 preferences that some backend sets, and their values before any
#: did: every activation starts from these, so a cuda build's link
#: directories never reach a later cpp_standalone build of the same process.
_DEVICE_PREFERENCES = (
    "codegen.cpp.library_dirs",
    "codegen.cpp.runtime_library_dirs",
    "codegen.cpp.extra_compile_args_gcc",
    "devices.cpp_standalone.openmp_threads",
    "devices.cpp_standalone.extra_make_args_unix",
    "logging.std_redirection_to_file",
)
_PREFERENCES_BEFORE = {name: copy.deepcopy(brian2.prefs[name]) for name in _DEVICE_PREFERENCES}


def set_preference_if_registered(name, value):
    """Set Brian2 preference ``name`` where this Brian2 version registers it.

    Returns whether it was set. Preferences newer than the oldest Brian2 the
    package supports (2.5, brian2genn's) are set through this helper only.
    """
    try:
        brian2.prefs[name]
    except KeyError:  # brian2's PreferenceError ("... is unregistered")
        return False
    brian2.prefs[name] = value
    return True


def activate_device(name, directory=None, **options):
    """Make Brian2 device ``name`` current, from a clean slate; return it.

    Resets Brian2's device state and collects dead networks first (Brian2
    suffixes the name of a code object whose name a live object still holds,
    so generated code must not depend on what the process did before), and
    restores the device preferences backends set. ``options`` go to
    ``brian2.set_device``.
    """
    brian2.device.reinit()
    gc.collect()
    brian2.device.activate()
    for preference, value in _PREFERENCES_BEFORE.items():
        brian2.prefs[preference] = copy.deepcopy(value)
    # Ctrl-C interrupts (KeyboardInterrupt; the compiled program gets the
    # signal too) instead of Brian2's "stop at the end of this time step",
    # which would let a checkpointed run carry on. (The preference is newer
    # than brian2 2.5, the GeNN environment's: there Ctrl-C always interrupts.)
    set_preference_if_registered("core.stop_on_keyboard_interrupt", False)
    # The compiler's output goes to the build's make.log (shown when a build
    # fails), not to the terminal or to temporary files Brian2 would leave
    # behind in /tmp.
    brian2.prefs.logging.std_redirection_to_file = False
    brian2.prefs.devices.cpp_standalone.extra_make_args_unix = [
        *brian2.prefs.devices.cpp_standalone.extra_make_args_unix, f">{MAKE_LOG}", "2>&1"]
    if name == "runtime":
        brian2.set_device("runtime")
    else:
        brian2.set_device(name, directory=None if directory is None else str(directory),
                          **options)
    return get_device()


@contextlib.contextmanager
def device_scope(name, directory=None, **options):
    """`activate_device` for the duration of a ``with`` block; then the runtime device."""
    try:
        yield activate_device(name, directory, **options)
    finally:
        activate_device("runtime")


# ----------------------------------------------------------------------- backends
class Backend:
    """How the engine builds and runs a network on one device.

    Subclasses set `spec` and implement `build` and `run_chunk`; `collect`
    is shared.

    Parameters
    ----------
    engine : Engine
        The engine the backend serves: its ``parameters``, ``chunk_samples``,
        ``build_root``, ``threads`` and ``profile``.
    options : dataclass
        The device's options (an instance of ``spec.options``).
    """

    #: The device's entry of the registry (`spikedyn_brian.devices.registry.SPECS`).
    spec = None

    def __init__(self, engine, options):
        self.engine = engine
        self.options = options
        self.parameters = engine.parameters
        #: How the models are written for this run (the spec's formulation).
        self.formulation = self.spec.formulation
        self.network = None
        self.device = None
        self.build_directory = None
        self.build_seconds = None

    def __repr__(self):
        return (f"{type(self).__name__}(variant={self.parameters.variant!r}, "
                f"n_neurons={self.parameters.n_neurons}, "
                f"build_directory={None if self.build_directory is None else str(self.build_directory)!r})")

    @property
    def name(self):
        """Engine device name (``--device``)."""
        return self.spec.name

    @property
    def brian2_name(self):
        return self.spec.brian2_name

    # What a device needs: checked before anything is built.
    def check(self, compile=True, run=True):
        """Raise a `DeviceError` when this device cannot build (and run) the network."""
        refusal = self.spec.refusal(self.parameters)
        if refusal:
            raise DeviceError(refusal)

    def chunk_size(self, n_images):
        """Most samples of one run (the whole stream where nothing is compiled once)."""
        return self.engine.chunk_samples if self.spec.builds_once else n_images

    def is_built(self):
        """Whether the cached build of this configuration has a program already."""
        return False

    def build_status(self):
        """How far a build under way is, in a few words ('' where nothing is said)."""
        return ""

    def results_path(self):
        """Where the compiled runs of this backend write their results (None: nowhere)."""
        return None

    def run_duration(self, capacity):
        """Fixed run duration of a fixed-duration build holding ``capacity`` samples."""
        return run_duration(self.parameters, self.options.slots_per_sample, capacity)

    def build(self, compile=True, directory=None, seed=0):
        """Generate (and compile) what every stream runs on; nothing for per-chunk devices.

        ``directory`` receives the project (default: the backend's own build
        directory); ``seed`` seeds the initial weights of a device whose
        project holds them (GeNN).
        """

    def run_chunk(self, images, state, plastic, seed, first, on_position=None):
        """Run one chunk of a stream; return its `StreamResult`.

        ``on_position(k)``, where the device reports it, is called while the
        run goes on with the number of samples done so far.
        """
        raise NotImplementedError

    def close(self):
        """Remove what the backend wrote for its runs (builds stay cached)."""

    def idle_slot_hint(self):
        """Advice when a run's fixed slot budget ran out (fixed-duration devices)."""
        return ""

    def collect(self, n_samples, elapsed, first=0):
        """Per-sample responses from the monitors (the same on every device).

        ``first`` is the stream position of the chunk's first sample (for
        error messages). Raises a `RunawayError` when a presentation drove
        more spikes than a working network can (the controller then ended the
        run there) or the learned state is not finite.
        """
        net = self.network
        presentation = self.parameters.inputs.presentation_ms * 1e-3
        record_times = np.asarray(net.slot_monitor.t / second)
        index = np.asarray(net.slot_monitor.index[0], dtype=np.int64)
        intensity = np.asarray(net.slot_monitor.intensity[0], dtype=float)
        counts = np.asarray(net.slot_monitor.count[0], dtype=np.int64)
        limit = runaway_spikes(self.parameters)
        if (counts > limit).any():
            # Record k describes the slot that started at record k - 1.
            slot = int(np.flatnonzero(counts > limit)[0])
            raise RunawayError(
                f"sample {first + int(index[slot])} of the stream drove {int(counts[slot])} "
                f"excitatory spikes in one presentation (more than {limit}, "
                f"{self.parameters.inputs.runaway_spikes_per_neuron:g} per neuron): the "
                "integration ran away. Forward Euler needs the original's input delays "
                "(docs/models.md); use integration_method = 'exponential_euler' or "
                "plasticity.max_input_delay_ms = 10")
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
        np.add.at(counts_per_slot,
                  (slot_of_spike[in_presentation], spike_neurons[in_presentation]), 1)
        valid = slot_index < n_samples
        # The accepted presentation of a sample is its last slot.
        accepted = np.zeros(n_samples, dtype=np.int64) - 1
        presentations = np.bincount(slot_index[valid], minlength=n_samples)[:n_samples]
        last_slot = np.flatnonzero(valid)
        accepted[slot_index[last_slot]] = last_slot  # later slots overwrite earlier ones
        if np.any(accepted < 0):
            missing = int(np.sum(accepted < 0))
            raise RuntimeError(
                f"{missing} of {n_samples} samples were never presented: the run ended "
                f"before the stream did{self.idle_slot_hint()}"
            )
        state = net.read_state()
        _check_finite(state, first, n_samples)
        return StreamResult(
            spike_counts=counts_per_slot[accepted],
            presentations=presentations.astype(np.int64),
            final_intensity=slot_intensity[accepted],
            state=state,
            simulation_seconds=elapsed,
            slots=int(valid.sum()),
            spikes_total=int(len(spike_times)),
            input_spikes_total=int(net.controller.input_spike_total[0]),
            inhibitory_spikes_total=int(net.controller.inhibitory_spike_total[0]),
        )


def _check_finite(state, first, n_samples):
    """Raise a `RunawayError` naming the variable when a learned array is not finite."""
    for name, values in state.arrays().items():
        bad = ~np.isfinite(values)
        if bad.any():
            raise RunawayError(
                f"{int(bad.sum())} non-finite values (NaN or infinite) in '{name}' after the "
                f"samples {first} to {first + n_samples - 1} of the stream: the integration "
                "became unstable; check the time constants against dt, or use "
                "integration_method = 'exponential_euler'")


class RuntimeBackend(Backend):
    """Brian2's Python runtime: the network is built and run per chunk (debugging).

    With ``formulation='genn'`` (an engine option) it runs the GeNN
    formulation, to check it against the standard one without GeNN.
    """

    spec = SPECS["runtime"]

    def __init__(self, engine, options):
        super().__init__(engine, options)
        if options.formulation == "genn":
            self.formulation = GENN

    def run_chunk(self, images, state, plastic, seed, first, on_position=None):
        activate_device("runtime")
        brian2.prefs.codegen.target = self.options.target
        brian2.seed(chunk_seed(seed, first))
        net = build_network(self.parameters, len(images), stimulus_values=images,
                            formulation=self.formulation)
        net.apply_state(state, plastic, len(images))
        duration = MAXIMUM_RUN_DURATION
        if self.formulation.end_of_stream == "idle":
            duration = self.run_duration(len(images))
        self.network = net
        start = time.perf_counter()
        net.network.run(duration, namespace={}, profile=self.engine.profile)
        return self.collect(len(images), time.perf_counter() - start, first)

    def idle_slot_hint(self):
        if self.formulation.end_of_stream != "idle":
            return ""
        return (" (the fixed slot budget of the GeNN formulation; give the Engine a larger "
                f"slots_per_sample, e.g. {2 * self.options.slots_per_sample:g})")


class CppStandaloneBackend(Backend):
    """Brian2's C++ standalone: compiled once per configuration, streams through run_args.

    The build directory is keyed by a hash of the parameters, so an unchanged
    configuration is not compiled again; several processes building the
    same configuration take turns (a file lock). Each engine writes its
    results to its own directory, so processes sharing a build can run the
    binary at the same time.
    """

    spec = SPECS["cpp_standalone"]

    def build_key(self):
        """What the build directory's name hashes, besides the parameters."""
        engine = self.engine
        return (engine.chunk_samples, engine.threads, engine.profile, brian2.__version__)

    def build_name(self):
        return f"{self.parameters.variant}-{parameters_hash(self.parameters, self.build_key())}"

    def is_built(self):
        return (Path(self.engine.build_root) / self.build_name() / "main").exists()

    def build_status(self):
        """``'make: 12 of 31 sources'`` while make runs (from this build's log), else ''."""
        directory, started = self.build_directory, getattr(self, "build_started", None)
        if directory is None or started is None:
            return ""
        log = directory / MAKE_LOG
        try:
            if log.stat().st_mtime < started:  # an earlier build's
                return ""
            text = log.read_text(errors="replace")
        except OSError:
            return ""
        compiles = sum(1 for line in text.splitlines() if " -c " in line)
        if not compiles:
            return ""
        sources = sum(1 for _ in directory.rglob("*.cpp"))
        return f"make: {min(compiles, sources)} of {sources} sources"

    def results_path(self):
        results = getattr(self, "results_directory", None)
        if self.build_directory is None or results is None:
            return None
        return self.build_directory / results

    def device_options(self, compile):
        return {"build_on_run": False}

    def configure(self):
        """Brian2 preferences of the build (after the device is activated)."""
        brian2.prefs.codegen.cpp.extra_compile_args_gcc = list(COMPILER_FLAGS)
        brian2.prefs.devices.cpp_standalone.openmp_threads = self.engine.threads

    def build(self, compile=True, directory=None, seed=0):
        """Generate and compile (with ``compile``) the stream program.

        ``directory`` (default: the cached build directory of this
        configuration under the engine's build root) receives the project.
        """
        self.build_started = time.time()
        self.build_directory = Path(directory) if directory is not None else (
            Path(self.engine.build_root) / self.build_name())
        self.build_directory.mkdir(parents=True, exist_ok=True)
        self.device = activate_device(self.brian2_name, self.build_directory,
                                      **self.device_options(compile))
        self.configure()
        start = time.perf_counter()
        # Several processes (Dask workers) may build the same configuration:
        # one builds, the others wait and find the object files up to date.
        with open(self.build_directory / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _remove_dead_runs(self.build_directory)
                self.network = self._generate(compile)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self.build_seconds = time.perf_counter() - start
        # One spare stimulus row holds a per-engine nonce (never presented);
        # the nonce also names this engine's run files (`_private_run_args`).
        self.nonce = uuid.uuid4().int % 2**52
        self.results_directory = f"results-{os.getpid()}-{self.nonce:x}"
        return self.network

    def _seed_code(self, net):
        """C++ that seeds the random generators from the run's seed (run_args)."""
        seed_array = self.device.get_array_name(net.controller.variables["random_seed"])
        generators = max(self.engine.threads, 1)
        return (f"for (int _i=0; _i<{generators}; _i++) brian::_random_generators[_i]"
                f".seed((unsigned long){seed_array}[0] * 1000003UL + _i);")

    def _generate(self, compile):
        net = build_network(self.parameters, self.engine.chunk_samples + 1,
                            formulation=self.formulation)
        self.device.apply_run_args()
        self.device.insert_code("main", self._seed_code(net))
        # No Brian2 report function: its loop would look at the clock before
        # every code object of every step; the controller reports instead
        # (`spikedyn_brian.network.report_position`).
        net.network.run(MAXIMUM_RUN_DURATION, namespace={}, profile=self.engine.profile)
        _compile(self.device, self.build_directory, compile)
        return net

    def run_chunk(self, images, state, plastic, seed, first, on_position=None):
        net = self.network
        n = len(images)
        stimulus = np.zeros((self.engine.chunk_samples + 1, self.parameters.n_inputs))
        stimulus[:n] = images
        stimulus[-1, 0] = self.nonce
        run_args, files = self._private_run_args(
            net.run_args(state, plastic, n, chunk_seed(seed, first), stimulus))
        # This engine's own link to the binary: a process that rebuilds the
        # shared build (and relinks ./main) never replaces a running binary.
        # The program dies with this process (parent-death signal).
        # Its stderr goes to a file that is watched: a program that cannot read
        # an input file is stopped at once (`PROGRAM_INPUT_ERRORS`).
        binary = self._private_binary().name
        results = (self.build_directory / self.results_directory).absolute()
        command = _capturing_stderr(_with_parent_death_signal([f"./{binary}"]),
                                    results / "stderr.txt", results / "program.pid")
        watcher = _PositionWatcher(results / "stdout.txt", on_position,
                                   stderr_path=results / "stderr.txt",
                                   pid_path=results / "program.pid", program=binary)
        start = time.perf_counter()
        default_command = brian2.prefs.devices.cpp_standalone.run_cmd_unix
        try:
            brian2.prefs.devices.cpp_standalone.run_cmd_unix = command
            with watcher:
                try:
                    self.device.run(directory=str(self.build_directory),
                                    results_directory=self.results_directory,
                                    with_output=False, run_args=run_args)
                except RuntimeError:
                    watcher.raise_input_error(first, n)
                    raise
        finally:
            brian2.prefs.devices.cpp_standalone.run_cmd_unix = default_command
            for path in files:
                path.unlink(missing_ok=True)
        watcher.raise_input_error(first, n)
        watcher.forward_stderr()
        elapsed = time.perf_counter() - start
        # Brian2 remembers the shape of 2-D dynamic arrays (StateMonitor
        # records) from the previous run of the binary and then refuses a
        # record of another length: let it infer the length again.
        for variable in net.slot_monitor.variables.values():
            size = getattr(variable, "size", None)
            if isinstance(size, tuple) and len(size) == 2:
                variable.size = (0, size[1])
        return self.collect(n, elapsed, first)

    def _private_run_args(self, run_args):
        """``run_args`` as command-line values, array values in files of this engine only.

        Brian2 names a run_args file by the MD5 of its content, in the build's
        shared ``static_arrays/``: two processes running the same build with
        equal arrays (the initial θ of every seed, say) would share the file,
        and the first to finish and remove it would leave the other's program
        reading nothing ("Error reading …", the variable silently kept at its
        build-time value). Here every array goes to a file named after this
        engine's results directory, removed after the run (and by
        `_remove_dead_runs` when the process died).

        Returns
        -------
        arguments : list of str
            ``name=value`` arguments for ``device.run``.
        files : list of Path
            The array files written.
        """
        from brian2.input.timedarray import TimedArray

        static = self.build_directory / "static_arrays"
        arguments, files = [], []
        for key, value in run_args.items():
            prepare = (self.device._prepare_timed_array_run_arg if isinstance(key, TimedArray)
                       else self.device._prepare_variableview_run_arg)
            name, string_value, value_name, array = prepare(key, value)
            if value_name:
                private = f"{self.results_directory}-{value_name}"
                files.append(static / private)
                array.tofile(files[-1])
                string_value = os.path.join("static_arrays", private)
            arguments.append(f"{name}={string_value}")
        return arguments, files

    def _private_binary(self):
        """A hard link (or copy) of the build's ``main`` for this engine's runs."""
        private = self.build_directory / f"main-{self.results_directory}"
        if not private.exists():
            try:
                os.link(self.build_directory / "main", private)
            except OSError:
                shutil.copy2(self.build_directory / "main", private)
        return private

    def close(self):
        if self.build_directory is not None and getattr(self, "results_directory", None):
            shutil.rmtree(self.build_directory / self.results_directory, ignore_errors=True)
            (self.build_directory / f"main-{self.results_directory}").unlink(missing_ok=True)


class DenseBackend(CppStandaloneBackend):
    """C++ standalone with the dense input pathway of this package's device (`dense`).

    The input → excitatory synapses must be dense (all-to-all, no input
    delays): the device refuses them otherwise. Results are identical to
    ``cpp_standalone``'s.
    """

    spec = SPECS["cpp_dense"]

    def build_name(self):
        return f"{super().build_name()}-dense"

    def device_options(self, compile):
        from spikedyn_brian.devices import dense  # noqa: F401  (registers 'cpp_dense')

        return {"build_on_run": False, "require_dense": ["input_synapses"]}


class CudaBackend(CppStandaloneBackend):
    """brian2cuda: the same build-once engine on an NVIDIA GPU, with a fixed slot budget.

    CUDA has no stop function: a run lasts ``ceil(slots_per_sample ×
    chunk) + 1`` slots, the controller idles once the stream is done, and the
    host loop ends the run early when it sees the controller's ``stopped``
    flag (`CUDA_STOP_CHECK_SECONDS`).
    """

    spec = SPECS["cuda"]

    def check(self, compile=True, run=True):
        try:
            import brian2cuda  # noqa: F401  (registers 'cuda_standalone')
        except ImportError as error:
            raise DeviceError(f"device 'cuda' needs brian2cuda: {checks.CUDA_INSTALL_HINT} "
                              f"({error})") from None
        if compile:
            checks.check_cuda_compiler()
        if run and not checks.cuda_gpu_present():
            raise DeviceError(
                "device 'cuda' needs an NVIDIA GPU to run (nvidia-smi lists none); "
                "generate the project with `spikedyn codegen --device cuda` and run it "
                "on a GPU machine"
            )

    def build_key(self):
        return super().build_key() + ("cuda", self.options.slots_per_sample,
                                      self.options.compute_capability)

    def build_name(self):
        return f"{self.parameters.variant}-cuda-{parameters_hash(self.parameters, self.build_key())}"

    def configure(self):
        checks.set_cuda_preferences(self.build_directory, self.options)

    def _generate(self, compile):
        net = build_network(self.parameters, self.engine.chunk_samples + 1,
                            formulation=self.formulation)
        seed_array = self.device.get_array_name(net.controller.variables["random_seed"])
        # brian2cuda's main has no apply_run_args slot: the run_args values are
        # applied before the network run; applying them once more just before
        # seeding lets the seed come from run_args too.
        self.device.insert_code(
            "before_network_run",
            "set_from_command_line(args);\n"
            f"random_number_buffer.set_seed((unsigned long long){seed_array}[0] * 1000003ULL);",
        )
        net.network.run(self.run_duration(self.engine.chunk_samples), namespace={},
                        profile=self.engine.profile, report=self._stop_check(net),
                        report_period=CUDA_STOP_CHECK_SECONDS * second)
        _compile(self.device, self.build_directory, compile)
        return net

    def _stop_check(self, net):
        """C++ body of the report function that ends a CUDA run early.

        Brian2CUDA calls the report function from its host loop every
        `CUDA_STOP_CHECK_SECONDS` of wall-clock time; it copies the
        controller's ``stopped`` flag from the GPU and sets the network's stop
        flag, so a run ends at most that much wall-clock time after its
        stream, well before its fixed slot budget. The results do not depend
        on when it ends: after the stream the controller idles.
        """
        stopped = self.device.get_array_name(net.controller.variables["stopped"],
                                             access_data=False)
        return (
            "int32_t _spikedyn_stopped = 0;\n"
            f"cudaMemcpy(&_spikedyn_stopped, brian::dev{stopped}, sizeof(int32_t), "
            "cudaMemcpyDeviceToHost);\n"
            "if (_spikedyn_stopped) Network::_globally_stopped = true;"
        )

    def idle_slot_hint(self):
        return (f" (the fixed slot budget of a cuda run; give the Engine a larger "
                f"slots_per_sample, e.g. {2 * self.options.slots_per_sample:g})")


class GennBackend(Backend):
    """brian2genn: one GeNN project per chunk, its data as initial values (no run_args).

    GeNN draws the Poisson inputs with its own generator, which Brian2's
    seed does not reach: the same seed does not give the same input spikes as
    on the other devices. brian2genn builds only from within ``run``
    (``build_on_run``), so the run of the network generates the project, and
    compiles and runs it.
    """

    spec = SPECS["genn"]

    def check(self, compile=True, run=True):
        super().check(compile, run)
        major_minor = tuple(int(x) for x in brian2.__version__.split(".")[:2])
        if major_minor >= (2, 6):
            raise DeviceError(f"device 'genn' cannot run with brian2 {brian2.__version__}: "
                              f"{checks.GENN_INSTALL_HINT}")
        try:
            import brian2genn  # noqa: F401  (registers 'genn')
        except ImportError as error:
            raise DeviceError(f"device 'genn' needs brian2genn: {checks.GENN_INSTALL_HINT} "
                              f"({error})") from None
        if compile and checks.genn_path() is None:
            raise DeviceError(
                "device 'genn' needs GeNN 4.x: build it outside this repository (plain "
                "`make` in src/genn/genn and src/genn/backends/single_threaded_cpu, or the "
                "CUDA backend) and set GENN_PATH to its directory; `spikedyn codegen "
                "--device genn` writes the project without GeNN"
            )
        if run and self.options.use_gpu and not checks.cuda_gpu_present():
            raise DeviceError("device 'genn' with use_GPU=True needs an NVIDIA GPU; run "
                              "GeNN's single-threaded CPU backend with use_gpu=False")

    def _device_options(self, compile=True, run=True):
        from spikedyn_brian.devices import genn_support

        genn_support.patch()
        return {"build_on_run": True, "use_GPU": self.options.use_gpu,
                "compile": bool(compile), "run": bool(run), "with_output": False}

    def _network(self, images, state, plastic):
        net = build_network(self.parameters, len(images), stimulus_values=images,
                            formulation=self.formulation)
        net.apply_state(state, plastic, len(images))
        self.network = net
        return net

    def build(self, compile=True, directory=None, seed=0):
        """Write the project of a training stream of zero pixels (``codegen``)."""
        if directory is None:
            return None
        self.build_directory = Path(directory)
        self.device = activate_device("genn", directory,
                                      **self._device_options(compile=compile, run=False))
        images = np.zeros((self.engine.chunk_samples, self.parameters.n_inputs))
        net = self._network(images, self.engine.initial_state(seed), plastic=True)
        net.network.run(self.run_duration(len(images)), namespace={})
        return net

    def run_chunk(self, images, state, plastic, seed, first, on_position=None):
        directory = (Path(self.engine.build_root)
                     / f"{self.parameters.variant}-genn-{os.getpid()}-{first}")
        self.build_directory = directory
        with device_scope("genn", directory, **self._device_options()) as device:
            self.device = device
            net = self._network(images, state, plastic)
            start = time.perf_counter()
            net.network.run(self.run_duration(len(images)), namespace={})
            total = time.perf_counter() - start
            # Simulation alone: GeNN's own timing of the run (brian2genn's
            # last_run_info); the build (code generation + compilation) is the rest.
            info = getattr(self.device, "_last_run_time", None)
            elapsed = float(info) if info else total
            self.build_seconds = total - elapsed if info else None
            return self.collect(len(images), elapsed, first)

    def idle_slot_hint(self):
        return (f" (the fixed slot budget of a genn run; give the Engine a larger "
                f"slots_per_sample, e.g. {2 * self.options.slots_per_sample:g})")


def _compile(device, directory, compile):
    """Write (and compile) the project; a failed compilation names its log."""
    try:
        device.build(directory=str(directory), compile=compile, run=False, with_output=False)
    except RuntimeError as error:
        log = Path(directory) / MAKE_LOG
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise DeviceError(f"{error} The compiler's output is in '{log}'; its end:\n{tail}"
                          ) from None


def _remove_dead_runs(build_directory):
    """Remove the run files (results directory, binary, run_args arrays) of dead processes.

    A run's files carry its process id (``results-<pid>-<nonce>``,
    ``main-results-<pid>-<nonce>``, ``static_arrays/results-<pid>-<nonce>-*``);
    a process killed before it could close its engine leaves them behind.
    """
    for leftover in (list(build_directory.glob("results-*-*"))
                     + list(build_directory.glob("main-results-*-*"))
                     + list(build_directory.glob("static_arrays/results-*-*"))):
        parts = leftover.name.split("-")
        try:
            pid = int(parts[parts.index("results") + 1])
        except (ValueError, IndexError):
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        except PermissionError:
            pass  # alive, another user's


def _with_parent_death_signal(command):
    """``command`` run so that it dies with its parent (``setpriv --pdeathsig KILL``).

    Without ``setpriv`` (util-linux) the command runs as it is.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *command] if setpriv else list(command)


def _capturing_stderr(command, stderr_path, pid_path):
    """``command`` run by a shell that writes its process id to ``pid_path`` and sends its
    stderr to ``stderr_path`` (``exec``: the program keeps the shell's process id and
    parent, so the parent-death signal still applies)."""
    return ["/bin/sh", "-c", 'echo $$ > "$1"; exec 2> "$2"; shift 2; exec "$@"',
            "spikedyn-run", str(pid_path), str(stderr_path), *command]


class _PositionWatcher:
    """Reads a compiled run's position reports and its stderr while it runs (a thread).

    The program prints ``spikedyn-position <sample>`` to its stdout file at
    most once per second (`spikedyn_brian.network.report_position`);
    ``on_position(sample)`` is called with the latest. With ``stderr_path``,
    a line of `PROGRAM_INPUT_ERRORS` there (an input file the program could
    not read) kills the program at once (its process id in ``pid_path``,
    checked to be ``program``'s) and is kept in `input_error`.
    """

    #: Seconds between two looks at the stderr file.
    STDERR_SECONDS = 0.05

    def __init__(self, path, on_position, stderr_path=None, pid_path=None, program=None):
        self.path = Path(path)
        self.on_position = on_position
        self.stderr_path = None if stderr_path is None else Path(stderr_path)
        self.pid_path = None if pid_path is None else Path(pid_path)
        self.program = program
        #: The program's line about an input file it could not read, if any.
        self.input_error = None
        self._stderr_offset, self._stderr_partial = 0, b""
        self._stop = None

    def __enter__(self):
        if self.on_position is None and self.stderr_path is None:
            return self
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        offset, last = 0, -1
        next_position = time.monotonic()
        period = self.STDERR_SECONDS if self.stderr_path is not None else PROGRESS_SECONDS / 2
        while not self._stop.wait(period):
            if self.stderr_path is not None and self.input_error is None:
                self._check_stderr()
            if self.on_position is None or time.monotonic() < next_position:
                continue
            next_position = time.monotonic() + PROGRESS_SECONDS / 2
            try:
                with open(self.path, "rb") as stream:
                    stream.seek(offset)
                    text = stream.read()
            except OSError:
                continue
            offset += len(text)
            for line in text.decode(errors="replace").splitlines():
                if line.startswith(POSITION_PREFIX):
                    position = int(line.split()[1])
                    if position > last:
                        last = position
                        self.on_position(position)

    def _stderr_text(self):
        try:
            return self.stderr_path.read_bytes().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def _check_stderr(self):
        try:
            with open(self.stderr_path, "rb") as stream:
                stream.seek(self._stderr_offset)
                data = stream.read()
        except OSError:
            return
        self._stderr_offset += len(data)
        *lines, self._stderr_partial = (self._stderr_partial + data).split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            if text.startswith(PROGRAM_INPUT_ERRORS):
                self.input_error = text.strip()
                self._kill()
                return

    def _kill(self):
        """SIGKILL the program (only if the process id still names it)."""
        import signal

        try:
            pid = int(self.pid_path.read_text().split()[0])
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError, AttributeError):
            return
        if self.program is not None and self.program not in command_line:
            return
        try:
            # Brian2 prints the program's stdout when it fails: nothing to print.
            open(self.path, "w").close()
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def raise_input_error(self, first, n_samples):
        """Raise `ProgramInputError` if the program could not read an input file."""
        if self.input_error is None and self.stderr_path is not None:
            for line in self._stderr_text().splitlines():
                if line.startswith(PROGRAM_INPUT_ERRORS):
                    self.input_error = line.strip()
                    break
        if self.input_error is not None:
            raise ProgramInputError(
                f"the compiled program could not read one of its input files and was "
                f"stopped before simulating the samples {first} to {first + n_samples - 1} "
                f"with wrong values (it said: {self.input_error}); the arrays handed to it "
                "do not fit this build (a learned state of another network, or a file "
                "removed or truncated while it started): nothing of this run was kept"
            )

    def forward_stderr(self):
        """Pass on what the program wrote to stderr (it is captured to be watched)."""
        import sys

        text = self._stderr_text()
        if text:
            sys.stderr.write(text if text.endswith("\n") else text + "\n")

    def __exit__(self, *exc_info):
        if self._stop is not None:
            self._stop.set()
            self._thread.join()


#: Engine device name → backend class, in the registry's order (one backend per device).
BACKENDS = {backend.spec.name: backend for backend in sorted(
    (RuntimeBackend, CppStandaloneBackend, DenseBackend, GennBackend, CudaBackend),
    key=lambda backend: list(SPECS).index(backend.spec.name))}
if list(BACKENDS) != list(SPECS):  # pragma: no cover - a backend missing from the table
    raise ImportError(f"backends {list(BACKENDS)} do not match the registry's devices "
                      f"{list(SPECS)}")


def run_duration(parameters, slots_per_sample, capacity):
    """Fixed run duration of a fixed-duration build holding ``capacity`` samples."""
    slots = math.ceil(slots_per_sample * capacity) + 1
    return slots * presentation_slot(parameters)

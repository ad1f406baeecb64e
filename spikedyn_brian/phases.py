"""Phases of a protocol run, checkpointed after every chunk, and run provenance.

A protocol is a sequence of named phases (train, label, test, …), each a
stream run on the engine. `PhaseRunner` runs them, stores each chunk's
results and the learned state in a `Checkpoint`, and on a new run of the same
configuration restores finished phases and resumes the unfinished one where
it stopped.
"""

import contextlib
import fcntl
import os
import sys
import warnings
from pathlib import Path

import numpy as np

# The engine module, not its class: tests replace `spikedyn_brian.engine.Engine`
# to stop a command where it would build.
from spikedyn_brian import engine as engines
from spikedyn_brian.checkpoint import Checkpoint, checkpoint_path
from spikedyn_brian.errors import ConfigError
from spikedyn_brian.progress import Ticker
from spikedyn_brian.state import LearnedState, StreamResult, state_problem

__all__ = ["PhaseRunner", "SilentNetworkError", "protocol_run", "output_lock",
           "checkpoint_key"]

_RESULT_FIELDS = ("spike_counts", "presentations", "final_intensity")

#: Scalars stored per phase → numpy dtype kinds allowed.
_SCALAR_FIELDS = {"seconds": "f", "slots": "iu", "spikes_total": "iu",
                  "input_spikes_total": "iu", "inhibitory_spikes_total": "iu", "done": "b"}


def _phase_problem(name, fields, parameters):
    """Why the stored arrays of one phase (field → array) do not fit the run, or None."""
    required = set(_RESULT_FIELDS) | set(_SCALAR_FIELDS)
    state = {key[len("state."):]: value for key, value in fields.items()
             if key.startswith("state.")}
    missing = sorted(required - set(fields))
    if missing:
        return f"phase '{name}' lacks {', '.join(f'{name}.{key}' for key in missing)}"
    unknown = sorted(set(fields) - required - {f"state.{key}" for key in state})
    if unknown:
        return f"it holds {', '.join(f'{name}.{key}' for key in unknown)}, which no phase writes"
    for key, kinds in _SCALAR_FIELDS.items():
        value = fields[key]
        if value.shape != () or value.dtype.kind not in kinds:
            return (f"'{name}.{key}' must be a single "
                    f"{'flag' if kinds == 'b' else 'number'}, got an array of shape "
                    f"{value.shape} and dtype {value.dtype}")
        if kinds != "b" and not (np.isfinite(value) and value >= 0):
            return f"'{name}.{key}' is {value.item()!r}; it must be a finite number >= 0"
    counts = fields["spike_counts"]
    if (counts.ndim != 2 or counts.shape[1] != parameters.n_neurons
            or counts.dtype.kind not in "iu"):
        return (f"'{name}.spike_counts' has shape {counts.shape} and dtype {counts.dtype}; "
                f"this run needs integer counts of shape (digits, {parameters.n_neurons})")
    if (counts < 0).any():
        return f"'{name}.spike_counts' holds negative counts"
    digits = counts.shape[0]
    for key, kinds, low in (("presentations", "iu", 1), ("final_intensity", "iuf", 0)):
        values = fields[key]
        if values.shape != (digits,) or values.dtype.kind not in kinds:
            return (f"'{name}.{key}' has shape {values.shape} and dtype {values.dtype}; it "
                    f"must hold one {'integer' if kinds == 'iu' else 'number'} per digit of "
                    f"'{name}.spike_counts' ({digits})")
        if not (np.isfinite(values) & (values >= low)).all():
            return f"'{name}.{key}' holds values that are not finite numbers >= {low}"
    return state_problem(state, parameters, prefix=f"{name}.state.")


class SilentNetworkError(RuntimeError):
    """A chunk of a stream needed more presentations per digit than allowed: the
    network has fallen silent (every digit shown again at rising intensity)."""


class PhaseRunner:
    """Runs named phases on an engine, checkpointing after every chunk.

    ``max_presentations`` (> 0): a chunk whose digits needed more presentations
    on average stops the run with `SilentNetworkError` (0: no limit). With
    ``progress`` each phase shows a progress bar, or the phases run inside
    `one_bar` share one.
    """

    def __init__(self, engine, checkpoint, progress, max_presentations=0.0):
        self.engine = engine
        self.checkpoint = checkpoint
        self.progress = progress
        self.max_presentations = float(max_presentations)
        #: Messages about phases in which the network hardly answered.
        self.warnings = []
        self._bar = None
        self.stored = checkpoint.load() if checkpoint is not None else {}
        self._check_stored()

    def _check_stored(self):
        """Every stored phase must fit this run's network: keys, shapes, dtypes, finite values.

        Raises `~spikedyn_brian.checkpoint.CheckpointError` naming the file
        and the fix before anything is simulated (the file is left as it is).
        """
        phases = {}
        for key, value in self.stored.items():
            name, dot, field = key.partition(".")
            if not (name and dot and field):
                raise self.checkpoint.invalid(f"it holds '{key}', which no phase writes")
            phases.setdefault(name, {})[field] = np.asarray(value)
        for name, fields in phases.items():
            problem = _phase_problem(name, fields, self.engine.parameters)
            if problem:
                raise self.checkpoint.invalid(problem)

    def _save(self):
        if self.checkpoint is not None:
            self.checkpoint.save(self.stored)

    def _restore(self, name):
        s = self.stored
        return StreamResult(
            spike_counts=s[f"{name}.spike_counts"],
            presentations=s[f"{name}.presentations"],
            final_intensity=s[f"{name}.final_intensity"],
            state=LearnedState.from_arrays({
                key[len(f"{name}.state."):]: value for key, value in s.items()
                if key.startswith(f"{name}.state.")}),
            simulation_seconds=float(s[f"{name}.seconds"]),
            slots=int(s[f"{name}.slots"]),
            spikes_total=int(s[f"{name}.spikes_total"]),
            input_spikes_total=int(s[f"{name}.input_spikes_total"]),
            inhibitory_spikes_total=int(s[f"{name}.inhibitory_spikes_total"]),
        )

    def _store(self, name, result, done):
        s = self.stored
        for key in _RESULT_FIELDS:
            value = getattr(result, key)
            s[f"{name}.{key}"] = value.astype(np.int32) if value.dtype.kind == "i" else value
        for key, values in result.state.arrays().items():
            s[f"{name}.state.{key}"] = values
        s[f"{name}.seconds"] = np.array(result.simulation_seconds)
        s[f"{name}.slots"] = np.array(result.slots)
        s[f"{name}.spikes_total"] = np.array(result.spikes_total)
        s[f"{name}.input_spikes_total"] = np.array(result.input_spikes_total)
        s[f"{name}.inhibitory_spikes_total"] = np.array(result.inhibitory_spikes_total)
        s[f"{name}.done"] = np.array(done)

    @contextlib.contextmanager
    def one_bar(self, total, description):
        """The phases run inside the ``with`` block share one progress bar of ``total``
        digits (a task's training, labelling and test digits), labelled ``description``
        and then each phase's own description."""
        if not self.progress or self._bar is not None:
            yield
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=description, unit="digit")
        try:
            yield
        finally:
            self._bar.close()
            self._bar = None

    def _phase_bar(self, description, total, position):
        """(progress bar of a phase starting at ``position``, whether the phase owns it)."""
        if self._bar is not None:
            self._bar.set_description(description, refresh=False)
            self._bar.update(position)
            return self._bar, False
        if not self.progress:
            return None, False
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=position, desc=description, unit="digit"), True

    def run(self, name, images, state, plastic, seed, description):
        """Run (or resume, or restore) phase ``name``."""
        done_key = f"{name}.done"
        finished = None
        if done_key in self.stored:
            finished = self._restore(name)
            stored_digits, done = len(finished.presentations), bool(self.stored[done_key])
            if stored_digits > len(images) or (done and stored_digits != len(images)):
                raise self.checkpoint.invalid(
                    f"phase '{name}' holds {stored_digits} digits"
                    f"{' (finished)' if done else ''}, but this run's phase has {len(images)}")
            if done:
                if self._bar is not None:
                    self._bar.update(stored_digits)
                return finished
            if stored_digits == len(images):  # stopped after its last chunk was stored
                self._store(name, finished, done=True)
                self._save()
                self._check_activity(name, finished)
                if self._bar is not None:
                    self._bar.update(stored_digits)
                return finished
            state = finished.state
        position = 0 if finished is None else len(finished.presentations)
        bar, own_bar = self._phase_bar(description, len(images), position)
        partial = [finished] if finished is not None else []

        def on_chunk(first, part):
            partial.append(part)
            self._store(name, StreamResult.concatenate(partial), done=False)
            self._save()
            mean = float(np.mean(part.presentations))
            if self.max_presentations and mean > self.max_presentations:
                raise SilentNetworkError(
                    f"phase '{name}': the digits at stream positions {first}–"
                    f"{first + len(part.presentations) - 1} needed {mean:.1f} "
                    f"presentations each on average (limit {self.max_presentations:g}): "
                    "the network has fallen silent")

        try:
            self.engine.run_stream(
                images[position:],
                state,
                plastic=plastic,
                seed=seed,
                on_chunk=on_chunk,
                progress=bar,
                stream_offset=position,
            )
        finally:
            if own_bar:
                bar.close()
        result = StreamResult.concatenate(partial)
        self._store(name, result, done=True)
        self._save()
        self._check_activity(name, result)
        return result

    def _check_activity(self, name, result):
        """Note a phase in which the network was silent or saturated (results' ``warnings``)."""
        silent = result.spike_counts.sum(axis=1) == 0
        if silent.all():
            message = (f"phase '{name}': the network was silent for all {len(silent)} digits "
                       "(no excitatory spike in any accepted presentation, even at the "
                       "highest intensity)")
        elif silent.mean() > 0.5:
            message = (f"phase '{name}': the network was silent for {int(silent.sum())} of "
                       f"{len(silent)} digits (first: stream position {int(np.argmax(silent))})")
        elif (result.spike_counts.shape[1] >= SATURATION_MIN_NEURONS
              and (result.spike_counts > 0).mean() > SATURATION_FRACTION):
            answering = (result.spike_counts > 0).mean(axis=1)
            message = (f"phase '{name}': the network was saturated: on average "
                       f"{100 * answering.mean():.0f} % of its {result.spike_counts.shape[1]} "
                       f"neurons answered each digit (winner-take-all lost; first digit "
                       f"above {100 * SATURATION_FRACTION:.0f} %: stream position "
                       f"{int(np.argmax(answering > SATURATION_FRACTION))}); check the "
                       "inhibition and the input weights")
        else:
            return
        self.warnings.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


#: A phase counts as saturated when, over its digits, more than this fraction of
#: the excitatory neurons answered each digit (a working winner-take-all layer
#: answers with a few neurons), in layers of at least `SATURATION_MIN_NEURONS`.
SATURATION_FRACTION = 0.5
SATURATION_MIN_NEURONS = 20


@contextlib.contextmanager
def output_lock(path, overwrite=False, option="--out", reusable=None):
    """Claim a results file for one process: the file, ``<path>.lock`` and temporaries.

    Before anything runs: a results file that exists is refused unless
    ``overwrite`` (or ``reusable(path)`` says it may be replaced, e.g. the
    trial table of the study being continued), and a lock next to it
    (``<path>.lock``) keeps a second process aimed at the same file from
    starting. A directory where the lock cannot be written is a
    `~spikedyn_brian.config.ConfigError` naming it. Temporaries of an earlier,
    killed writer of the file are removed; on the way out, also after an
    error or Ctrl-C, the lock is removed.
    """
    path = Path(path)
    try:
        exists = path.exists() or path.is_symlink()
    except OSError as error:
        raise ConfigError(f"results file '{path}' cannot be accessed: "
                          f"{error.strerror or error}; choose another {option}") from None
    if exists and not overwrite and not (reusable is not None and reusable(path)):
        raise ConfigError(
            f"results file '{path}' exists; pass --overwrite (output.overwrite = true) to "
            f"replace it, or choose another {option}"
        )
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "a+")
    except OSError as error:
        raise ConfigError(
            f"cannot write the results file '{path}': its lock '{lock_path}' cannot be "
            f"created ({error.strerror or error}); choose another {option} in a directory "
            "you can write to"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "another process"
        lock.close()
        raise ConfigError(
            f"another run is writing '{path}' (its lock '{lock_path}' is held by {owner}); "
            f"wait for it to finish or choose another {option}"
        ) from None
    try:
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()}")
        lock.flush()
        # Results a killed writer left half written: nobody else writes here
        # while we hold the lock.
        for leftover in path.parent.glob(f"{path.name}.tmp-*"):
            leftover.unlink(missing_ok=True)
        yield lock_path
    finally:
        lock_path.unlink(missing_ok=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@contextlib.contextmanager
def protocol_run(experiment, data_source, protocol, engine=None):
    """The engine and `PhaseRunner` of one protocol run, and what surrounds it.

    Before anything is built: the output is claimed (`output_lock`: a
    results file that exists is refused unless ``output.overwrite``, and a
    lock keeps a second run aimed at the same output from starting). The
    engine is built from the experiment unless given, saying so (a first
    build compiles for half a minute, its seconds shown as they pass); on the way out, also after an error or
    Ctrl-C, an engine built here is closed (its run files removed) and the
    lock removed. With ``output.restart`` the checkpoint is discarded (under
    the lock) before anything runs. The checkpoint
    (``<output>.checkpoint.npz``) is keyed by what changes the results
    (`checkpoint_key`), so a run resumes only from its own checkpoint, and
    cosmetic settings (progress bars, the spelling of the output path, the
    build directory) never discard one.
    """
    device, output = experiment.device, experiment.output
    with output_lock(output.path, output.overwrite):
        # A checkpoint being replaced when a run was killed.
        checkpoint_file = checkpoint_path(output.path)
        for leftover in checkpoint_file.parent.glob(f"{checkpoint_file.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
        own_engine = engine is None
        try:
            if getattr(output, "restart", False) and (checkpoint_file.exists()
                                                      or checkpoint_file.is_symlink()):
                if checkpoint_file.is_dir() and not checkpoint_file.is_symlink():
                    raise ConfigError(
                        f"--restart: the checkpoint path '{checkpoint_file}' is a directory; "
                        "remove or rename it yourself")
                checkpoint_file.unlink()
                if output.progress:
                    print(f"discarded the checkpoint '{checkpoint_file}' (--restart)",
                          file=sys.stderr, flush=True)
            if own_engine:
                engine = _build_engine(experiment)
            checkpoint = None
            if output.checkpoint:
                checkpoint = Checkpoint(checkpoint_path(output.path),
                                        checkpoint_key(experiment, data_source, protocol))
            yield engine, PhaseRunner(
                engine, checkpoint, output.progress,
                getattr(experiment.stream, "max_presentations_per_sample", 0.0))
        finally:
            if own_engine and engine is not None:
                engine.close()


def _build_engine(experiment):
    """The experiment's engine, checked and built, saying so where ``output.progress``.

    The device is the experiment's, or its fallback where it cannot run the
    network (a one-line note). A build that compiles shows the seconds it has
    taken and the sources compiled so far on one moving line.
    """
    device, output, network = experiment.device, experiment.output, experiment.network
    engine, note = engines.engine_for(network, device.name,
                                      build_root=device.build_dir or None,
                                      chunk_samples=device.chunk_samples, threads=device.threads,
                                      options=device.options)
    if note and output.progress:
        print(note, file=sys.stderr, flush=True)
    announce = output.progress and engine.builds_once
    try:
        engine.check()
        if announce:
            fresh = not engine.is_built()
            message = (f"{'compiling' if fresh else 'checking'} the {engine.device_name} build "
                       f"of {network.variant} (N = {network.n_neurons})"
                       + (" (first run of this configuration)" if fresh else ""))
            with Ticker(message, status=engine.build_status):
                engine.build()
        else:
            engine.build()
    except OSError as error:
        engine.close()
        where = engine.build_directory or engine.build_root
        raise ConfigError(
            f"the build directory '{where}' cannot be used ({type(error).__name__}: "
            f"{error}); give another --build-dir (device.build_dir), or remove "
            "this configuration's build (spikedyn cache clean) to build it afresh"
        ) from None
    except BaseException:
        engine.close()
        raise
    if announce:
        print(f"build ready in {engine.build_seconds:.1f} s", file=sys.stderr, flush=True)
    return engine


def checkpoint_key(experiment, data_source, protocol):
    """Hash of what changes a run's results: network, stream, device, data, protocol.

    Left out: the output table (path, progress bars, checkpointing) and the
    build directory, which change where things go, not what is computed.
    """
    configuration = experiment.to_dict()
    configuration.pop("output", None)
    configuration.get("device", {}).pop("build_dir", None)
    return engines.parameters_hash(experiment.network, (configuration, data_source, protocol))

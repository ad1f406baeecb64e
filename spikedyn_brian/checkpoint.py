"""Checkpoints of a protocol run: finished phases and the chunks of the current one.

A long run that is interrupted loses nothing it had finished: after every
chunk of every phase the protocol writes the learned state and the responses
so far, atomically (temporary file + ``os.replace``), and a new run of the same
configuration resumes from there.

A checkpoint written for another configuration is ignored (and replaced by
the new run's). A checkpoint that cannot be read (corrupt, truncated,
unreadable) or whose checksum does not match its arrays is never discarded
silently: `Checkpoint.load` raises `CheckpointError`, naming the file and the
fix (``--restart``, delete it, or write the run elsewhere), before anything is
simulated. Every checkpoint carries a SHA-256 checksum of its arrays (names,
dtypes, shapes and bytes), written at save time and verified at every load; a
checkpoint written before checksums existed is read without one (its arrays
are still checked against the run by `spikedyn_brian.phases.PhaseRunner`).
`Checkpoint.save` refuses arrays with NaN or infinite values, so a bad state
never replaces a good checkpoint.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from spikedyn_brian.errors import ConfigError

__all__ = ["Checkpoint", "CheckpointError", "checkpoint_path", "checksum"]

#: Suffix of a run's checkpoint, next to its results file.
CHECKPOINT_SUFFIX = ".checkpoint.npz"

#: Name of the checksum entry of a checkpoint (`checksum`).
CHECKSUM_NAME = "__checksum__"


class CheckpointError(ConfigError):
    """A checkpoint file exists but cannot be read (corrupt, truncated or unreadable).

    A `ConfigError` (and so a ``ValueError``): the command line reports it as
    a configuration problem, without a traceback. ``path`` is the file and
    ``problem`` the message without its fix (for callers with a fix of their own).
    """

    def __init__(self, message, path=None, problem=None):
        super().__init__(message)
        self.path = path
        self.problem = problem or message


def checkpoint_path(output_path):
    """The checkpoint file of a run whose results go to ``output_path``."""
    return Path(output_path).with_suffix(CHECKPOINT_SUFFIX)


def _fix(path):
    return (
        f"run the same command with --restart (output.restart = true) to discard it and "
        f"start afresh, or delete it (rm '{path}'), or write the run elsewhere (a fresh "
        "--out / output.path) to keep the file"
    )


def checksum(arrays):
    """SHA-256 (hex) of named arrays: every name, dtype, shape and byte, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        values = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{values.dtype.str}\0{values.shape}\0".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


class Checkpoint:
    """An ``.npz`` file of named arrays, tied to one configuration.

    Parameters
    ----------
    path : str or Path
        File to write (``.npz``).
    key : str
        Configuration hash: a checkpoint written for another configuration is
        ignored, never resumed from.
    fix : str, optional
        How to repair a bad checkpoint, ending every error message (default:
        ``--restart``, delete it, or write the run elsewhere).
    """

    def __init__(self, path, key, fix=None):
        self.path = Path(path)
        self.key = str(key)
        #: How to repair a bad checkpoint (the end of every error message).
        self.fix = fix or _fix(self.path)

    def __repr__(self):
        return f"Checkpoint('{self.path}', key={self.key!r}, exists={self.path.exists()})"

    def _exists(self):
        try:
            return self.path.exists()
        except (OSError, ValueError) as error:
            raise self._error(f"checkpoint '{self.path}' cannot be accessed ({error})") from None

    def _read(self):
        """Every stored array (``__key__`` included); `CheckpointError` if unreadable."""
        path = self.path
        if not path.is_file():
            raise self._error(f"checkpoint path '{path}' exists but is not a file")
        try:
            stored = np.load(path, allow_pickle=False)
        except PermissionError as error:
            raise self._error(
                f"checkpoint '{path}' cannot be read: permission denied ({error.strerror})",
                f"make it readable (chmod u+r '{path}'), or ") from None
        except Exception as error:  # noqa: BLE001 - every failure means a damaged file
            raise self._error(
                f"checkpoint '{path}' is corrupt or truncated and cannot be resumed from "
                f"({type(error).__name__}: {error})") from None
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise self._error(
                f"checkpoint '{path}' is not an .npz archive of named arrays (it holds a "
                f"single {type(stored).__name__})")
        try:
            with stored:
                arrays = {name: stored[name] for name in stored.files}
        except Exception as error:  # noqa: BLE001 - every failure means a damaged file
            raise self._error(
                f"checkpoint '{path}' is corrupt or truncated and cannot be resumed from "
                f"({type(error).__name__}: {error})") from None
        recorded = arrays.pop(CHECKSUM_NAME, None)
        if recorded is not None:  # checkpoints written before checksums have none
            if (recorded.shape != () or recorded.dtype.kind != "U"
                    or str(recorded) != checksum(arrays)):
                raise self._error(
                    f"checkpoint '{path}' does not match its checksum (its arrays were "
                    "altered or damaged after it was written) and cannot be resumed from")
        return arrays

    def verify(self):
        """Check that the file, if there is one, can be read (whatever its configuration).

        Raises
        ------
        CheckpointError
            If the file exists but is corrupt, truncated or unreadable.
        """
        if self._exists():
            self._read()

    def load(self):
        """The stored arrays (dict), or ``{}`` if none match this configuration.

        Raises
        ------
        CheckpointError
            If the file exists but is corrupt, truncated or unreadable (it is
            left in place: delete it, or run with another output path).
        """
        if not self._exists():
            return {}
        arrays = self._read()
        key = arrays.pop("__key__", None)
        if key is None or key.shape != () or str(key) != self.key:
            return {}
        return arrays

    def _error(self, problem, fix_prefix=""):
        return CheckpointError(f"{problem}; {fix_prefix}{self.fix}", self.path, problem)

    def invalid(self, problem):
        """The `CheckpointError` of a readable checkpoint that does not fit the run."""
        return self._error(f"checkpoint '{self.path}' cannot be resumed from: {problem}")

    def save(self, arrays):
        """Write all ``arrays`` (dict of name → array) and their checksum atomically.

        Raises
        ------
        CheckpointError
            If an array holds NaN or infinite values: the checkpoint on disk
            (if any) is left as it was.
        """
        arrays = {name: np.asarray(values) for name, values in arrays.items()}
        for name, values in arrays.items():
            if values.dtype.kind in "fc" and not np.isfinite(values).all():
                raise CheckpointError(
                    f"not writing checkpoint '{self.path}': '{name}' holds "
                    f"{int((~np.isfinite(values)).sum())} NaN or infinite values (the run's "
                    "state is not valid); the checkpoint on disk is left as it was",
                    self.path)
        arrays["__key__"] = np.array(self.key)
        arrays[CHECKSUM_NAME] = np.array(checksum(arrays))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **arrays)
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def remove(self):
        """Delete the checkpoint (after the results are safely written)."""
        if self.path.exists():
            self.path.unlink()

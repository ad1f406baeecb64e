"""Checkpoints of a protocol run: finished phases and the chunks of the current one.

A long run that is interrupted loses nothing it had finished: after every
chunk of every phase the protocol writes the learned state and the responses
so far, atomically (temporary file + ``os.replace``), and a new run of the same
configuration resumes from there.

A checkpoint written for another configuration is ignored (and replaced by
the new run's). A checkpoint that cannot be read (corrupt, truncated,
unreadable) is never discarded silently: `Checkpoint.load` raises
`CheckpointError`, naming the file and the fix (delete it, or write the run
elsewhere), before anything is simulated.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from spikedyn_brian.config import ConfigError

__all__ = ["Checkpoint", "CheckpointError", "checkpoint_path"]

#: Suffix of a run's checkpoint, next to its results file.
CHECKPOINT_SUFFIX = ".checkpoint.npz"


class CheckpointError(ConfigError):
    """A checkpoint file exists but cannot be read (corrupt, truncated or unreadable).

    A `ConfigError` (and so a ``ValueError``): the command line reports it as
    a configuration problem, without a traceback.
    """


def checkpoint_path(output_path):
    """The checkpoint file of a run whose results go to ``output_path``."""
    return Path(output_path).with_suffix(CHECKPOINT_SUFFIX)


def _fix(path):
    return (
        f"delete it (rm '{path}') to start the run afresh, or write the run elsewhere "
        "(a fresh --out / output.path) to keep the file"
    )


class Checkpoint:
    """An ``.npz`` file of named arrays, tied to one configuration.

    Parameters
    ----------
    path : str or Path
        File to write (``.npz``).
    key : str
        Configuration hash: a checkpoint written for another configuration is
        ignored, never resumed from.
    """

    def __init__(self, path, key):
        self.path = Path(path)
        self.key = str(key)

    def __repr__(self):
        return f"Checkpoint('{self.path}', key={self.key!r}, exists={self.path.exists()})"

    def _exists(self):
        try:
            return self.path.exists()
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint '{self.path}' cannot be accessed ({error}); {_fix(self.path)}"
            ) from None

    def _read(self):
        """Every stored array (``__key__`` included); `CheckpointError` if unreadable."""
        path = self.path
        if not path.is_file():
            raise CheckpointError(
                f"checkpoint path '{path}' exists but is not a file; {_fix(path)}"
            )
        try:
            stored = np.load(path, allow_pickle=False)
        except PermissionError as error:
            raise CheckpointError(
                f"checkpoint '{path}' cannot be read: permission denied ({error.strerror}); "
                f"make it readable (chmod u+r '{path}'), or {_fix(path)}"
            ) from None
        except Exception as error:  # noqa: BLE001 - every failure means a damaged file
            raise CheckpointError(
                f"checkpoint '{path}' is corrupt or truncated and cannot be resumed from "
                f"({type(error).__name__}: {error}); {_fix(path)}"
            ) from None
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise CheckpointError(
                f"checkpoint '{path}' is not an .npz archive of named arrays (it holds a "
                f"single {type(stored).__name__}); {_fix(path)}"
            )
        try:
            with stored:
                return {name: stored[name] for name in stored.files}
        except Exception as error:  # noqa: BLE001 - every failure means a damaged file
            raise CheckpointError(
                f"checkpoint '{path}' is corrupt or truncated and cannot be resumed from "
                f"({type(error).__name__}: {error}); {_fix(path)}"
            ) from None

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

    def save(self, arrays):
        """Write all ``arrays`` (dict of name → array) atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, __key__=np.array(self.key), **arrays)
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def remove(self):
        """Delete the checkpoint (after the results are safely written)."""
        if self.path.exists():
            self.path.unlink()

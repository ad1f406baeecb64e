"""Checkpoints of a protocol run: finished phases and the chunks of the current one.

A long run that is interrupted loses nothing it had finished: after every
chunk of every phase the protocol writes the learned state and the responses
so far, atomically (temporary file + ``os.replace``), and a new run of the same
configuration resumes from there.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["Checkpoint"]


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

    def load(self):
        """The stored arrays (dict), or ``{}`` if none match this configuration."""
        if not self.path.exists():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError):
            return {}
        if str(arrays.pop("__key__", "")) != self.key:
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

"""The paths a configuration names, checked before anything is built or simulated.

A data directory that does not hold the IDX files the run reads, a build
directory that cannot be created, an output path that is not a writable file
name, or a checkpoint of the output that cannot be read: each a `ConfigError`
naming the key and the fix.
"""

import os
from pathlib import Path

from spikedyn_brian.checkpoint import Checkpoint, checkpoint_path
from spikedyn_brian.data import MNISTFileError, check_idx_directory
from spikedyn_brian.errors import ConfigError, show_path

__all__ = ["check_paths", "check_data_dir", "check_build_dir", "check_output"]


def _check_path_text(key, text):
    if "\0" in text:
        raise ConfigError(f"key '{key}' is {show_path(text)}, which holds a NUL character; give a "
                          "valid path")


def check_paths(experiment):
    """The data directory, the build directory and the output (with its checkpoint)."""
    check_data_dir(experiment.stream)
    check_build_dir(experiment.device)
    check_output(experiment.output)
    return experiment


def check_data_dir(stream):
    """A data directory that is set must exist and hold the IDX files the run reads."""
    if not stream.data_dir:
        return
    _check_path_text("stream.data_dir", stream.data_dir)
    splits = ("train", "test") if stream.evaluation == "test" else ("train",)
    try:
        check_idx_directory(stream.data_dir, splits)
    except MNISTFileError as error:
        raise ConfigError(
            f"key 'stream.data_dir' is {show_path(stream.data_dir)}: {error}"
        ) from None


def check_build_dir(device):
    """The build root (``device.build_dir``, else ``$SPIKEDYN_BUILD_DIR``) must be usable:
    a directory, or one that can be created in a writable directory."""
    text, key = device.build_dir, "key 'device.build_dir'"
    if not text:
        text, key = os.environ.get("SPIKEDYN_BUILD_DIR", ""), "$SPIKEDYN_BUILD_DIR"
        if not text:
            return
    _check_path_text(key.removeprefix("key ").strip("'"), text)
    path = Path(text)
    try:
        is_file = path.exists() and not path.is_dir()
        dangling = path.is_symlink() and not path.exists()
        parent = path.absolute()
        while not (parent.exists() or parent.is_symlink()):
            parent = parent.parent
        blocked = None if parent == path.absolute() else parent
    except OSError as error:
        raise ConfigError(f"{key} is {show_path(text)}, which cannot be accessed: "
                          f"{error.strerror or error}. Fix: give a usable directory") from None
    if is_file:
        raise ConfigError(
            f"{key} is {show_path(text)}, an existing file, not a directory. Fix: give a "
            "directory (it is created if missing), or leave it empty"
        )
    if dangling:
        raise ConfigError(
            f"{key} is {show_path(text)}, a symbolic link to '{os.readlink(path)}', which "
            "does not exist. Fix: create the link's target, or give another directory")
    if blocked is not None and not blocked.is_dir():
        raise ConfigError(
            f"{key} is {show_path(text)}, but '{blocked}' is "
            f"{'a link to nowhere' if blocked.is_symlink() else 'a file'}, not a directory, so "
            "the build directory cannot be created. Fix: give another directory")
    if blocked is not None and not os.access(blocked, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{key} is {show_path(text)}, but directory '{blocked}' is read-only (the build "
            "directory cannot be created in it). Fix: give a writable directory")


def check_output(output):
    """The results file must be creatable: a file name in a directory that exists or can be made.

    Then, if checkpointing is on and a checkpoint of this output exists, it
    must be readable (`spikedyn_brian.checkpoint.Checkpoint.verify`).
    """
    text = output.path
    key = "output.path"
    if not text.strip():
        raise ConfigError(
            f"key '{key}' is empty; give the results file to write, e.g. "
            "'results/static_mnist.nc' (--out FILE.nc)"
        )
    _check_path_text(key, text)
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise ConfigError(
            f"key '{key}' is {show_path(text)}, a directory name; give a file in it, e.g. "
            f"'{text.rstrip('/' + os.sep) or '.'}/results.nc'"
        )
    path = Path(text)
    try:
        if path.is_dir():
            raise ConfigError(
                f"key '{key}' is {show_path(text)}, an existing directory; give a file, e.g. "
                f"'{path / 'results.nc'}'"
            )
        # The nearest existing ancestor must be a writable directory (missing
        # ones are created when the results are written).
        parent = path.absolute().parent
        missing = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(
                f"key '{key}' is {show_path(text)}, but '{parent}' is a file, not a directory, so "
                "the results cannot be written there. Fix: choose another output path"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            where = f"cannot create '{missing[-1]}' in it" if missing else "cannot write in it"
            raise ConfigError(
                f"key '{key}' is {show_path(text)}, but directory '{parent}' is read-only "
                f"({where}). Fix: choose an output path in a writable directory"
            )
    except OSError as error:
        raise ConfigError(
            f"key '{key}' is {show_path(text)}, which cannot be used: {error.strerror or error}. "
            "Fix: choose another output path"
        ) from None
    if output.checkpoint and not output.restart:
        try:
            stored = checkpoint_path(path)
        except ValueError:  # no name a suffix can be put on: nothing to resume from
            return
        Checkpoint(stored, key="").verify()


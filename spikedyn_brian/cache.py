"""The build cache: compiled builds, one directory per configuration.

Compiled devices keep one build per network configuration under the build
root (``$SPIKEDYN_BUILD_DIR`` or ``~/.cache/spikedyn_brian/builds``), so that an
unchanged configuration is not compiled again. `cache_info` lists them and
`clean_cache` removes them (all, or those not used for some days); ``spikedyn
cache info`` and ``spikedyn cache clean`` are the commands. A build that a
running process holds (its build lock, or a run's private binary) is never
removed.
"""

import fcntl
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BuildEntry", "default_build_root", "cache_info", "clean_cache"]


def default_build_root():
    """Where compiled builds live: ``$SPIKEDYN_BUILD_DIR`` or ``~/.cache/spikedyn_brian/builds``."""
    return Path(os.environ.get("SPIKEDYN_BUILD_DIR")
                or Path.home() / ".cache" / "spikedyn_brian" / "builds")


@dataclass
class BuildEntry:
    """One cached build directory."""

    path: Path
    bytes: int
    last_used: float

    @property
    def age_days(self):
        return (time.time() - self.last_used) / 86400

    def __repr__(self):
        return (f"BuildEntry('{self.path.name}', {self.bytes / 1e6:.1f} MB, "
                f"last used {self.age_days:.1f} days ago)")


def _size_and_last_use(directory):
    total, last = 0, directory.stat().st_mtime
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue
            total += info.st_size
            last = max(last, info.st_mtime)
    return total, last


def cache_info(root=None):
    """The cached builds under ``root`` (default `default_build_root`), newest first."""
    root = Path(root) if root is not None else default_build_root()
    if not root.is_dir():
        return []
    entries = []
    for directory in root.iterdir():
        if directory.is_dir():
            size, last = _size_and_last_use(directory)
            entries.append(BuildEntry(directory, size, last))
    return sorted(entries, key=lambda entry: -entry.last_used)


def _in_use(directory):
    """Whether a process holds the build: its lock, or a run's private binary."""
    if any(directory.glob("main-results-*")):
        return True
    lock_path = directory / ".build.lock"
    if not lock_path.exists():
        return False
    with open(lock_path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def clean_cache(root=None, older_than_days=0.0):
    """Remove cached builds not used for ``older_than_days`` days (0: all).

    Returns
    -------
    (removed, kept_in_use) : (list of BuildEntry, list of BuildEntry)
        What was removed, and what was kept because a process holds it.
    """
    if (isinstance(older_than_days, bool) or not isinstance(older_than_days, (int, float))
            or not math.isfinite(older_than_days) or older_than_days < 0):
        raise ValueError(
            f"older_than_days must be a finite number of days >= 0 (0: every build), got "
            f"{older_than_days!r}; nothing was removed")
    removed, in_use = [], []
    for entry in cache_info(root):
        if entry.age_days < older_than_days:
            continue
        if _in_use(entry.path):
            in_use.append(entry)
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry)
    return removed, in_use

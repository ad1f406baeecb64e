"""Where a result comes from: code version, data, machine, libraries.

Every results file carries these as netCDF attributes (`attributes`), so that
a figure can be traced to the commit, the data split, the seeds and the
machine that produced it.
"""

import functools
import hashlib
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

__all__ = ["code_version", "machine", "library_versions", "data_fingerprint", "attributes"]

#: Vector extensions reported with the machine (those that matter to the
#: compiled code: ``-march=native`` uses them).
VECTOR_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                     "avx512vl", "neon", "sve")


@functools.lru_cache(maxsize=1)
def code_version():
    """The git commit of the package's checkout (``+dirty`` with local changes).

    Falls back to the installed package version when the package does not
    run from a git checkout (``'spikedyn-brian 0.1.0 (no git checkout)'``).
    """
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"spikedyn-brian {_package_version()} (no git checkout)"
    return commit + ("+dirty" if status else "")


def _package_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spikedyn-brian")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


@functools.lru_cache(maxsize=1)
def machine():
    """CPU model, vector extensions and core count of this machine (a dict)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu_model": model,
        "vector_extensions": " ".join(x for x in VECTOR_EXTENSIONS if x in flags) or "unknown",
        "cores": os.cpu_count() or 0,
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def library_versions():
    """Versions of the libraries a result depends on."""
    import brian2
    import netCDF4
    import xarray

    return {
        "python": platform.python_version(),
        "brian2": brian2.__version__,
        "numpy": np.__version__,
        "xarray": xarray.__version__,
        "netCDF4": netCDF4.__version__,
        "spikedyn_brian": _package_version(),
    }


def data_fingerprint(*digit_sets):
    """Short SHA-256 of the images and labels of some `DigitSet`s (identifies the data)."""
    digest = hashlib.sha256()
    for digits in digit_sets:
        digest.update(np.ascontiguousarray(digits.images).tobytes())
        digest.update(np.ascontiguousarray(digits.labels).tobytes())
    return digest.hexdigest()[:16]


def attributes(seeds=None, data=None, **extra):
    """Provenance attributes of a results file.

    Parameters
    ----------
    seeds : dict, optional
        Named seeds of the run (`RunSeeds.as_dict`).
    data : dict, optional
        Role → `DigitSet` (e.g. ``{'train': ..., 'evaluation': ...}``): each
        role's source (file and split) and a fingerprint of its content.
    **extra
        More attributes.
    """
    attrs = {
        "code_version": code_version(),
        "machine": machine(),
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if seeds is not None:
        attrs["seeds"] = seeds
    if data:
        attrs["data"] = {
            role: {"source": digits.source, "digits": len(digits),
                   "fingerprint": data_fingerprint(digits)}
            for role, digits in data.items()
        }
    attrs.update(extra)
    return attrs

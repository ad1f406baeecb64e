"""What the backends check and set up: GPUs, GeNN, brian2cuda preferences.

Code generation (``spikedyn codegen``) needs only the Python packages, never a
GPU, nvcc or GeNN: these checks run where a backend is asked to compile or to
run (`spikedyn_brian.devices.backends`).
"""

import os
import shutil
import subprocess
from pathlib import Path

import brian2

from spikedyn_brian.devices.errors import DeviceError
from spikedyn_brian.devices.registry import CudaOptions

__all__ = ["CudaOptions", "cuda_gpu_present", "genn_path", "check_cuda_compiler",
           "set_cuda_preferences", "CUDA_INSTALL_HINT", "GENN_INSTALL_HINT"]

CUDA_INSTALL_HINT = (
    "install it in this (Python >= 3.12, Brian2 2.10.1) environment with "
    "`pip install -e '.[cuda]'` (brian2cuda 1.0b1 and the nvidia-curand wheel)"
)
GENN_INSTALL_HINT = (
    "brian2genn 1.7 needs brian2 < 2.6 (Python <= 3.11, numpy < 2): create its "
    "environment with `make genn-venv` and run `.venv-genn/bin/spikedyn ...` there"
)


def cuda_gpu_present():
    """Whether ``nvidia-smi`` lists at least one NVIDIA GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return listing.returncode == 0 and "GPU" in listing.stdout


def genn_path():
    """GeNN's installation directory (``$GENN_PATH``), or None when not set up."""
    path = os.environ.get("GENN_PATH")
    if path and (Path(path) / "bin" / "genn-buildmodel.sh").exists():
        return Path(path)
    return None


def check_cuda_compiler():
    """Raise a `DeviceError` when the CUDA toolkit (nvcc) is missing."""
    if shutil.which("nvcc") is None and not os.environ.get("CUDA_PATH"):
        raise DeviceError(
            "device 'cuda' needs the CUDA toolkit (nvcc on PATH or CUDA_PATH) to compile; "
            "`spikedyn codegen --device cuda` writes the project without compiling it"
        )


def _curand_wheel():
    """(include directory, shared library) of the nvidia-curand wheel, or None."""
    try:
        import nvidia
    except ImportError:
        return None
    for root in getattr(nvidia, "__path__", []):
        for header in sorted(Path(root).glob("*/include/curand.h")):
            libraries = sorted(header.parent.parent.glob("lib/libcurand.so*"))
            if libraries:
                return header.parent, libraries[0]
    return None


def _cuda_link_directory(build_directory, library):
    """A directory with ``libcurand.so`` → the wheel's versioned library.

    brian2cuda's makefile links with ``-lcurand``, which needs the unversioned
    name that the wheel does not ship; the link lives in the build directory.
    """
    directory = Path(build_directory) / "curand_link"
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "libcurand.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(library)
    return directory


def set_cuda_preferences(build_directory, options):
    """brian2cuda preferences of a build in ``build_directory`` (its `CudaOptions`)."""
    prefs = brian2.prefs
    backend = prefs.devices.cuda_standalone.cuda_backend
    # No GPU is needed to generate or compile: name the GPU and architecture.
    backend.detect_gpus = False
    backend.gpu_id = options.gpu_id
    backend.compute_capability = options.compute_capability
    if shutil.which("nvcc") is None and not os.environ.get("CUDA_PATH"):
        # Code generation only: brian2cuda would look for the toolkit.
        backend.detect_cuda = False
        backend.cuda_runtime_version = 13.0
    # brian2cuda's makefile says -std=c++11; CUB of CUDA >= 12 needs C++17
    # (nvcc takes the last -std). Host flags: no -std of their own.
    nvcc_flags = ["-w", "-use_fast_math", "-std=c++17"]
    curand = _curand_wheel()
    if curand is not None:
        include_directory, library = curand
        nvcc_flags.append(f"-I{include_directory}")
        link_directory = _cuda_link_directory(build_directory, library)
        prefs.codegen.cpp.library_dirs = [str(link_directory)]
        prefs.codegen.cpp.runtime_library_dirs = [str(library.parent)]
    backend.extra_compile_args_nvcc = nvcc_flags
    prefs.codegen.cpp.extra_compile_args_gcc = ["-w", "-O3", "-ffast-math", "-march=native"]

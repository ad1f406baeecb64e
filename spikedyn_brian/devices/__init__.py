"""What the engine knows about devices: names, Brian2 preferences, checks, errors.

Four devices run the same models and protocols:

==================  ======================  =========================================
``--device``        Brian2 device           needs
==================  ======================  =========================================
``runtime``         ``runtime`` (numpy)     Brian2
``cpp_standalone``  ``cpp_standalone``      a C++ compiler
``cuda``            ``cuda_standalone``     ``pip install -e .[cuda]`` (brian2cuda 1.0b1,
                                            nvidia-curand); nvcc to compile; an NVIDIA
                                            GPU to run
``genn``            ``genn`` (brian2genn)   the Python 3.11 environment of
                                            ``make genn-venv`` (brian2 < 2.6,
                                            brian2genn 1.7); GeNN 4.x (``GENN_PATH``)
                                            to compile and run
==================  ======================  =========================================

Code generation (``spikedyn codegen``) needs only the Python packages, never a
GPU, nvcc or GeNN. Where a device cannot express part of a model, the model
has a documented equivalent formulation for it (``docs/models.md``, section
Devices) or `check_formulation` raises a `DeviceError` naming the feature and
the alternative before anything is built.
"""

import copy
import os
import shutil
import subprocess
from pathlib import Path

import brian2
from brian2.devices.device import get_device

__all__ = [
    "DEVICES",
    "STANDALONE_DEVICES",
    "FIXED_DURATION_DEVICES",
    "BRIAN2_DEVICE_NAMES",
    "DeviceError",
    "CudaOptions",
    "end_of_stream_mode",
    "import_device_package",
    "check_formulation",
    "cuda_gpu_present",
    "genn_path",
    "check_can_compile",
    "check_can_run",
    "activate",
]

#: Devices the engine can run on.
DEVICES = ("runtime", "cpp_standalone", "genn", "cuda")
#: Devices that generate a project (code generation without running is possible).
STANDALONE_DEVICES = ("cpp_standalone", "genn", "cuda")
#: Devices whose compiled run has a fixed duration (no ``stop_at``): the
#: controller idles once the stream is done, and a stream must fit into the
#: build's slot budget.
FIXED_DURATION_DEVICES = ("genn", "cuda")
#: Brian2's name of each device.
BRIAN2_DEVICE_NAMES = {
    "runtime": "runtime",
    "cpp_standalone": "cpp_standalone",
    "genn": "genn",
    "cuda": "cuda_standalone",
}

#: Environment variables that override `CudaOptions` defaults.
CUDA_GPU_ID_ENVIRONMENT_VARIABLE = "SPIKEDYN_CUDA_GPU_ID"
CUDA_COMPUTE_CAPABILITY_ENVIRONMENT_VARIABLE = "SPIKEDYN_CUDA_COMPUTE_CAPABILITY"

_CUDA_INSTALL_HINT = (
    "install it in this (Python >= 3.12, Brian2 2.10.1) environment with "
    "`pip install -e '.[cuda]'` (brian2cuda 1.0b1 and the nvidia-curand wheel)"
)
_GENN_INSTALL_HINT = (
    "brian2genn 1.7 needs brian2 < 2.6 (Python <= 3.11, numpy < 2): create its "
    "environment with `make genn-venv` and run `.venv-genn/bin/spikedyn ...` there"
)


class DeviceError(RuntimeError):
    """A device is missing, or cannot express part of a model."""


def end_of_stream_mode(device):
    """How the controller ends a stream on ``device`` (``'stop'`` or ``'idle'``)."""
    return "idle" if device in FIXED_DURATION_DEVICES else "stop"


def import_device_package(device):
    """Import the Python package that registers ``device`` with Brian2.

    Raises
    ------
    DeviceError
        When the package is missing or does not fit the installed Brian2, with
        the command that sets it up.
    """
    if device == "cuda":
        try:
            import brian2cuda  # noqa: F401  (registers 'cuda_standalone')
        except ImportError as error:
            raise DeviceError(f"device 'cuda' needs brian2cuda: {_CUDA_INSTALL_HINT} ({error})")
    elif device == "genn":
        major_minor = tuple(int(x) for x in brian2.__version__.split(".")[:2])
        if major_minor >= (2, 6):
            raise DeviceError(
                f"device 'genn' cannot run with brian2 {brian2.__version__}: "
                f"{_GENN_INSTALL_HINT}"
            )
        try:
            import brian2genn  # noqa: F401  (registers 'genn')
        except ImportError as error:
            raise DeviceError(f"device 'genn' needs brian2genn: {_GENN_INSTALL_HINT} ({error})")
    elif device not in DEVICES:
        raise DeviceError(f"device {device!r} is unknown; choose one of {', '.join(DEVICES)}")


def check_formulation(parameters, device):
    """Refuse, before anything is built, what ``device`` cannot express.

    GeNN (brian2genn) has no heterogeneous synaptic delays: the input delays
    of Diehl & Cook's original code (``plasticity.max_input_delay_ms``, off by
    default) cannot run there. What brian2genn cannot express otherwise has
    an equivalent GeNN formulation (``build_network(..., device='genn')``):
    its ``on_post`` cannot read postsynaptic variables, so the STDP traces,
    learning flag and rate factor live on the synapses
    (``input_synapses_with_synaptic_traces``), and its host-side
    ``run_regularly`` of Synapses cannot read other groups' variables until
    `brian2genn_support.patch` (applied by `activate`) teaches it.
    """
    if device == "genn" and parameters.plasticity.max_input_delay_ms > 0:
        raise DeviceError(
            "device 'genn' does not support heterogeneous synaptic delays "
            f"(plasticity.max_input_delay_ms = {parameters.plasticity.max_input_delay_ms}); "
            "set it to 0 (the default: no input delays) or use cpp_standalone or cuda"
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


def check_can_compile(device):
    """Raise a `DeviceError` when ``device``'s compiler is missing."""
    if device == "cuda" and shutil.which("nvcc") is None and not os.environ.get("CUDA_PATH"):
        raise DeviceError(
            "device 'cuda' needs the CUDA toolkit (nvcc on PATH or CUDA_PATH) to compile; "
            "`spikedyn codegen --device cuda` writes the project without compiling it"
        )
    if device == "genn" and genn_path() is None:
        raise DeviceError(
            "device 'genn' needs GeNN 4.x: build it outside this repository (plain `make` in "
            "src/genn/genn and src/genn/backends/single_threaded_cpu, or the CUDA backend) "
            "and set GENN_PATH to its directory; `spikedyn codegen --device genn` writes "
            "the project without GeNN"
        )


def check_can_run(device, use_gpu=True):
    """Raise a `DeviceError` when ``device`` cannot compile and run here."""
    check_can_compile(device)
    if device == "cuda" and not cuda_gpu_present():
        raise DeviceError(
            "device 'cuda' needs an NVIDIA GPU to run (nvidia-smi lists none); "
            "generate the project with `spikedyn codegen --device cuda` and run it "
            "on a GPU machine"
        )
    if device == "genn" and use_gpu and not cuda_gpu_present():
        raise DeviceError(
            "device 'genn' with use_GPU=True needs an NVIDIA GPU; run GeNN's "
            "single-threaded CPU backend with use_gpu=False"
        )


class CudaOptions:
    """Brian2CUDA preferences of a build, set without looking for a GPU.

    Parameters
    ----------
    gpu_id : int
        GPU to run on (``$SPIKEDYN_CUDA_GPU_ID``, default 0).
    compute_capability : float
        Architecture compiled for (``$SPIKEDYN_CUDA_COMPUTE_CAPABILITY``,
        default 9.0: H100/H200).
    """

    def __init__(self, gpu_id=None, compute_capability=None):
        if gpu_id is None:
            gpu_id = int(os.environ.get(CUDA_GPU_ID_ENVIRONMENT_VARIABLE, 0))
        if compute_capability is None:
            compute_capability = float(
                os.environ.get(CUDA_COMPUTE_CAPABILITY_ENVIRONMENT_VARIABLE, 9.0)
            )
        self.gpu_id = int(gpu_id)
        self.compute_capability = float(compute_capability)

    def __repr__(self):
        return f"CudaOptions(gpu_id={self.gpu_id}, compute_capability={self.compute_capability})"


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


def _set_cuda_preferences(build_directory, options):
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


#: Brian2 preferences that `activate` sets for some device, and their values
#: before this module changed any: every activation starts from these, so a
#: cuda build's link directories never reach a later cpp_standalone build.
_DEVICE_PREFERENCES = (
    "codegen.cpp.library_dirs",
    "codegen.cpp.runtime_library_dirs",
    "codegen.cpp.extra_compile_args_gcc",
)
_PREFERENCES_BEFORE = {name: copy.deepcopy(brian2.prefs[name]) for name in _DEVICE_PREFERENCES}


def _restore_device_preferences():
    for name, value in _PREFERENCES_BEFORE.items():
        brian2.prefs[name] = copy.deepcopy(value)


def activate(device, build_directory, compiler_flags=(), cuda_options=None, use_gpu=False,
             compile=True, run=True):
    """Make ``device`` Brian2's current device, building into ``build_directory``.

    Returns the Brian2 device object. The caller has already reset Brian2
    (``brian2.device.reinit()``). brian2genn builds only from within the
    ``run`` call (``build_on_run``: a later ``device.build`` refuses the
    synapse creation "after the run statement"), so on ``genn`` the ``run``
    of the network generates the project, and compiles and runs it when
    ``compile`` and ``run`` say so.
    """
    _restore_device_preferences()
    if device == "runtime":
        brian2.set_device("runtime")
        return get_device()
    import_device_package(device)
    if device == "cpp_standalone":
        brian2.set_device("cpp_standalone", build_on_run=False, directory=str(build_directory))
        brian2.prefs.codegen.cpp.extra_compile_args_gcc = list(compiler_flags)
    elif device == "cuda":
        brian2.set_device("cuda_standalone", build_on_run=False, directory=str(build_directory))
        _set_cuda_preferences(build_directory, cuda_options or CudaOptions())
    elif device == "genn":
        from spikedyn_brian import brian2genn_support

        brian2genn_support.patch()
        brian2.set_device("genn", build_on_run=True, directory=str(build_directory),
                          use_GPU=bool(use_gpu), compile=bool(compile), run=bool(run),
                          with_output=False)
    return get_device()

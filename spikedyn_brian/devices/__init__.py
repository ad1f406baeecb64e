"""Devices: one backend class per device, the project's own Brian2 device, checks.

Five devices run the same models and protocols (``--device``):

==================  ======================  =========================================
``--device``        Brian2 device           needs
==================  ======================  =========================================
``runtime``         ``runtime`` (numpy)     Brian2
``cpp_standalone``  ``cpp_standalone``      a C++ compiler
``cpp_dense``       ``cpp_dense`` (`dense`) a C++ compiler; dense input synapses
                                            (no input delays)
``cuda``            ``cuda_standalone``     ``pip install -e .[cuda]`` (brian2cuda 1.0b1,
                                            nvidia-curand); nvcc to compile; an NVIDIA
                                            GPU to run
``genn``            ``genn`` (brian2genn)   the Python 3.11 environment of
                                            ``make genn-venv`` (brian2 < 2.6,
                                            brian2genn 1.7); GeNN 4.x (``GENN_PATH``)
                                            to compile and run
==================  ======================  =========================================

Each is described, without Brian2, in `registry` (`SPECS`: options,
formulation, capabilities, what it refuses) and has a backend class in
`backends` (registered in `BACKENDS`); where a
device cannot express part of a model, the models have a documented
equivalent formulation for it (``docs/models.md``, section Devices;
:mod:`spikedyn_brian.models.formulation`) or the backend's ``check`` raises
a `DeviceError` naming the feature and the alternative before anything is
built.
"""

import importlib

from spikedyn_brian.devices.errors import DeviceError
from spikedyn_brian.devices.registry import (
    DEFAULT_DEVICE,
    DEVICES,
    SPECS,
    STANDALONE_DEVICES,
    CudaOptions,
    DeviceSpec,
    GennOptions,
    RuntimeOptions,
    StandaloneOptions,
)

__all__ = [
    "DEVICES",
    "STANDALONE_DEVICES",
    "DEFAULT_DEVICE",
    "SPECS",
    "DeviceSpec",
    "BACKENDS",
    "Backend",
    "DeviceError",
    "RuntimeOptions",
    "StandaloneOptions",
    "CudaOptions",
    "GennOptions",
    "cuda_gpu_present",
    "genn_path",
    "activate_device",
    "device_scope",
]

#: Names handed on from the modules that import Brian2, imported when first asked for:
#: the registry (names, options, capabilities) stays readable without Brian2.
_WITH_BRIAN2 = {"BACKENDS": "backends", "Backend": "backends", "activate_device": "backends",
                "device_scope": "backends", "cuda_gpu_present": "checks", "genn_path": "checks"}


def __getattr__(name):
    if name in _WITH_BRIAN2:
        module = importlib.import_module(f"{__name__}.{_WITH_BRIAN2[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

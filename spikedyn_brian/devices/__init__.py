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

Each has a backend class in `backends` (registered in `BACKENDS`); where a
device cannot express part of a model, the models have a documented
equivalent formulation for it (``docs/models.md``, section Devices;
:mod:`spikedyn_brian.models.formulation`) or the backend's ``check`` raises
a `DeviceError` naming the feature and the alternative before anything is
built.
"""

from spikedyn_brian.devices.backends import BACKENDS, Backend, activate_device, device_scope
from spikedyn_brian.devices.checks import CudaOptions, cuda_gpu_present, genn_path
from spikedyn_brian.devices.errors import DeviceError

__all__ = [
    "DEVICES",
    "STANDALONE_DEVICES",
    "BACKENDS",
    "Backend",
    "DeviceError",
    "CudaOptions",
    "cuda_gpu_present",
    "genn_path",
    "activate_device",
    "device_scope",
]

#: Devices the engine can run on.
DEVICES = tuple(BACKENDS)
#: Devices that generate a project (code generation without running is possible).
STANDALONE_DEVICES = tuple(name for name, backend in BACKENDS.items()
                           if backend.generates_project)

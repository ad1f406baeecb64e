"""What each device is, without Brian2: its name, options and capabilities.

The one list of the engine's devices (`SPECS`, their names `DEVICES`). Each entry is a `DeviceSpec`:
the options dataclass its backend takes (``[device.options]`` in a TOML
configuration, ``--device-option KEY=VALUE`` on the command line, keyword
arguments of `spikedyn_brian.engine.Engine`), how the models are formulated
for it, whether it builds once or writes a project, and which networks it
refuses and which device serves them instead. The backend classes
(`spikedyn_brian.devices.backends`, which import Brian2) carry their entry as
``spec``; the configuration reader and the command line read this module
only, so that ``spikedyn --help`` and a configuration check never import
Brian2.
"""

import math
import os
from dataclasses import dataclass, field, fields

from spikedyn_brian.models.formulation import CUDA, GENN, STANDARD, Formulation

__all__ = ["DeviceSpec", "SPECS", "DEVICES", "DEFAULT_DEVICE", "STANDALONE_DEVICES", "RuntimeOptions",
           "StandaloneOptions", "CudaOptions", "GennOptions", "DEFAULT_SLOTS_PER_SAMPLE", "MAXIMUM_RUN_SECONDS"]

#: Default slot budget of fixed-duration devices (GeNN, CUDA): slots per
#: sample of a build's capacity. Digits mostly take 1.0–1.05 slots
#: (``docs/performance.md``); a stream that needs more fails with an error
#: naming ``slots_per_sample``.
DEFAULT_SLOTS_PER_SAMPLE = 1.5

#: Upper bound of one compiled run, in seconds of simulated time; the
#: controller stops a run when its stream is done, long before.
MAXIMUM_RUN_SECONDS = 1e6

#: Environment variables that override `CudaOptions` defaults.
CUDA_GPU_ID_ENVIRONMENT_VARIABLE = "SPIKEDYN_CUDA_GPU_ID"
CUDA_COMPUTE_CAPABILITY_ENVIRONMENT_VARIABLE = "SPIKEDYN_CUDA_COMPUTE_CAPABILITY"


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"option '{name}' is {value!r}; choose one of {', '.join(choices)}")


def _check_slots(value):
    value = float(value)
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(
            f"option 'slots_per_sample' is {value!r}; it must be a finite number >= 1 (a "
            f"run lasts slots_per_sample slots per sample; default {DEFAULT_SLOTS_PER_SAMPLE})")
    return value


# ------------------------------------------------------------------ options
@dataclass
class RuntimeOptions:
    """Options of the ``runtime`` device."""

    #: Brian2 code generation target: 'numpy' or 'cython'.
    target: str = "numpy"
    #: How the network is written: 'standard', or 'genn' (the GeNN
    #: formulation, to check it against the standard one without GeNN).
    formulation: str = "standard"
    #: Slot budget of the 'genn' formulation's fixed-duration runs.
    slots_per_sample: float = DEFAULT_SLOTS_PER_SAMPLE

    def __post_init__(self):
        _check_choice("target", self.target, ("numpy", "cython"))
        _check_choice("formulation", self.formulation, ("standard", "genn"))
        self.slots_per_sample = _check_slots(self.slots_per_sample)


@dataclass
class StandaloneOptions:
    """Options of ``cpp_standalone`` and ``cpp_dense`` (none yet: threads and
    chunk size are ``device.threads`` and ``device.chunk_samples``)."""


def _environment_gpu_id():
    return int(os.environ.get(CUDA_GPU_ID_ENVIRONMENT_VARIABLE, 0))


def _environment_compute_capability():
    return float(os.environ.get(CUDA_COMPUTE_CAPABILITY_ENVIRONMENT_VARIABLE, 9.0))


@dataclass
class CudaOptions:
    """Options of the ``cuda`` device: brian2cuda preferences, set without looking for a GPU."""

    #: GPU to run on (default ``$SPIKEDYN_CUDA_GPU_ID`` or 0).
    gpu_id: int = field(default_factory=_environment_gpu_id)
    #: Architecture compiled for (default ``$SPIKEDYN_CUDA_COMPUTE_CAPABILITY`` or 9.0:
    #: H100/H200).
    compute_capability: float = field(default_factory=_environment_compute_capability)
    #: Slot budget of a run: ``ceil(slots_per_sample × chunk) + 1`` slots.
    slots_per_sample: float = DEFAULT_SLOTS_PER_SAMPLE

    def __post_init__(self):
        self.gpu_id = int(self.gpu_id)
        if self.gpu_id < 0:
            raise ValueError(f"option 'gpu_id' is {self.gpu_id}; it must be >= 0")
        self.compute_capability = float(self.compute_capability)
        if not (math.isfinite(self.compute_capability) and self.compute_capability > 0):
            raise ValueError(f"option 'compute_capability' is {self.compute_capability!r}; "
                             "give a GPU architecture such as 8.0 (A100) or 9.0 (H100)")
        self.slots_per_sample = _check_slots(self.slots_per_sample)


@dataclass
class GennOptions:
    """Options of the ``genn`` device."""

    #: GeNN's CUDA backend (true) or its single-threaded CPU backend (false).
    use_gpu: bool = False
    #: Slot budget of a run: ``ceil(slots_per_sample × chunk) + 1`` slots.
    slots_per_sample: float = DEFAULT_SLOTS_PER_SAMPLE

    def __post_init__(self):
        self.use_gpu = bool(self.use_gpu)
        self.slots_per_sample = _check_slots(self.slots_per_sample)


# ------------------------------------------------------------------ devices
@dataclass(frozen=True)
class DeviceSpec:
    """What a device is: options, formulation, capabilities, and what it refuses."""

    #: Engine device name (``--device``).
    name: str
    #: Brian2 device name.
    brian2_name: str
    #: One line for the help texts.
    summary: str
    #: The options dataclass of its backend.
    options: type
    #: How the models are written for the device.
    formulation: Formulation = STANDARD
    #: Whether one compiled build serves every stream (data through run_args).
    builds_once: bool = False
    #: Whether the device writes a project (``spikedyn codegen``).
    generates_project: bool = False
    #: Why the device cannot run input delays, with ``{delay}`` for the delay
    #: (empty: it can).
    no_input_delays: str = ""
    #: The device that serves a network this one refuses (empty: none, an error).
    fallback: str = ""
    #: Whether the device runs in a Python environment of its own (``make genn-venv``).
    own_environment: bool = False

    def refusal(self, parameters):
        """Why this device cannot run the network ``parameters`` (a sentence), or None."""
        delay = parameters.plasticity.max_input_delay_ms
        if delay > 0 and self.no_input_delays:
            return self.no_input_delays.format(delay=delay)
        return None

    def serving(self, parameters):
        """The device that runs ``parameters`` and the one-line note that says why.

        This device and an empty note where it can; its `fallback` and the
        reason where it cannot (``cpp_dense`` with input delays runs on
        ``cpp_standalone``). A device without a fallback is returned as it is:
        its backend then refuses the network with the reason.
        """
        reason = self.refusal(parameters)
        if reason is None or not self.fallback:
            return self, ""
        fallback = SPECS[self.fallback]
        return fallback, f"{reason.partition(';')[0]}: running on {fallback.name} instead"

    def option_names(self):
        """The keys of ``[device.options]`` this device takes."""
        return [item.name for item in fields(self.options)]

    def make_options(self, options=None, **values):
        """The options object of this device from ``options`` (None, a mapping or an
        instance of `options`) and keyword ``values`` over it.

        Raises
        ------
        ValueError
            For an option the device does not have (naming those it has) or a
            value out of range.
        """
        if isinstance(options, self.options):
            base = {item.name: getattr(options, item.name) for item in fields(self.options)}
        else:
            base = dict(options or {})
        base.update(values)
        unknown = sorted(set(base) - set(self.option_names()))
        if unknown:
            known = ", ".join(self.option_names()) or "none"
            raise ValueError(f"device {self.name!r} has no option {unknown[0]!r}; its options: "
                             f"{known}")
        return self.options(**base)


#: Every device of the engine by name, in the order the command line offers them.
SPECS = {spec.name: spec for spec in (
    DeviceSpec("runtime", "runtime", "Brian2's Python runtime (numpy): debugging, slow",
               RuntimeOptions),
    DeviceSpec("cpp_standalone", "cpp_standalone",
               "Brian2's C++ standalone, compiled once per configuration: every model",
               StandaloneOptions, builds_once=True, generates_project=True),
    DeviceSpec("cpp_dense", "cpp_dense",
               "this package's C++ standalone device with dense input pathways: the "
               "fastest (a network with input delays runs on cpp_standalone)",
               StandaloneOptions, builds_once=True, generates_project=True,
               no_input_delays="device 'cpp_dense' runs dense input pathways only, and input "
                               "delays (plasticity.max_input_delay_ms = {delay}) make them "
                               "sparse in time; set it to 0 or use cpp_standalone",
               fallback="cpp_standalone"),
    DeviceSpec("genn", "genn", "brian2genn (GeNN), in the environment of `make genn-venv`",
               GennOptions, formulation=GENN, generates_project=True,
               no_input_delays="device 'genn' does not support heterogeneous synaptic delays "
                               "(plasticity.max_input_delay_ms = {delay}); set it to 0 (the "
                               "default: no input delays) or use cpp_standalone or cuda",
               own_environment=True),
    DeviceSpec("cuda", "cuda_standalone", "brian2cuda on an NVIDIA GPU", CudaOptions,
               formulation=CUDA, builds_once=True, generates_project=True),
)}

#: The device of every protocol unless configured otherwise (its fallback
#: serves the networks it cannot run).
DEFAULT_DEVICE = "cpp_dense"

#: The engine's devices (``--device``).
DEVICES = tuple(SPECS)
#: Devices that generate a project (code generation without running is possible).
STANDALONE_DEVICES = tuple(name for name, spec in SPECS.items() if spec.generates_project)

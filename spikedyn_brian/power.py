"""Measured energy: CPU package (Linux powercap/RAPL) and GPU (NVML) counters.

`EnergyMeter` reads the cumulative energy counters before and after a block
of code (a compiled run) and reports the difference as an `EnergyReading`.
Where a sensor cannot be read, the reading says so (``cpu_status`` /
``gpu_status`` start with ``'unavailable: '`` and give the reason) and holds
only the wall time; callers then report the wall time and the analytical
estimate (:mod:`spikedyn_brian.analysis.energy`).

* **CPU**: every top-level powercap zone whose name starts with ``package``
  (``/sys/class/powercap/intel-rapl:N/energy_uj``, microjoules; AMD CPUs use
  the same interface). A counter that wrapped once during the block is
  corrected with ``max_energy_range_uj``. RAPL measures the whole package:
  other processes on the machine are included.
* **GPU**: ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the
  driver was loaded, Volta or newer) of every device, through ``pynvml``
  (package ``nvidia-ml-py``), if installed.
"""

import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EnergyReading", "EnergyMeter", "POWERCAP_ROOT", "UNAVAILABLE"]

#: Where Linux exposes the RAPL counters.
POWERCAP_ROOT = Path("/sys/class/powercap")

#: Prefix of the status of a sensor that could not be read.
UNAVAILABLE = "unavailable: "


@dataclass
class EnergyReading:
    """Energy measured over one block of code.

    Attributes
    ----------
    wall_seconds : float
    cpu_joules, gpu_joules : float or None
        None when the sensor is unavailable.
    cpu_status, gpu_status : str
        'measured (…zones…)' or 'unavailable: <reason>'.
    """

    wall_seconds: float
    cpu_joules: float | None
    gpu_joules: float | None
    cpu_status: str
    gpu_status: str

    def __add__(self, other):
        def total(a, b):
            return None if a is None or b is None else a + b

        return EnergyReading(
            self.wall_seconds + other.wall_seconds,
            total(self.cpu_joules, other.cpu_joules),
            total(self.gpu_joules, other.gpu_joules),
            self.cpu_status if self.cpu_joules is None else other.cpu_status,
            self.gpu_status if self.gpu_joules is None else other.gpu_status,
        )

    def __repr__(self):
        def show(value, status):
            return f"{value:.3f} J" if value is not None else status

        return (
            f"EnergyReading({self.wall_seconds:.3f} s; CPU {show(self.cpu_joules, self.cpu_status)}; "
            f"GPU {show(self.gpu_joules, self.gpu_status)})"
        )


class _RaplCounters:
    """The package zones of a powercap tree."""

    def __init__(self, root):
        self.root = Path(root)
        self.zones = []
        self.status = ""
        if not self.root.is_dir():
            self.status = f"{UNAVAILABLE}{self.root} does not exist (no powercap/RAPL driver)"
            return
        for zone in sorted(self.root.glob("*")):
            name_file, energy_file = zone / "name", zone / "energy_uj"
            if zone.name.count(":") != 1 or not energy_file.exists() or not name_file.exists():
                continue
            try:
                name = name_file.read_text().strip()
            except OSError:
                continue
            if name.startswith("package"):
                self.zones.append(zone)
        if not self.zones:
            self.status = f"{UNAVAILABLE}no package zone with energy_uj under {self.root}"
            return
        try:
            self.read()
        except OSError as error:
            self.zones = []
            self.status = f"{UNAVAILABLE}cannot read {error.filename}: {error.strerror}"
            return
        self.status = "measured (" + ", ".join(zone.name for zone in self.zones) + ")"

    @property
    def available(self):
        return bool(self.zones)

    def read(self):
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def joules(self, start, end):
        total = 0
        for zone, first, last in zip(self.zones, start, end):
            if last < first:
                last += int((zone / "max_energy_range_uj").read_text())
            total += last - first
        return total * 1e-6


class _NvmlCounters:
    """Total-energy counters of the NVIDIA GPUs."""

    def __init__(self):
        self.handles = []
        try:
            import pynvml
        except ImportError:
            self.status = f"{UNAVAILABLE}pynvml (package nvidia-ml-py) is not installed"
            return
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            if not self.handles:
                self.status = f"{UNAVAILABLE}NVML finds no GPU"
                return
            self.read()
        except pynvml.NVMLError as error:
            self.handles = []
            self.status = f"{UNAVAILABLE}NVML: {error}"
            return
        self.status = f"measured ({len(self.handles)} GPU(s), NVML)"

    @property
    def available(self):
        return bool(self.handles)

    def read(self):
        return [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles]

    def joules(self, start, end):
        return sum(last - first for first, last in zip(start, end)) * 1e-3


class EnergyMeter:
    """Context manager measuring the energy and wall time of a block.

    Parameters
    ----------
    powercap_root : str or Path
        Root of the powercap tree (a test can point it at a fake tree).
    gpu : bool
        Whether to try NVML.

    Examples
    --------
    >>> with EnergyMeter() as meter:                      # doctest: +SKIP
    ...     result = engine.run_stream(images, state, plastic=True, seed=0)
    >>> meter.reading.cpu_joules                          # doctest: +SKIP
    """

    def __init__(self, powercap_root=POWERCAP_ROOT, gpu=True):
        self._cpu = _RaplCounters(powercap_root)
        self._gpu = _NvmlCounters() if gpu else None
        self.reading = None

    @property
    def cpu_status(self):
        return self._cpu.status

    @property
    def gpu_status(self):
        return self._gpu.status if self._gpu is not None else f"{UNAVAILABLE}not requested"

    def __enter__(self):
        self._cpu_start = self._cpu.read() if self._cpu.available else None
        gpu = self._gpu
        self._gpu_start = gpu.read() if gpu is not None and gpu.available else None
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        wall = time.perf_counter() - self._start
        cpu = gpu = None
        if self._cpu_start is not None:
            cpu = self._cpu.joules(self._cpu_start, self._cpu.read())
        if self._gpu_start is not None:
            gpu = self._gpu.joules(self._gpu_start, self._gpu.read())
        self.reading = EnergyReading(wall, cpu, gpu, self.cpu_status, self.gpu_status)
        return False

    def __repr__(self):
        return f"EnergyMeter(CPU {self.cpu_status}; GPU {self.gpu_status})"

"""Measured energy: RAPL counters on a fake powercap tree, unavailable sensors."""

import pytest

from spikedyn_brian import power
from spikedyn_brian.power import UNAVAILABLE, EnergyMeter, EnergyReading


def _zone(root, name, label, energy_uj, max_range_uj=1_000_000):
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{label}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return zone


def test_package_energy_with_a_wrapped_counter(tmp_path):
    package0 = _zone(tmp_path, "intel-rapl:0", "package-0", 100)
    package1 = _zone(tmp_path, "intel-rapl:1", "package-1", 999_000)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)  # a sub-zone: not counted twice
    _zone(tmp_path, "intel-rapl:2", "psys", 7)  # not a package
    with EnergyMeter(powercap_root=tmp_path, gpu=False) as meter:
        (package0 / "energy_uj").write_text("2500100\n")  # +2.5 J
        (package1 / "energy_uj").write_text("500000\n")  # wrapped: +0.501 J
    reading = meter.reading
    assert reading.cpu_joules == pytest.approx(2.5 + 0.501)
    assert reading.cpu_status == "measured (intel-rapl:0, intel-rapl:1)"
    assert reading.gpu_joules is None
    assert reading.gpu_status == f"{UNAVAILABLE}not requested"
    assert reading.wall_seconds >= 0


def test_missing_powercap_is_reported(tmp_path):
    missing = tmp_path / "powercap"
    with EnergyMeter(powercap_root=missing, gpu=False) as meter:
        pass
    assert meter.reading.cpu_joules is None
    assert meter.reading.cpu_status == (
        f"{UNAVAILABLE}{missing} does not exist (no powercap/RAPL driver)")
    assert "unavailable" in repr(meter.reading)


def test_unreadable_counter_is_reported(tmp_path, monkeypatch):
    _zone(tmp_path, "intel-rapl:0", "package-0", 1)

    def denied(self):
        raise PermissionError(13, "Permission denied", str(tmp_path / "intel-rapl:0/energy_uj"))

    monkeypatch.setattr(power._RaplCounters, "read", denied)
    meter = EnergyMeter(powercap_root=tmp_path, gpu=False)
    assert meter.cpu_status.startswith(f"{UNAVAILABLE}cannot read ")
    assert meter.cpu_status.endswith("energy_uj: Permission denied")


def test_gpu_without_nvml_is_reported(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pynvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("no pynvml")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    meter = EnergyMeter(powercap_root="/nonexistent", gpu=True)
    assert meter.gpu_status == f"{UNAVAILABLE}pynvml (package nvidia-ml-py) is not installed"


def test_readings_add_up():
    first = EnergyReading(1.0, 2.0, None, "measured (x)", f"{UNAVAILABLE}no")
    second = EnergyReading(0.5, 1.0, None, "measured (x)", f"{UNAVAILABLE}no")
    total = first + second
    assert total.wall_seconds == 1.5 and total.cpu_joules == 3.0 and total.gpu_joules is None
    assert total.gpu_status == f"{UNAVAILABLE}no"

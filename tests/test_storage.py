"""Tests for spikedyn_brian.analysis.storage (netCDF round trips)."""
import json
import os

import numpy as np
import pytest
import xarray

from spikedyn_brian.analysis import storage

NESTED_CONFIG = {
    "network": {"n_excitatory": 400, "rates": [0.1, 0.2]},
    "plasticity": True,
    "seed": None,
}


def make_dataset():
    return xarray.Dataset(
        {
            "spike_counts": (
                ("sample", "neuron"),
                np.array([[0, 3, 1], [2, 0, 5]], dtype=np.int64),
                {"units": "1", "long_name": "excitatory spike count per sample"},
            ),
            "accuracy": (
                (),
                0.875,
                {"units": "1", "long_name": "fraction correct", "rule": "all_activity"},
            ),
        },
        coords={
            "sample": ("sample", np.array([10, 11]), {"long_name": "sample index"}),
            "neuron": ("neuron", np.arange(3)),
            "time": ("sample", np.array([0.35, 0.7]), {"units": "s"}),
        },
        attrs={
            "title": "test run",
            "config": NESTED_CONFIG,
            "labels_present": [0, 1, 2],
            "converged": False,
            "checkpoint": None,
            "n_epochs": np.int64(3),
            "learning_rate": np.float32(0.5),
        },
    )


# --------------------------------------------------------------------------
# to_netcdf_safe_attrs
# --------------------------------------------------------------------------


def test_to_netcdf_safe_attrs_conversions():
    safe = storage.to_netcdf_safe_attrs(
        {
            "nested": {"a": [1, 2], "b": {"c": np.float64(0.5)}},
            "items": [1, "two", None],
            "flag_true": True,
            "flag_false": np.bool_(False),
            "missing": None,
            "count": np.int32(7),
            "rate": np.float64(2.5),
            "name": "x",
            "number": 4,
        }
    )
    assert json.loads(safe["nested"]) == {"a": [1, 2], "b": {"c": 0.5}}
    assert json.loads(safe["items"]) == [1, "two", None]
    assert safe["flag_true"] == 1 and type(safe["flag_true"]) is int
    assert safe["flag_false"] == 0 and type(safe["flag_false"]) is int
    assert safe["missing"] == "none"
    assert safe["count"] == 7 and type(safe["count"]) is int
    assert safe["rate"] == 2.5 and type(safe["rate"]) is float
    assert safe["name"] == "x"
    assert safe["number"] == 4


def test_to_netcdf_safe_attrs_does_not_mutate_input():
    attrs = {"config": {"a": 1}, "flag": True}
    storage.to_netcdf_safe_attrs(attrs)
    assert attrs == {"config": {"a": 1}, "flag": True}


def test_to_netcdf_safe_attrs_rejects_unstorable_value():
    with pytest.raises(ValueError, match="attribute 'callback'"):
        storage.to_netcdf_safe_attrs({"callback": object()})


# --------------------------------------------------------------------------
# round trip
# --------------------------------------------------------------------------


def test_round_trip_keeps_values_dims_coords_and_variable_attrs(tmp_path):
    dataset = make_dataset()
    path = storage.write_dataset(dataset, tmp_path / "run.nc")
    assert path == tmp_path / "run.nc"
    assert path.is_file()

    loaded = storage.read_dataset(path)
    assert loaded["spike_counts"].dims == ("sample", "neuron")
    np.testing.assert_array_equal(loaded["spike_counts"].values, [[0, 3, 1], [2, 0, 5]])
    assert float(loaded["accuracy"]) == 0.875
    np.testing.assert_array_equal(loaded["sample"].values, [10, 11])
    np.testing.assert_array_equal(loaded["neuron"].values, [0, 1, 2])
    np.testing.assert_allclose(loaded["time"].values, [0.35, 0.7])
    assert set(loaded.coords) == {"sample", "neuron", "time"}

    assert loaded["spike_counts"].attrs["units"] == "1"
    assert loaded["spike_counts"].attrs["long_name"] == "excitatory spike count per sample"
    assert loaded["accuracy"].attrs["rule"] == "all_activity"
    assert loaded["sample"].attrs["long_name"] == "sample index"
    assert loaded["time"].attrs["units"] == "s"


def test_round_trip_attrs_are_decodable(tmp_path):
    path = storage.write_dataset(make_dataset(), tmp_path / "run.nc")
    attrs = storage.read_dataset(path).attrs
    assert attrs["title"] == "test run"
    assert isinstance(attrs["config"], str)
    assert json.loads(attrs["config"]) == NESTED_CONFIG
    assert json.loads(attrs["labels_present"]) == [0, 1, 2]
    assert attrs["converged"] == 0
    assert attrs["checkpoint"] == "none"
    assert attrs["n_epochs"] == 3
    assert attrs["learning_rate"] == pytest.approx(0.5)


def test_write_does_not_mutate_callers_dataset(tmp_path):
    dataset = make_dataset()
    storage.write_dataset(dataset, tmp_path / "run.nc")
    assert dataset.attrs["config"] == NESTED_CONFIG
    assert dataset.attrs["converged"] is False
    assert dataset.attrs["checkpoint"] is None
    xarray.testing.assert_identical(dataset, make_dataset())


def test_write_creates_parent_directory(tmp_path):
    path = storage.write_dataset(make_dataset(), tmp_path / "a" / "b" / "run.nc")
    assert path.is_file()


def test_read_closes_file_so_it_can_be_overwritten(tmp_path):
    path = tmp_path / "run.nc"
    storage.write_dataset(make_dataset(), path)
    first = storage.read_dataset(path)
    changed = make_dataset()
    changed["accuracy"] = changed["accuracy"] * 0 + 0.25
    storage.write_dataset(changed, path)
    assert float(first["accuracy"]) == 0.875
    assert float(storage.read_dataset(path)["accuracy"]) == 0.25


def test_read_missing_file(tmp_path):
    missing = tmp_path / "nothing_here.nc"
    with pytest.raises(FileNotFoundError, match="nothing_here.nc"):
        storage.read_dataset(missing)


# --------------------------------------------------------------------------
# atomicity
# --------------------------------------------------------------------------


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    storage.write_dataset(make_dataset(), tmp_path / "run.nc")
    storage.write_dataset(make_dataset(), tmp_path / "run.nc")
    assert sorted(os.listdir(tmp_path)) == ["run.nc"]


def test_failed_write_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / "run.nc"
    storage.write_dataset(make_dataset(), path)
    original_bytes = path.read_bytes()

    unstorable = xarray.Dataset(
        {"mixed": ("x", np.array([{"a": 1}, 2, None], dtype=object))}
    )
    with pytest.raises(Exception):
        storage.write_dataset(unstorable, path)

    assert path.read_bytes() == original_bytes
    assert sorted(os.listdir(tmp_path)) == ["run.nc"]
    assert float(storage.read_dataset(path)["accuracy"]) == 0.875


def test_failure_after_temporary_file_created_removes_it(tmp_path, monkeypatch):
    path = tmp_path / "run.nc"
    storage.write_dataset(make_dataset(), path)
    original_bytes = path.read_bytes()

    def partial_write(self, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xarray.Dataset, "to_netcdf", partial_write)
    with pytest.raises(OSError, match="disk full"):
        storage.write_dataset(make_dataset(), path)

    assert path.read_bytes() == original_bytes
    assert sorted(os.listdir(tmp_path)) == ["run.nc"]


def test_write_rejects_non_dataset(tmp_path):
    with pytest.raises(TypeError, match="xarray.Dataset"):
        storage.write_dataset(xarray.DataArray([1, 2]), tmp_path / "run.nc")

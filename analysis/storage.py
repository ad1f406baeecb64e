"""netCDF input and output for :class:`xarray.Dataset` results.

netCDF attributes may only hold strings, numbers and 1-D numeric arrays.
:func:`write_dataset` therefore converts richer attribute values (nested
dicts and lists, booleans, ``None``, numpy scalars) on a copy of the dataset
before writing, and writes atomically: the file appears at its final path
complete or not at all, and an existing file is left untouched if writing
fails.

Nested dicts and lists come back from :func:`read_dataset` as JSON strings;
decode them with :func:`json.loads`.

Every numeric variable with at least one dimension is stored with netCDF4's
own checksum (HDF5's Fletcher-32 filter, ``fletcher32=True``): a byte changed
in its data after writing makes :func:`read_dataset` fail with a
`ResultsFileError` naming the variable, instead of returning a wrong result.
(Scalars cannot carry the filter: HDF5 filters need chunked storage.)
"""
from __future__ import annotations

import json
import os
import pathlib
import uuid

import numpy as np
import xarray

from spikedyn_brian.config import ConfigError

__all__ = ["to_netcdf_safe_attrs", "write_dataset", "read_dataset", "ResultsFileError"]

NETCDF_ENGINE = "netcdf4"


class ResultsFileError(ConfigError):
    """A results (netCDF) file exists but cannot be read: truncated, corrupt or not netCDF.

    A ``ValueError`` (and a `~spikedyn_brian.config.ConfigError`, so that the
    command line reports it without a traceback) whose message names the file
    and the fix.
    """


def _json_default(value):
    """Make numpy and path values JSON-serialisable inside nested attrs."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(
        f"cannot store a {type(value).__name__} inside a netCDF attribute; "
        "convert it to a string, number, list or dict first."
    )


def _to_json(value, key):
    try:
        return json.dumps(value, default=_json_default, sort_keys=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"attribute {key!r}: {error}") from error


def _safe_attribute_value(key, value):
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return int(bool(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        if value.ndim == 1 and value.dtype.kind in "iuf" and value.size:
            return value
        return _to_json(value.tolist(), key)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return _to_json(value, key)
    raise ValueError(
        f"attribute {key!r} has type {type(value).__name__}, which netCDF cannot "
        "store; convert it to a string, number, bool, None, list or dict first."
    )


def to_netcdf_safe_attrs(mapping):
    """Return a copy of an attribute mapping with netCDF-safe values.

    Parameters
    ----------
    mapping : Mapping[str, object]
        Attributes, e.g. ``dataset.attrs`` or ``dataset[name].attrs``.

    Returns
    -------
    dict
        A new dict with the same keys, where:

        * nested dicts, lists, tuples and sets become JSON strings (numpy
          scalars and arrays inside them become plain JSON numbers/lists);
        * ``bool`` (and ``numpy.bool_``) becomes ``int`` 0 or 1;
        * ``None`` becomes the string ``"none"``;
        * numpy scalars become Python scalars;
        * path-like objects become strings;
        * 1-D non-empty numeric numpy arrays are kept; other arrays become
          JSON strings;
        * strings, ints and floats are kept.

    Raises
    ------
    ValueError
        If a key is not a string, or a value has a type with no netCDF
        representation (the message names the attribute).
    """
    safe = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ValueError(
                f"attribute names must be strings; got {key!r} "
                f"({type(key).__name__}). Rename the attribute."
            )
        safe[key] = _safe_attribute_value(key, value)
    return safe


def write_dataset(dataset, path):
    """Write a dataset to a netCDF file atomically.

    The dataset is written to a temporary file in the destination directory
    and then moved into place with :func:`os.replace`, so readers never see a
    half-written file and an existing file survives a failed write. Attributes
    of the dataset and of every variable (coordinates included) are made safe
    with :func:`to_netcdf_safe_attrs` on a shallow copy; the caller's dataset
    is not modified.

    Parameters
    ----------
    dataset : xarray.Dataset
        Dataset to write.
    path : str or os.PathLike
        Destination file. Missing parent directories are created.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``dataset`` is not an :class:`xarray.Dataset`.
    ValueError
        If an attribute cannot be made netCDF-safe.
    Exception
        Whatever the netCDF backend raises if the data cannot be written;
        the temporary file is removed first.
    """
    if not isinstance(dataset, xarray.Dataset):
        raise TypeError(
            f"dataset must be an xarray.Dataset; got {type(dataset).__name__}. "
            "Wrap a DataArray with .to_dataset(name=...)."
        )
    path = pathlib.Path(path)
    safe_dataset = dataset.copy(deep=False)
    safe_dataset.attrs = to_netcdf_safe_attrs(dataset.attrs)
    for name, variable in safe_dataset.variables.items():
        variable.attrs = to_netcdf_safe_attrs(dataset.variables[name].attrs)

    for variable in safe_dataset.variables.values():
        if _checksummed(variable):
            encoding = dict(variable.encoding)
            encoding.pop("contiguous", None)  # filters need chunked storage
            encoding["fletcher32"] = True
            variable.encoding = encoding

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = path.with_name(
        f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )
    try:
        safe_dataset.to_netcdf(temporary_path, engine=NETCDF_ENGINE)
        os.replace(temporary_path, path)
    except BaseException:
        try:
            temporary_path.unlink()
        except FileNotFoundError:
            pass
        raise
    return path


def _checksummed(variable):
    """Whether a variable is stored with netCDF4's Fletcher-32 checksum: numeric (or
    boolean, date, duration) data with at least one dimension and at least one value."""
    return variable.ndim >= 1 and variable.size > 0 and variable.dtype.kind in "iufbMm"


def _damaged_variable(path):
    """The first variable of a netCDF file whose data cannot be read (or None)."""
    try:
        with xarray.open_dataset(path, engine=NETCDF_ENGINE) as dataset:
            for name, variable in dataset.variables.items():
                try:
                    variable.load()
                except Exception as error:  # noqa: BLE001 - the backend's errors vary
                    return name, error
    except Exception:  # noqa: BLE001 - not even the metadata: reported as such
        return None
    return None


def read_dataset(path):
    """Read a netCDF file fully into memory and close it.

    Because the file is closed before returning, it can be overwritten
    (for example by :func:`write_dataset`) while the returned dataset is in
    use.

    Parameters
    ----------
    path : str or os.PathLike
        netCDF file to read.

    Returns
    -------
    xarray.Dataset
        The loaded dataset. Attributes that were nested dicts or lists when
        written are JSON strings; decode them with :func:`json.loads`.

    Raises
    ------
    FileNotFoundError
        If no file exists at ``path``.
    ResultsFileError
        If the file exists but cannot be read: not netCDF, truncated, corrupt
        or unreadable, or a variable's data fail their checksum (the message
        names the file, the variable where known, and the fix).
    """
    path = pathlib.Path(path)
    try:
        is_file = path.is_file()
    except (OSError, ValueError) as error:
        raise ResultsFileError(f"results file {str(path)!r} cannot be accessed: {error}") from None
    if not is_file:
        raise FileNotFoundError(
            f"no netCDF file at {str(path)!r}; check the path or write it first "
            "with write_dataset."
        )
    try:
        with xarray.open_dataset(path, engine=NETCDF_ENGINE) as dataset:
            return dataset.load()
    except PermissionError as error:
        raise ResultsFileError(
            f"results file {str(path)!r} cannot be read: permission denied "
            f"({error.strerror}); make it readable (chmod u+r {str(path)!r})."
        ) from None
    except Exception as error:  # noqa: BLE001 - the backend's errors vary by damage
        damaged = _damaged_variable(path)
        if damaged is not None:
            name, cause = damaged
            raise ResultsFileError(
                f"results file {str(path)!r} is damaged: the data of variable {name!r} fail "
                f"their netCDF checksum or cannot be decoded ({type(cause).__name__}: "
                f"{' '.join(str(cause).split())}), so its values cannot be trusted; write it "
                "again (re-run the command that produced it, with a fresh --out) or give the "
                "path of an intact results file."
            ) from None
        size = _size(path)
        what = "is empty (0 bytes)" if size == 0 else "is not a readable netCDF file"
        raise ResultsFileError(
            f"results file {str(path)!r} {what} (truncated, corrupt or of another format: "
            f"{type(error).__name__}: {error}); write it again (re-run the command that "
            "produced it, with a fresh --out) or give the path of an intact results file."
        ) from None


def _size(path):
    try:
        return path.stat().st_size
    except OSError:
        return None

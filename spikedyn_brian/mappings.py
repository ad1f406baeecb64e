"""Configuration tables: a TOML file read into nested mappings, and mappings merged.

The raw layer beneath `spikedyn_brian.config` (which turns a mapping into
validated dataclasses) and `spikedyn_brian.parameter_sets` (which puts a
tuned set beneath a mapping); light: the standard library only.
"""

import tomllib
from pathlib import Path

from spikedyn_brian.errors import ConfigError, show

__all__ = ["SECTIONS", "read_mapping", "merge", "check_sections"]

#: Top-level keys of every protocol's configuration: each is a table (a section).
SECTIONS = ("network", "stream", "device", "output", "search", "dask")


def read_mapping(path=None, overrides=None):
    """The nested mapping of a TOML file (empty for None) with ``overrides`` merged over it.

    Raises
    ------
    ConfigError
        If the file does not exist or is not valid TOML.
    """
    mapping = {}
    if path is not None:
        path = Path(path)
        try:
            is_file = path.is_file()
        except (OSError, ValueError) as error:
            raise ConfigError(f"configuration file '{path}' cannot be accessed: {error}") from None
        if not is_file:
            raise ConfigError(f"configuration file '{path}' does not exist")
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as error:
            raise ConfigError(
                f"configuration file '{path}' cannot be read: {error.strerror or error}; "
                "check its permissions"
            ) from None
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"configuration file '{path}' is not valid TOML: it is not UTF-8 text "
                f"({error.reason} at byte {error.start})"
            ) from None
        try:
            mapping = tomllib.loads(text)
        except (ValueError, RecursionError) as error:  # TOMLDecodeError, or a huge integer
            raise ConfigError(f"configuration file '{path}' is not valid TOML: {error}") from None
        check_sections(mapping, f"configuration file '{path}': ")
    if overrides:
        if not isinstance(overrides, dict):
            raise ConfigError(
                f"overrides must be a nested table (dict) of keys, got {show(overrides)}"
            )
        mapping = merge(mapping, overrides)
    return mapping


def check_sections(mapping, where=""):
    """Every section of a configuration (`SECTIONS`) is a table of keys.

    ``network = 5`` or ``output = "x.nc"`` would otherwise be replaced by the
    defaults as soon as anything (a command-line option, the protocol's
    defaults) is merged with it. Other top-level keys are left to the
    configuration reader (an unknown key).
    """
    for key, value in mapping.items():
        if key in SECTIONS and not isinstance(value, dict):
            raise ConfigError(
                f"{where}key '{key}' must be a table of keys (a [{key}] section), got "
                f"{show(value)}; write it as [{key}] followed by its keys")


def merge(base, overrides, _prefix=""):
    """Recursively merge ``overrides`` into a copy of ``base``.

    Raises
    ------
    ConfigError
        If a key is a table (a section) on one side and a plain value on the
        other (``network = 5`` merged with ``[network]`` keys): the value is
        never silently replaced by the table, nor the table by the value.
    """
    result = dict(base)
    for key, value in overrides.items():
        where = f"{_prefix}.{key}" if _prefix else str(key)
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value, where)
        elif key in result and isinstance(value, dict) != isinstance(result[key], dict):
            plain = result[key] if isinstance(value, dict) else value
            raise ConfigError(
                f"key '{where}' must be a table of keys (a [{where}] section), got "
                f"{show(plain)}; write it as [{where}] followed by its keys")
        else:
            result[key] = value
    return result

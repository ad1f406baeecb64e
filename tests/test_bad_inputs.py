"""Every bad input gets a clear error naming the problem, before anything is built.

Generated cases (hypothesis, derandomized: the same examples on every run)
feed bad TOML text, unknown keys, wrong types, NaN/inf/0/negative/huge values
for every numeric network parameter (found by introspection), impossible
stream settings, damaged IDX directories, corrupt checkpoints and results
files. Each case expects the right exception type, with a message naming the
key or the file, and never another exception. Validation only: nothing here
builds or simulates a network.
"""

import dataclasses
import gzip
import math
import os
import struct
import tempfile
import tomllib
import typing
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikedyn_brian import config
from spikedyn_brian.analysis.storage import ResultsFileError, read_dataset, write_dataset
from spikedyn_brian.checkpoint import Checkpoint, CheckpointError
from spikedyn_brian.config import (
    NETWORK_BOUNDS,
    STREAM_LIMITS,
    ConfigError,
    ContinualExperiment,
    Experiment,
    load_experiment,
)
from spikedyn_brian.data import MNISTFileError, load_idx_directory, read_idx, write_idx
from spikedyn_brian.models.parameters import NetworkParameters
from spikedyn_brian.protocols import dynamic_digits, static_mnist


PROTOCOLS = Path(static_mnist.DEFAULT_CONFIG).parent


def generated(examples):
    """Hypothesis settings of this file: deterministic, no deadline, no database."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory for the files of generated cases (each case takes a fresh folder in it)."""
    return tmp_path_factory.mktemp("bad-inputs")


def fresh_directory(workspace):
    return Path(tempfile.mkdtemp(dir=workspace))


def output_overrides(workspace):
    """Results in the workspace (not the repository's results/), no checkpoint lookup there."""
    return {"output": {"path": str(workspace / "results.nc")}}


# --------------------------------------------------------------------------
# Introspection of the parameter dataclasses
# --------------------------------------------------------------------------


def numeric_fields(cls=NetworkParameters, prefix=""):
    """``(dotted key below network, type)`` of every int/float field, recursively."""
    hints = typing.get_type_hints(cls)
    found = []
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            found += numeric_fields(kind, f"{prefix}{item.name}.")
        elif kind in (int, float):
            found.append((f"{prefix}{item.name}", kind))
    return found


def leaf_fields(cls, prefix=""):
    """``(dotted key, type)`` of every non-dataclass field of an experiment class."""
    hints = typing.get_type_hints(cls)
    found = []
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            found += leaf_fields(kind, f"{prefix}{item.name}.")
        else:
            found.append((f"{prefix}{item.name}", kind))
    return found


def tables(cls, prefix=""):
    """``(dotted key of a table, its dataclass)`` of an experiment class (``''``: the top)."""
    found = [(prefix.rstrip("."), cls)]
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            found += tables(kind, f"{prefix}{item.name}.")
    return found


NUMERIC_FIELDS = numeric_fields()
FIELD_TYPES = dict(NUMERIC_FIELDS)


def nested(dotted, value):
    """``'a.b.c', v`` → ``{'a': {'b': {'c': v}}}``."""
    *parents, leaf = dotted.split(".")
    result = {leaf: value}
    for name in reversed(parents):
        result = {name: result}
    return result


def toml_value(value):
    """A Python scalar or list as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(toml_character(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_character(character):
    """One character inside a TOML basic string (escaped where TOML requires it)."""
    if character in '"\\':
        return "\\" + character
    if ord(character) < 0x20 or ord(character) == 0x7F:
        return f"\\u{ord(character):04x}"
    return character


def toml_text(dotted, value):
    """One key in its table, e.g. ``[network.excitatory]\\ntau_ge_ms = 0``."""
    *parents, leaf = dotted.split(".")
    header = f"[{'.'.join(parents)}]\n" if parents else ""
    return f"{header}{leaf} = {toml_value(value)}\n"


def table_allows(key, value):
    """Whether the documented table (`NETWORK_BOUNDS`) accepts ``value`` for ``key`` alone."""
    kind = FIELD_TYPES[key]
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                return False
            value = int(value)
    return NETWORK_BOUNDS[key].allows(value)


def expect_config_error(call, *fragments):
    """``call()`` raises exactly a ConfigError whose message holds every fragment."""
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def load_or_config_error(call):
    """``call()`` either succeeds or raises a ConfigError naming a key; nothing else."""
    try:
        return call()
    except ConfigError as error:
        assert "key '" in str(error) or "keys '" in str(error), str(error)
        return None


# --------------------------------------------------------------------------
# Valid configurations still load
# --------------------------------------------------------------------------


def test_protocol_tomls_still_load(workspace, default_experiment):
    assert load_experiment(static_mnist.DEFAULT_CONFIG) == default_experiment
    continual = load_experiment(dynamic_digits.DEFAULT_CONFIG, None, ContinualExperiment)
    assert continual.network.variant == "spikedyn"
    from spikedyn_brian.protocols import model_search

    assert model_search.load_plan(PROTOCOLS / "model_search.toml").search.sizes == [100, 400]


@pytest.mark.parametrize("variant", ["diehl-cook", "asp", "spikedyn"])
@pytest.mark.parametrize("method", config.INTEGRATION_METHODS)
def test_every_variant_and_integration_method_is_valid(variant, method, workspace):
    overrides = {"network": {"variant": variant, "integration_method": method},
                 **output_overrides(workspace)}
    assert load_experiment(static_mnist.DEFAULT_CONFIG, overrides).network.variant == variant
    assert load_experiment(dynamic_digits.DEFAULT_CONFIG, overrides,
                           ContinualExperiment).network.integration_method == method


def test_tuning_search_space_corners_are_valid(workspace):
    from spikedyn_brian.protocols.tuning import SEARCH_SPACES

    for variant, space in SEARCH_SPACES.items():
        for corner in ("low", "high"):
            network = {"variant": variant}
            for dimension in space:
                value = (dimension.choices[0] if dimension.choices
                         else getattr(dimension, corner))
                network = config.merge(network, nested(dimension.key, value))
            load_experiment(dynamic_digits.DEFAULT_CONFIG,
                            {"network": network, **output_overrides(workspace)},
                            ContinualExperiment)


def test_every_numeric_network_field_has_a_documented_bound():
    assert {key for key, _ in NUMERIC_FIELDS} == set(NETWORK_BOUNDS)
    defaults = NetworkParameters()
    for key, _ in NUMERIC_FIELDS:
        value = defaults
        for name in key.split("."):
            value = getattr(value, name)
        assert NETWORK_BOUNDS[key].allows(value), key


# --------------------------------------------------------------------------
# Numeric network parameters: NaN, inf, 0, negative, huge
# --------------------------------------------------------------------------


def test_nan_inf_and_huge_values_are_rejected_for_every_numeric_field(workspace):
    for key, kind in NUMERIC_FIELDS:
        for value in (math.nan, math.inf, -math.inf, 1e300, -1e300):
            message = expect_config_error(
                lambda: load_experiment(None, {**nested(f"network.{key}", value),
                                               **output_overrides(workspace)}),
                f"'network.{key}'")
            if kind is float:
                assert "Fix" in message or "must be" in message, message


SPECIAL_VALUES = [math.nan, math.inf, -math.inf, 0, 0.0, -0.0, -1, -1.0, -1e-9, 5e-324,
                  1e-300, 1e-4, 0.5, 1.0, 1e3, 1000.5, 1e5, 100001, 1e6, 1e9, 10**9 + 1,
                  1e12, 1e13, 2**31, 1e300, -1e300, 10**20]

network_values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10**20, max_value=10**20),
)


def check_network_value(key, value, load):
    if table_allows(key, value):
        load_or_config_error(load)
    else:
        message = expect_config_error(load, f"'network.{key}'")
        assert "must be" in message, message


@generated(200)
@given(field=st.sampled_from(NUMERIC_FIELDS), value=network_values,
       continual=st.booleans())
def test_network_values_from_toml(field, value, continual, workspace):
    key, _ = field
    directory = fresh_directory(workspace)
    path = directory / "experiment.toml"
    path.write_text(toml_text(f"network.{key}", value)
                    + f'[output]\npath = "{directory / "out.nc"}"\n')
    cls = ContinualExperiment if continual else Experiment
    check_network_value(key, value, lambda: load_experiment(path, None, cls))


@generated(200)
@given(field=st.sampled_from(NUMERIC_FIELDS), value=network_values,
       protocol=st.sampled_from(["static", "continual"]))
def test_network_values_from_cli_overrides(field, value, protocol, workspace):
    key, _ = field
    overrides = {**nested(f"network.{key}", value), **output_overrides(workspace)}
    if protocol == "static":
        load = lambda: load_experiment(static_mnist.DEFAULT_CONFIG, overrides)  # noqa: E731
    else:
        load = lambda: load_experiment(  # noqa: E731
            dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)
    check_network_value(key, value, load)


TIME_CONSTANTS = [key for key, bound in NETWORK_BOUNDS.items() if bound.time_constant]


@generated(60)
@given(key=st.sampled_from(TIME_CONSTANTS),
       dt=st.floats(min_value=0.001, max_value=1.0),
       ratio=st.floats(min_value=0.001, max_value=2.0))
def test_time_constants_shorter_than_the_time_step_are_rejected(key, dt, ratio, workspace):
    tau = dt * ratio
    overrides = config.merge(nested(f"network.{key}", tau),
                             {"network": {"inputs": {"dt_ms": dt}},
                              **output_overrides(workspace)})
    if tau < dt:
        expect_config_error(lambda: load_experiment(None, overrides), f"'network.{key}'",
                            "time step")
    else:
        load_or_config_error(lambda: load_experiment(None, overrides))


def test_reported_failures_are_clear_errors(workspace):
    out = output_overrides(workspace)
    cases = [
        ({"excitatory": {"tau_membrane_ms": math.nan}}, "network.excitatory.tau_membrane_ms"),
        ({"excitatory": {"tau_ge_ms": 0}}, "network.excitatory.tau_ge_ms"),
        ({"inputs": {"maximum_intensity": math.inf}}, "network.inputs.maximum_intensity"),
        ({"inputs": {"dt_ms": 0}}, "network.inputs.dt_ms"),
        ({"inputs": {"dt_ms": 2.0}}, "network.inputs.dt_ms"),
        ({"inputs": {"presentation_ms": 0.4}}, "network.inputs.dt_ms"),
        ({"inputs": {"rate_divisor": 0}}, "network.inputs.rate_divisor"),
        ({"inputs": {"start_intensity": 0}}, "network.inputs.start_intensity"),
        ({"inputs": {"minimum_spikes": -1}}, "network.inputs.minimum_spikes"),
        ({"excitatory": {"timer": "sometimes"}}, "network.excitatory.timer"),
        ({"integration_method": "heun"}, "network.integration_method"),
        ({"excitatory": {"v_rest_mV": -40.0}}, "network.excitatory.v_threshold_mV"),
        ({"inhibitory": {"v_threshold_mV": -70.0}}, "network.inhibitory.v_threshold_mV"),
        ({"excitatory": {"e_excitatory_mV": -60.0}}, "network.excitatory.e_excitatory_mV"),
        ({"spikedyn": {"theta_max_mV": 20.0}}, "network.spikedyn.theta_max_mV"),
        ({"spikedyn": {"x_target": 1.5}}, "network.spikedyn.x_target"),
        ({"asp": {"leak_per_sample": 2.0}}, "network.asp.leak_per_sample"),
        ({"plasticity": {"w_max": 0}}, "network.plasticity.w_max"),
        ({"plasticity": {"max_input_delay_ms": 1e4}}, "network.plasticity.max_input_delay_ms"),
        ({"excitatory": {"refractory_ms": 400.0}}, "network.excitatory.refractory_ms"),
        ({"n_neurons": 100_001}, "network.n_neurons"),
        ({"inputs": {"presentation_ms": 1e5}}, "device.chunk_samples"),
    ]
    for network, key in cases:
        expect_config_error(lambda: load_experiment(None, {"network": network, **out}),
                            f"'{key}'")


# --------------------------------------------------------------------------
# Stream and device settings
# --------------------------------------------------------------------------

count_values = st.one_of(
    st.sampled_from([0, -1, 1, 2, 9, 10, 11, 10**4, 10**4 + 1, 10**6, 10**6 + 1, 10**7,
                     10**7 + 1, 2**31 - 1, 2**31, 2**63, -2**63]),
    st.integers(min_value=-2**64, max_value=2**64),
)

#: (section, key) → (lowest, highest) allowed on its own.
STATIC_COUNTS = {
    ("stream", "train_samples"): (1, STREAM_LIMITS["train_samples"]),
    ("stream", "test_samples"): (1, STREAM_LIMITS["test_samples"]),
    ("stream", "epochs"): (1, STREAM_LIMITS["epochs"]),
    ("stream", "assignment_samples"): (0, STREAM_LIMITS["assignment_samples"]),
    ("stream", "seed"): (0, 2**31 - 1),
    ("device", "chunk_samples"): (1, STREAM_LIMITS["chunk_samples"]),
    ("device", "threads"): (0, 1),  # more than one thread is refused (races)
}
CONTINUAL_COUNTS = {
    ("stream", "samples_per_task"): (1, STREAM_LIMITS["samples_per_task"]),
    ("stream", "probe_per_class"): (1, STREAM_LIMITS["probe_per_class"]),
    ("stream", "test_per_class"): (1, STREAM_LIMITS["test_per_class"]),
    ("stream", "seed"): (0, 2**31 - 1),
    ("device", "chunk_samples"): (1, STREAM_LIMITS["chunk_samples"]),
    ("device", "threads"): (0, 1),  # more than one thread is refused (races)
}


@generated(120)
@given(field=st.sampled_from(sorted(STATIC_COUNTS)), value=count_values,
       through_toml=st.booleans())
def test_static_stream_counts(field, value, through_toml, workspace):
    section, key = field
    low, high = STATIC_COUNTS[field]
    overrides = {section: {key: value}, **output_overrides(workspace)}
    if through_toml:
        if not -2**63 <= value < 2**63:  # TOML integers are 64-bit
            value = -2**63 if value < 0 else 2**63 - 1
            overrides[section][key] = value
        path = fresh_directory(workspace) / "stream.toml"
        path.write_text(f"[{section}]\n{key} = {value}\n")
        load = lambda: load_experiment(path, output_overrides(workspace))  # noqa: E731
    else:
        load = lambda: load_experiment(None, overrides)  # noqa: E731
    if low <= value <= high:
        load_or_config_error(load)
    else:
        expect_config_error(load, f"'{section}.{key}'")


@generated(80)
@given(field=st.sampled_from(sorted(CONTINUAL_COUNTS)), value=count_values)
def test_continual_stream_counts(field, value, workspace):
    section, key = field
    low, high = CONTINUAL_COUNTS[field]
    overrides = {section: {key: value}, **output_overrides(workspace)}
    load = lambda: load_experiment(  # noqa: E731
        dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)
    if low <= value <= high:
        load_or_config_error(load)
    else:
        expect_config_error(load, f"'{section}.{key}'")


class_lists = st.lists(st.integers(min_value=-3, max_value=12), max_size=12)


@generated(80)
@given(classes=class_lists, continual=st.booleans(), per_task=st.integers(-1, 4))
def test_digit_classes_and_task_order(classes, continual, per_task, workspace):
    distinct_digits = bool(classes) and all(0 <= c <= 9 for c in classes) and (
        len(set(classes)) == len(classes))
    if continual:
        overrides = {"stream": {"task_order": classes, "classes_per_task": per_task},
                     **output_overrides(workspace)}
        load = lambda: load_experiment(  # noqa: E731
            dynamic_digits.DEFAULT_CONFIG, overrides, ContinualExperiment)
        if not distinct_digits:
            expect_config_error(load, "'stream.task_order'")
        elif per_task < 1 or len(classes) % per_task:
            expect_config_error(load, "'stream.classes_per_task'")
        else:
            assert load().stream.task_order == classes
    else:
        overrides = {"stream": {"classes": classes}, **output_overrides(workspace)}
        load = lambda: load_experiment(None, overrides)  # noqa: E731
        if distinct_digits:
            assert load().stream.classes == classes
        else:
            expect_config_error(load, "'stream.classes'")


@generated(40)
@given(name=st.text(alphabet="abcxyz-_019 ", min_size=1, max_size=20),
       key=st.sampled_from(["stream.data_dir", "device.build_dir"]))
def test_missing_data_directory_and_a_build_dir_that_is_a_file(name, key, workspace):
    directory = fresh_directory(workspace)
    if key == "stream.data_dir":
        missing = directory / "absent" / name
        expect_config_error(lambda: load_experiment(None, {
            **nested(key, str(missing)), **output_overrides(workspace)}),
            "'stream.data_dir'", str(missing), "does not exist")
    else:
        a_file = directory / name
        a_file.write_text("not a directory")
        expect_config_error(lambda: load_experiment(None, {
            **nested(key, str(a_file)), **output_overrides(workspace)}),
            "'device.build_dir'", str(a_file))


def test_data_directory_without_idx_files(workspace):
    directory = fresh_directory(workspace)
    expect_config_error(
        lambda: load_experiment(None, {"stream": {"data_dir": str(directory)},
                                       **output_overrides(workspace)}),
        "'stream.data_dir'", "train-images-idx3-ubyte")


def test_output_paths_that_cannot_be_written(workspace):
    directory = fresh_directory(workspace)
    a_file = directory / "plain-file"
    a_file.write_text("x")
    for path, fragment in [
        ("", "empty"),
        ("   ", "empty"),
        (str(directory), "existing directory"),
        (str(directory) + "/", "directory"),
        (str(a_file / "results.nc"), "not a directory"),
        (str(a_file / "deeper" / "results.nc"), "not a directory"),
        ("bad\0name.nc", "NUL"),
        (str(directory / ("x" * 300) / "r.nc"), "cannot be used"),
    ]:
        expect_config_error(lambda: load_experiment(None, {"output": {"path": path}}),
                            "'output.path'", fragment)


def test_output_in_a_read_only_directory(workspace):
    directory = fresh_directory(workspace)
    target = directory / "missing" / "results.nc"
    with mock.patch.object(os, "access", return_value=False):
        expect_config_error(
            lambda: load_experiment(None, {"output": {"path": str(target)}}),
            "'output.path'", str(directory), "read-only")


def test_output_in_missing_directories_is_fine(workspace):
    target = fresh_directory(workspace) / "a" / "b" / "results.nc"
    assert load_experiment(None, {"output": {"path": str(target)}}).output.path == str(target)
    assert not target.parent.exists()  # validation creates nothing


# --------------------------------------------------------------------------
# TOML text: syntax errors, unknown keys, wrong types
# --------------------------------------------------------------------------

GARBAGE = ["= =", "[stream", "[[", "]]", '"unterminated', "key", "a = ", "= 3",
           "train_samples = 1 2", "[network]\n[network]", "x = [1, 2", "y = {", "\x00",
           "epochs = 1\nepochs = 2", "n = 0x", "v = 1__0", "'", "\\", "[a.]", "b = tru"]


@generated(60)
@given(base=st.sampled_from([static_mnist.DEFAULT_CONFIG, dynamic_digits.DEFAULT_CONFIG]),
       garbage=st.lists(st.sampled_from(GARBAGE), min_size=1, max_size=3),
       position=st.integers(min_value=0, max_value=40))
def test_toml_syntax_errors_name_the_file(base, garbage, position, workspace):
    lines = Path(base).read_text().splitlines()
    position = min(position, len(lines))
    text = "\n".join(lines[:position] + garbage + lines[position:]) + "\n"
    path = fresh_directory(workspace) / "broken.toml"
    path.write_text(text)
    cls = ContinualExperiment if base == dynamic_digits.DEFAULT_CONFIG else Experiment
    load = lambda: load_experiment(path, output_overrides(workspace), cls)  # noqa: E731
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        expect_config_error(load, str(path), "not valid TOML")
    else:
        load_or_config_error(load)


def test_undecodable_and_unreadable_toml_files(workspace):
    directory = fresh_directory(workspace)
    binary = directory / "binary.toml"
    binary.write_bytes(b"\xff\xfe[stream]\n")
    expect_config_error(lambda: load_experiment(binary), str(binary), "UTF-8")
    huge = directory / "huge.toml"
    huge.write_text("[stream]\nseed = " + "9" * 5000 + "\n")
    expect_config_error(lambda: load_experiment(huge), str(huge), "not valid TOML")
    denied = PermissionError(13, "Permission denied")
    with mock.patch.object(Path, "read_bytes", side_effect=denied):
        expect_config_error(lambda: load_experiment(binary), str(binary), "Permission denied")


STATIC_TABLES = tables(Experiment)
CONTINUAL_TABLES = tables(ContinualExperiment)


@generated(50)
@given(table=st.sampled_from(STATIC_TABLES + CONTINUAL_TABLES),
       name=st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True))
def test_unknown_keys_are_named(table, name, workspace):
    where, cls = table
    known = {item.name for item in dataclasses.fields(cls)}
    if name in known:
        name += "_typo"
    top = ContinualExperiment if (where, cls) in CONTINUAL_TABLES and (
        (where, cls) not in STATIC_TABLES) else Experiment
    dotted = f"{where}.{name}" if where else name
    path = fresh_directory(workspace) / "unknown.toml"
    path.write_text(toml_text(dotted, 1))
    expect_config_error(lambda: load_experiment(path, None, top),
                        f"unknown configuration key '{dotted}'", "known keys here")


def wrong_values(kind):
    """Values of a type a field of ``kind`` does not accept (a strategy)."""
    text = st.text(max_size=8)
    lists = st.lists(st.integers(0, 9), max_size=3)
    tables_ = st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2)
    fractional = st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda x: not (math.isfinite(x) and x.is_integer()))
    if kind is int:
        return st.one_of(text, lists, tables_, st.booleans(), fractional, st.none())
    if kind is float:
        return st.one_of(text, lists, tables_, st.booleans(), st.none())
    if kind is bool:
        return st.one_of(text, lists, tables_, st.integers(), st.floats(), st.none())
    if kind is str:
        return st.one_of(lists, tables_, st.integers(), st.floats(), st.booleans(), st.none())
    # list[int]
    return st.one_of(text, st.integers(), st.booleans(), st.none(),
                     st.lists(st.one_of(text, st.booleans(), fractional), min_size=1,
                              max_size=3))


STATIC_LEAVES = leaf_fields(Experiment)
CONTINUAL_LEAVES = leaf_fields(ContinualExperiment)


@generated(120)
@given(data=st.data(), continual=st.booleans(), through_toml=st.booleans())
def test_wrong_types_are_named(data, continual, through_toml, workspace):
    leaves = CONTINUAL_LEAVES if continual else STATIC_LEAVES
    key, kind = data.draw(st.sampled_from(leaves))
    value = data.draw(wrong_values(kind))
    cls = ContinualExperiment if continual else Experiment
    if through_toml and value is not None:
        path = fresh_directory(workspace) / "types.toml"
        path.write_text(toml_text(key, value))
        load = lambda: load_experiment(path, None, cls)  # noqa: E731
    else:
        load = lambda: load_experiment(None, nested(key, value), cls)  # noqa: E731
    expect_config_error(load, f"'{key}")


def test_odd_override_shapes():
    expect_config_error(lambda: load_experiment(None, [("stream", 1)]), "overrides")
    expect_config_error(lambda: config.experiment_from_mapping("stream"), "table of keys")
    expect_config_error(lambda: load_experiment(None, {"stream": {3: 1}}),
                        "unknown configuration key")
    expect_config_error(lambda: load_experiment(None, {"network": {"plasticity": {
        "nu_post": 10**400}}}), "'network.plasticity.nu_post'")
    expect_config_error(lambda: load_experiment(None, {"network": {"n_neurons": 10**5000}}),
                        "'network.n_neurons'")


# --------------------------------------------------------------------------
# Configuration structure: a section is a table, before anything is merged
# --------------------------------------------------------------------------

SECTIONS = ("network", "stream", "device", "output")
not_tables = st.one_of(st.integers(-10, 10), st.floats(allow_nan=False, allow_infinity=False),
                       st.booleans(), st.text(max_size=8),
                       st.lists(st.integers(0, 9), max_size=3))


def run_command(argv):
    """``spikedyn ARGV``: (exit status, stderr); a protocol that starts running fails the test."""
    import contextlib
    import io

    from spikedyn_brian import cli
    from spikedyn_brian.protocols import continual_comparison, tuning

    def forbidden(*args, **kwargs):
        raise AssertionError("the command ran its protocol instead of reporting the error")

    error = io.StringIO()
    with contextlib.ExitStack() as stack:
        for module in (static_mnist, dynamic_digits, continual_comparison, tuning):
            stack.enter_context(mock.patch.object(module, "run", forbidden))
        stack.enter_context(contextlib.redirect_stderr(error))
        status = cli.main(argv)
    return status, error.getvalue()


@generated(60)
@given(section=st.sampled_from(SECTIONS), value=not_tables,
       command=st.sampled_from(["static-mnist", "dynamic-digits", "continual-comparison",
                                "tune"]),
       with_option=st.booleans())
def test_a_section_that_is_not_a_table_is_named(section, value, command, with_option,
                                               workspace):
    """``network = 5``, ``output = "x.nc"``, ``device = [1, 2]``: an error naming the key,
    never the section silently replaced by the defaults (with or without options that
    write into that section)."""
    directory = fresh_directory(workspace)
    path = directory / "sections.toml"
    path.write_text(f"{section} = {toml_value(value)}\n")
    argv = ["run", command, "--config", str(path)]
    if command == "tune":
        argv += ["--variant", "spikedyn", "--trials", "1"]
    if command != "continual-comparison" or section != "output":
        argv += ["--out", str(directory / "out.nc")]
    if with_option:
        argv += {"network": ["--neurons", "7"], "stream": ["--data-dir", str(directory)],
                 "device": ["--device", "runtime"], "output": []}[section]
    status, error = run_command(argv)
    assert status == 2, error
    assert error.startswith("spikedyn: error:") and error.count("\n") == 1, error
    assert f"key '{section}' must be a table" in error, error
    assert not (directory / "out.nc").exists()


@pytest.mark.parametrize("text, key", [
    ("network = 5", "network"), ("stream = 5", "stream"), ('output = "x.nc"', "output"),
    ("device = [1, 2]", "device"), ("[network]\nexcitatory = 5", "network.excitatory"),
    ("[network]\nplasticity = [1]", "network.plasticity")])
def test_sections_are_checked_before_merging(text, key, workspace):
    path = fresh_directory(workspace) / "sections.toml"
    path.write_text(text + "\n")
    overrides = config.merge(output_overrides(workspace), {
        "network": {"n_neurons": 7, "excitatory": {"tau_ge_ms": 1.0},
                    "plasticity": {"nu_post": 0.01}},
        "stream": {"seed": 1}, "device": {"chunk_samples": 10}})
    for cls in (Experiment, ContinualExperiment):
        expect_config_error(lambda: load_experiment(path, overrides, cls),
                            f"key '{key}' must be a table")
    # And a table where a value belongs, from either side of a merge.
    expect_config_error(lambda: config.merge({"stream": {"seed": {"a": 1}}},
                                             {"stream": {"seed": 2}}), "'stream.seed'")


def test_each_protocol_config_starts_from_its_own_defaults(workspace, monkeypatch):
    """``run dynamic-digits --config FILE``: what FILE leaves out comes from
    protocols/dynamic_digits.toml (SpikeDyn, results/dynamic_digits.nc), not from the
    static protocol or the dataclasses."""
    from spikedyn_brian import cli

    seen = {}

    class Captured(Exception):
        pass

    def capture(experiment):
        seen["experiment"] = experiment
        raise Captured

    directory = fresh_directory(workspace)
    path = directory / "mine.toml"
    out = str(directory / "out.nc")
    for command, module, cls, text in [
            ("dynamic-digits", dynamic_digits, ContinualExperiment,
             "[stream]\nsamples_per_task = 7\n"),
            ("static-mnist", static_mnist, Experiment, "[stream]\ntrain_samples = 7\n")]:
        monkeypatch.setattr(module, "run", capture)
        path.write_text(text)
        with pytest.raises(Captured):
            cli.main(["run", command, "--config", str(path), "--out", out])
        expected = load_experiment(module.DEFAULT_CONFIG,
                                   config.merge(tomllib.loads(text), {"output": {"path": out}}),
                                   cls)
        assert seen["experiment"] == expected, command
        if command == "dynamic-digits":
            dynamic = seen["experiment"]
    protocol = tomllib.loads(Path(dynamic_digits.DEFAULT_CONFIG).read_text())
    assert dynamic.network.variant == protocol["network"]["variant"] == "spikedyn"
    assert dynamic.stream.samples_per_task == 7


# --------------------------------------------------------------------------
# IDX directories
# --------------------------------------------------------------------------

N_DIGITS = 12
IMAGES_NAME = "train-images-idx3-ubyte"
LABELS_NAME = "train-labels-idx1-ubyte"


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def valid_pair():
    images = (np.arange(N_DIGITS * 784) % 251).astype(np.uint8).reshape(N_DIGITS, 28, 28)
    labels = (np.arange(N_DIGITS) % 10).astype(np.uint8)
    return idx_bytes(images), idx_bytes(labels)


CORRUPTIONS = ["truncate", "empty", "bad_zero_bytes", "bad_type_code", "trailing",
               "images_shape", "images_dtype", "labels_2d", "count_mismatch",
               "label_out_of_range", "gzip_truncated", "gzip_flipped", "gzip_empty_body",
               "random_bytes", "no_images"]


@generated(180)
@given(corruption=st.sampled_from(CORRUPTIONS), target=st.sampled_from(["images", "labels"]),
       data=st.data())
def test_damaged_idx_directories(corruption, target, data, workspace):
    directory = fresh_directory(workspace)
    images, labels = valid_pair()
    content = {"images": images, "labels": labels}
    names = {"images": IMAGES_NAME, "labels": LABELS_NAME}
    strict = True  # the damage is certain to make the file invalid
    blamed = [names[target]]
    original = content[target]
    if corruption == "truncate":
        content[target] = original[:data.draw(st.integers(1, len(original) - 1))]
    elif corruption == "empty":
        content[target] = b""
    elif corruption == "bad_zero_bytes":
        first = data.draw(st.integers(1, 255))
        content[target] = bytes([first]) + original[1:]
    elif corruption == "bad_type_code":
        code = data.draw(st.integers(0, 255).filter(
            lambda c: c not in (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)))
        content[target] = original[:2] + bytes([code]) + original[3:]
    elif corruption == "trailing":
        content[target] = original + data.draw(st.binary(min_size=1, max_size=50))
    elif corruption == "images_shape":
        target, blamed = "images", [IMAGES_NAME]
        shape = data.draw(st.sampled_from([(N_DIGITS, 28, 27), (N_DIGITS, 784),
                                           (N_DIGITS, 28, 28, 1), (N_DIGITS * 784,)]))
        content["images"] = idx_bytes(np.zeros(shape, np.uint8))
    elif corruption == "images_dtype":
        target, blamed = "images", [IMAGES_NAME]
        content["images"] = idx_bytes(np.zeros((N_DIGITS, 28, 28), ">i4"), type_code=0x0C)
    elif corruption == "labels_2d":
        target, blamed = "labels", [LABELS_NAME]
        content["labels"] = idx_bytes(np.zeros((N_DIGITS, 2), np.uint8))
    elif corruption == "count_mismatch":
        count = data.draw(st.integers(1, 30).filter(lambda n: n != N_DIGITS))
        content["labels"] = idx_bytes((np.arange(count) % 10).astype(np.uint8))
        blamed = [IMAGES_NAME, LABELS_NAME]
    elif corruption == "label_out_of_range":
        target, blamed = "labels", [LABELS_NAME]
        bad = (np.arange(N_DIGITS) % 10).astype(np.uint8)
        bad[data.draw(st.integers(0, N_DIGITS - 1))] = data.draw(st.integers(10, 255))
        content["labels"] = idx_bytes(bad)
    elif corruption == "gzip_truncated":
        packed = gzip.compress(original)
        content[target] = packed[:data.draw(st.integers(2, len(packed) - 1))]
    elif corruption == "gzip_flipped":
        packed = bytearray(gzip.compress(original))
        # Deflate body or trailer (CRC, size): every change there is detected.
        at = data.draw(st.integers(10, len(packed) - 1))
        packed[at] ^= data.draw(st.integers(1, 255))
        content[target] = bytes(packed)
    elif corruption == "gzip_empty_body":
        content[target] = gzip.compress(b"")
    elif corruption == "random_bytes":
        content[target] = data.draw(st.binary(max_size=64))
        strict = False  # by chance a valid (if tiny) IDX file
    elif corruption == "no_images":
        target, blamed = "images", [IMAGES_NAME]
        content["images"] = idx_bytes(np.zeros((0, 28, 28), np.uint8))
        content["labels"] = idx_bytes(np.zeros(0, np.uint8))
    suffix = ".gz" if corruption.startswith("gzip") else ""
    paths = {}
    for kind in ("images", "labels"):
        name = names[kind] + (suffix if kind == target else "")
        paths[kind] = directory / name
        paths[kind].write_bytes(content[kind])
    blamed = [str(paths["images" if name == IMAGES_NAME else "labels"]) for name in blamed]
    try:
        digits = load_idx_directory(directory, "train")
    except MNISTFileError as error:
        message = str(error)
        assert any(path in message for path in blamed), (blamed, message)
        assert all(path in message for path in blamed) or corruption != "count_mismatch"
    else:
        assert not strict, f"{corruption} of the {target} file was accepted"
        assert len(digits) == N_DIGITS


@generated(40)
@given(kind=st.sampled_from(["images", "labels"]),
       forms=st.sampled_from([("", ".gz"), (".gz", ""), ("", "-dot"), ("-dot", ".gz"),
                              ("-dot.gz", "")]),
       differ=st.booleans(), position=st.integers(0, N_DIGITS - 1))
def test_two_forms_of_one_idx_file(kind, forms, differ, position, workspace):
    """Plain and gzipped (or both spellings) of one file: used when they agree, an error
    naming both when they differ (never one of them in silence)."""
    directory = fresh_directory(workspace)
    images, labels = valid_pair()
    content = {"images": images, "labels": labels}
    names = {"images": IMAGES_NAME, "labels": LABELS_NAME}
    other_content = bytearray(content[kind])
    if differ:
        at = len(other_content) - N_DIGITS + position  # a pixel or a label: still valid
        other_content[at] = (other_content[at] + 1) % 10
    written = []
    for form, data in zip(forms, (content[kind], bytes(other_content))):
        name = names[kind]
        if form.startswith("-dot"):
            name = name.replace("-idx", ".idx")
        if form.endswith(".gz"):
            name += ".gz"
            data = gzip.compress(data)
        (directory / name).write_bytes(data)
        written.append(directory / name)
    other = "labels" if kind == "images" else "images"
    (directory / names[other]).write_bytes(content[other])
    if differ:
        with pytest.raises(MNISTFileError) as caught:
            load_idx_directory(directory, "train")
        message = str(caught.value)
        assert all(str(path) in message for path in written), message
        assert "differs" in message
        # Also at configuration time, before anything is built.
        expect_config_error(lambda: load_experiment(None, {
            "stream": {"data_dir": str(directory), "evaluation": "validation"},
            **output_overrides(workspace)}), "'stream.data_dir'", str(written[1]))
    else:
        digits = load_idx_directory(directory, "train")
        assert len(digits) == N_DIGITS


def test_unreadable_idx_file_names_the_file_and_the_fix(workspace):
    directory = fresh_directory(workspace)
    images, labels = valid_pair()
    (directory / IMAGES_NAME).write_bytes(images)
    (directory / LABELS_NAME).write_bytes(labels)
    error = PermissionError(13, "Permission denied")
    with mock.patch.object(Path, "read_bytes", side_effect=error):
        with pytest.raises(MNISTFileError) as caught:
            read_idx(directory / IMAGES_NAME)
    assert str(directory / IMAGES_NAME) in str(caught.value)
    assert "chmod" in str(caught.value)
    if os.geteuid() != 0:  # root reads any file
        (directory / IMAGES_NAME).chmod(0)
        with pytest.raises(MNISTFileError, match="permission denied"):
            load_idx_directory(directory, "train")


def test_read_idx_of_a_directory_or_a_huge_header(workspace):
    directory = fresh_directory(workspace)
    with pytest.raises(MNISTFileError, match="not a regular file"):
        read_idx(directory)
    huge = directory / "huge-idx3-ubyte"
    huge.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1))
    with pytest.raises(MNISTFileError, match="truncated"):
        read_idx(huge)


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------

CHECKPOINT_ARRAYS = {"train0.spike_counts": np.arange(40, dtype=np.int32).reshape(4, 10),
                     "train0.done": np.array(True), "weights": np.linspace(0, 1, 50)}


@pytest.fixture(scope="module")
def checkpoint_bytes(workspace):
    path = workspace / "valid.checkpoint.npz"
    Checkpoint(path, "key-a").save(CHECKPOINT_ARRAYS)
    return path.read_bytes()


@generated(100)
@given(damage=st.sampled_from(["truncate", "empty", "flip", "random", "npy", "directory"]),
       data=st.data())
def test_corrupt_checkpoints_name_the_file(damage, data, checkpoint_bytes, workspace):
    path = fresh_directory(workspace) / "run.checkpoint.npz"
    strict = True
    if damage == "truncate":
        path.write_bytes(checkpoint_bytes[:data.draw(st.integers(0, len(checkpoint_bytes) - 1))])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flip":
        damaged = bytearray(checkpoint_bytes)
        damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= data.draw(st.integers(1, 255))
        path.write_bytes(bytes(damaged))
        strict = False  # a flip in a zip's unchecked metadata leaves it readable
    elif damage == "random":
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=200)))
    elif damage == "npy":
        np.save(path.with_suffix(""), np.zeros(3))
        path.with_suffix(".npy").rename(path)
    elif damage == "directory":
        path.mkdir()
    checkpoint = Checkpoint(path, "key-a")
    try:
        arrays = checkpoint.load()
    except CheckpointError as error:
        message = str(error)
        assert str(path) in message and ("delete it" in message or "rm " in message), message
        # Still a ConfigError: the command line reports it without a traceback.
        assert isinstance(error, ConfigError)
        assert path.exists()  # never discarded
        with pytest.raises(CheckpointError):
            checkpoint.verify()
    else:
        assert not strict, f"{damage}: a damaged checkpoint was loaded"
        assert arrays == {} or set(arrays) == set(CHECKPOINT_ARRAYS)
        for name, values in arrays.items():
            np.testing.assert_array_equal(values, CHECKPOINT_ARRAYS[name])


def test_checkpoint_of_another_configuration_is_ignored_not_removed(checkpoint_bytes, workspace):
    path = fresh_directory(workspace) / "other.checkpoint.npz"
    path.write_bytes(checkpoint_bytes)
    assert Checkpoint(path, "key-b").load() == {}
    assert path.read_bytes() == checkpoint_bytes
    loaded = Checkpoint(path, "key-a").load()
    assert set(loaded) == set(CHECKPOINT_ARRAYS)


def test_corrupt_checkpoint_is_reported_at_validation(workspace):
    directory = fresh_directory(workspace)
    output = directory / "run.nc"
    stored = directory / "run.checkpoint.npz"
    stored.write_bytes(b"PK\x03\x04 truncated")
    expect_config_error(lambda: load_experiment(None, {"output": {"path": str(output)}}),
                        str(stored), "delete it")
    # Without checkpointing the file is not looked at.
    load_experiment(None, {"output": {"path": str(output), "checkpoint": False}})


def test_unreadable_checkpoint(checkpoint_bytes, workspace):
    path = fresh_directory(workspace) / "locked.checkpoint.npz"
    path.write_bytes(checkpoint_bytes)
    with mock.patch.object(np, "load", side_effect=PermissionError(13, "Permission denied")):
        with pytest.raises(CheckpointError, match="permission denied"):
            Checkpoint(path, "key-a").load()


class FakeEngine:
    """What a PhaseRunner needs of an engine, without Brian2: every digit answered once."""

    def __init__(self, parameters):
        self.parameters = parameters
        self.calls = 0

    def run_stream(self, images, state, plastic, seed, on_chunk=None, progress=None,
                   stream_offset=0):
        from spikedyn_brian.state import StreamResult

        self.calls += 1
        n, neurons = len(images), self.parameters.n_neurons
        part = StreamResult(np.ones((n, neurons), np.int64), np.ones(n, np.int64),
                            np.full(n, 2.0), state.copy(), 0.1, n, n * neurons)
        if on_chunk is not None:
            on_chunk(stream_offset, part)
        return part


def start_state(parameters):
    from spikedyn_brian.state import LearnedState, expected_state_shapes

    arrays = {name: np.full(shape, 0.1) for name, shape in
              expected_state_shapes(parameters).items()}
    return LearnedState.from_arrays(arrays)


CHECKPOINT_NETWORKS = {"diehl-cook": 4, "spikedyn": 3, "asp": 2}


@pytest.fixture(scope="module")
def phase_checkpoints(workspace):
    """A checkpoint written by a PhaseRunner (two finished phases), per network variant."""
    from spikedyn_brian.models.parameters import network_parameters
    from spikedyn_brian.phases import PhaseRunner

    written = {}
    for variant, neurons in CHECKPOINT_NETWORKS.items():
        parameters = network_parameters(variant, neurons)
        path = workspace / f"phases-{variant}.checkpoint.npz"
        runner = PhaseRunner(FakeEngine(parameters), Checkpoint(path, "key-p"), False)
        state = runner.run("train0", np.zeros((5, 784)), start_state(parameters), True, 1,
                           "train").state
        runner.run("test", np.zeros((3, 784)), state, False, 2, "test")
        written[variant] = (parameters, path)
    return written


CHECKPOINT_DAMAGE = ["drop", "shape", "dtype", "nonfinite", "negative", "extra", "scalar",
                     "tamper", "other_size"]


@generated(120)
@given(variant=st.sampled_from(sorted(CHECKPOINT_NETWORKS)),
       damage=st.sampled_from(CHECKPOINT_DAMAGE), data=st.data())
def test_checkpoints_are_validated_in_full_before_use(variant, damage, data, phase_checkpoints,
                                                      workspace):
    """Keys, shapes, dtypes, finite values and the checksum: a checkpoint that is readable but
    does not fit the run gets one error naming the file and --restart, before anything is
    simulated, and the file is left as it was."""
    from spikedyn_brian.checkpoint import CHECKSUM_NAME, checksum
    from spikedyn_brian.models.parameters import network_parameters
    from spikedyn_brian.phases import PhaseRunner

    parameters, original = phase_checkpoints[variant]
    path = fresh_directory(workspace) / "run.checkpoint.npz"
    path.write_bytes(original.read_bytes())
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.pop(CHECKSUM_NAME)
    names = sorted(name for name in arrays if name != "__key__")
    name = data.draw(st.sampled_from(names))
    fragment = name
    if damage == "drop":
        del arrays[name]
    elif damage == "shape":
        values = arrays[name]
        arrays[name] = (np.concatenate([values.ravel(), values.ravel()[:1]]) if values.size
                        else np.zeros(1, values.dtype))
    elif damage == "dtype":
        arrays[name] = np.array([str(x) for x in np.atleast_1d(arrays[name])][:1] or ["x"])
    elif damage == "nonfinite":
        name = data.draw(st.sampled_from([n for n in names if arrays[n].dtype.kind == "f"]))
        fragment = name
        values = arrays[name].copy()
        values.flat[data.draw(st.integers(0, values.size - 1))] = data.draw(
            st.sampled_from([np.nan, np.inf, -np.inf]))
        arrays[name] = values
    elif damage == "negative":
        name = data.draw(st.sampled_from([n for n in names if n.split(".", 1)[1] in (
            "spike_counts", "presentations", "slots", "spikes_total", "input_spikes_total")]))
        fragment = name
        arrays[name] = arrays[name] - 10**6
    elif damage == "extra":
        fragment = data.draw(st.sampled_from(["train0.bogus", "nophase", "test.state.neuron.x"]))
        arrays[fragment] = np.zeros(3)
        fragment = fragment.rsplit(".", 1)[-1]
    elif damage == "scalar":
        name = data.draw(st.sampled_from([n for n in names if arrays[n].shape == ()]))
        fragment = name
        arrays[name] = np.zeros(2, arrays[name].dtype)
    arrays[CHECKSUM_NAME] = np.array(checksum(arrays))
    if damage == "tamper":  # a change the checksum was not updated for
        values = arrays[name].copy()
        values.flat[0] = values.flat[0] + (1 if values.dtype.kind != "b" else True)
        arrays[name] = values if values.dtype.kind != "b" else ~arrays[name]
        fragment = "checksum"
    if damage == "other_size":  # a checkpoint of the same key but another network size
        parameters = network_parameters(variant, CHECKPOINT_NETWORKS[variant] + 1)
        fragment = "shape"
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)
    before = path.read_bytes()
    engine = FakeEngine(parameters)
    with pytest.raises(CheckpointError) as caught:
        runner = PhaseRunner(engine, Checkpoint(path, "key-p"), False)
        runner.run("train0", np.zeros((5, 784)), start_state(parameters), True, 1, "train")
        runner.run("test", np.zeros((3, 784)), start_state(parameters), False, 2, "test")
    message = str(caught.value)
    assert str(path) in message and "--restart" in message, message
    assert fragment in message, (fragment, message)
    assert "\n" not in message
    assert engine.calls == 0  # nothing simulated
    assert path.read_bytes() == before  # never rewritten


def test_a_valid_checkpoint_resumes_and_a_legacy_one_without_checksum_too(phase_checkpoints,
                                                                          workspace):
    from spikedyn_brian.checkpoint import CHECKSUM_NAME
    from spikedyn_brian.phases import PhaseRunner

    for variant, (parameters, original) in phase_checkpoints.items():
        for legacy in (False, True):
            path = fresh_directory(workspace) / "run.checkpoint.npz"
            path.write_bytes(original.read_bytes())
            if legacy:
                with np.load(path) as stored:
                    arrays = {n: stored[n] for n in stored.files if n != CHECKSUM_NAME}
                with open(path, "wb") as stream:
                    np.savez(stream, **arrays)
            engine = FakeEngine(parameters)
            runner = PhaseRunner(engine, Checkpoint(path, "key-p"), False)
            train = runner.run("train0", np.zeros((5, 784)), start_state(parameters), True, 1,
                               "train")
            assert len(train.presentations) == 5 and engine.calls == 0, variant


def test_a_checkpoint_is_never_written_with_a_non_finite_state(workspace):
    path = fresh_directory(workspace) / "run.checkpoint.npz"
    Checkpoint(path, "k").save({"train0.seconds": np.array(1.0)})
    before = path.read_bytes()
    for bad in (np.nan, np.inf):
        with pytest.raises(CheckpointError, match="left as it was"):
            Checkpoint(path, "k").save({"train0.state.weights": np.array([0.1, bad])})
    assert path.read_bytes() == before
    assert not list(path.parent.glob("*.tmp"))


def test_restart_discards_the_checkpoint_under_the_lock(workspace):
    """--restart (output.restart): a checkpoint that cannot be resumed from is discarded
    and the run starts afresh; without it the run stops with the error."""
    from spikedyn_brian import cli
    from spikedyn_brian.models.parameters import network_parameters
    from spikedyn_brian.phases import protocol_run

    directory = fresh_directory(workspace)
    out = directory / "run.nc"
    stored = directory / "run.checkpoint.npz"
    stored.write_bytes(b"PK\x03\x04 damaged")
    status, error = run_command(["run", "static-mnist", "--out", str(out)])
    assert status == 2 and str(stored) in error and "--restart" in error, error
    assert stored.read_bytes() == b"PK\x03\x04 damaged"
    args = cli.build_parser().parse_args(["run", "static-mnist", "--out", str(out),
                                          "--restart", "--no-progress"])
    experiment = load_experiment(None, cli._static_mnist_overrides(args))
    assert experiment.output.restart
    engine = FakeEngine(network_parameters("diehl-cook", 4))
    with protocol_run(experiment, "data", "static-mnist", engine) as (_, phases):
        assert not stored.exists() and phases.stored == {}
    assert not (directory / "run.nc.lock").exists()


def test_the_engine_refuses_a_state_that_does_not_fit(workspace):
    """The last line of defence before a compiled program (which would keep its build-time
    values and print 'Error reading ...'): the engine refuses the state at once."""
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.models.parameters import network_parameters
    from spikedyn_brian.state import LearnedState, StateError

    engine = Engine(network_parameters("diehl-cook", 3), "runtime")
    good = start_state(engine.parameters)
    for state, fragment in [
            (LearnedState(np.full(100, 0.1), good.theta), "'weights' has shape (100,)"),
            (LearnedState(good.weights, np.full(3, np.nan)), "'theta' holds 3 NaN"),
            (LearnedState(good.weights.astype(np.int64), good.theta), "dtype int64"),
            (LearnedState(good.weights, good.theta, {}, {"activity": np.zeros(3)}),
             "neuron.activity")]:
        with pytest.raises(StateError, match="nothing was simulated") as caught:
            engine.run_stream(np.zeros((2, 784)), state, plastic=True, seed=0)
        assert fragment in str(caught.value), str(caught.value)


# --------------------------------------------------------------------------
# Outputs: nothing replaced without being asked; the last tracebacks
# --------------------------------------------------------------------------


class Started(Exception):
    """Raised where a command would start to build or simulate."""


def start_command(argv, extra_patches=()):
    """``spikedyn ARGV`` up to where it would build an engine or start Dask workers.

    Returns (exit status, or 'started'; stderr).
    """
    import contextlib
    import io

    import spikedyn_brian.engine
    from spikedyn_brian import cli
    from spikedyn_brian.protocols import continual_comparison, model_search, tuning

    def start(*args, **kwargs):
        raise Started

    error = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(spikedyn_brian.engine, "Engine", start))
        for module in (continual_comparison, model_search, tuning):
            stack.enter_context(mock.patch.object(module, "dask_client", start))
        for patch in extra_patches:
            stack.enter_context(patch)
        stack.enter_context(contextlib.redirect_stderr(error))
        try:
            status = cli.main(argv)
        except Started:
            status = "started"
    return status, error.getvalue()


def tuning_table_of(out, variant="spikedyn"):
    """A trial table whose study is the one ``spikedyn run tune --variant V --device runtime
    --out OUT`` continues."""
    import xarray

    from spikedyn_brian.protocols import tuning

    plan = tuning.TuningPlan(variant=variant, trials=1, base={"device": {"name": "runtime"}},
                             output=str(out))
    return xarray.Dataset({"objective": ("trial", [0.5])}, coords={"trial": [0]},
                          attrs={"variant": variant,
                                 "study": f"{plan.study_path.name}:{plan.study_name()}"})


def command_argv(command, out, directory):
    return {
        "static-mnist": ["run", "static-mnist", "--device", "runtime", "--neurons", "5",
                         "--train-samples", "10", "--test-samples", "10"],
        "dynamic-digits": ["run", "dynamic-digits", "--device", "runtime", "--neurons", "5",
                           "--samples-per-task", "5"],
        "continual-comparison": ["run", "continual-comparison", "--device", "runtime",
                                 "--variants", "diehl-cook", "--seeds", "1", "--neurons", "5",
                                 "--samples-per-task", "5", "--build-dir",
                                 str(directory / "builds")],
        "tune": ["run", "tune", "--variant", "spikedyn", "--trials", "1", "--device",
                 "runtime"],
        "model-search": ["run", "model-search", "--device", "runtime", "--sizes", "5",
                         "--variants", "diehl-cook", "--weight-bits", "8"],
    }[command] + ["--out", str(out)]


EXISTING = ["netcdf", "garbage", "empty", "this_study_table", "other_study_table"]


@generated(60)
@given(command=st.sampled_from(["static-mnist", "dynamic-digits", "continual-comparison",
                                "tune", "model-search"]),
       existing=st.sampled_from(EXISTING), overwrite=st.booleans())
def test_no_command_replaces_a_results_file_unasked(command, existing, overwrite, workspace):
    """Every command that writes a results file refuses to start when the file exists, unless
    --overwrite (or, for the tuner, the file is the trial table of the study it continues);
    the file is untouched and no lock is left."""
    directory = fresh_directory(workspace)
    out = directory / "out.nc"
    if existing == "netcdf":
        import xarray

        write_dataset(xarray.Dataset({"accuracy": ((), 0.5)}), out)
    elif existing == "garbage":
        out.write_bytes(b"not netCDF at all")
    elif existing == "empty":
        out.write_bytes(b"")
    else:
        write_dataset(tuning_table_of(out, "spikedyn" if existing == "this_study_table"
                                      else "asp"), out)
    before = out.read_bytes()
    argv = command_argv(command, out, directory) + (["--overwrite"] if overwrite else [])
    status, error = start_command(argv)
    allowed = overwrite or (command == "tune" and existing == "this_study_table")
    if allowed:
        assert status == "started", error
    else:
        assert status == 2, error
        assert error.count("\n") == 1 and f"'{out}' exists" in error, error
        assert "--overwrite" in error
    assert out.read_bytes() == before
    assert not (directory / "out.nc.lock").exists()


@generated(30)
@given(command=st.sampled_from(["static-mnist", "dynamic-digits", "continual-comparison",
                                "tune", "model-search"]),
       obstacle=st.sampled_from(["held", "permission", "directory"]))
def test_a_lock_that_cannot_be_taken_is_a_clear_error(command, obstacle, workspace):
    """Two commands aimed at one output: the second is refused; a lock that cannot be
    written (PermissionError, a directory in its place) is a one-line error, not a
    traceback."""
    import fcntl

    directory = fresh_directory(workspace)
    out = directory / "out.nc"
    lock_path = directory / "out.nc.lock"
    patches = []
    holder = None
    if obstacle == "held":
        holder = open(lock_path, "a+")
        holder.write("process 12345")
        holder.flush()
        fcntl.flock(holder, fcntl.LOCK_EX)
        fragment = "another run is writing"
    elif obstacle == "permission":
        patches.append(mock.patch("spikedyn_brian.phases.open", create=True,
                                  side_effect=PermissionError(13, "Permission denied")))
        fragment = "Permission denied"
    else:
        lock_path.mkdir()
        fragment = "cannot be created"
    try:
        status, error = start_command(command_argv(command, out, directory), patches)
    finally:
        if holder is not None:
            holder.close()
    assert status == 2, error
    assert error.count("\n") == 1 and fragment in error and str(lock_path) in error, error
    assert not out.exists()


@generated(40)
@given(days=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                      st.sampled_from(["nan", "-nan", "inf", "-inf", "1e999", "-0", "-1e-300",
                                       "0x10", "1_0", " 3 ", "", "∞"])))
def test_cache_clean_deletes_nothing_for_a_bad_age(days, workspace):
    """``spikedyn cache clean --older-than DAYS``: a NaN, infinite or negative age (``nan``
    deleted every build) is a one-line error and every build stays."""
    import time

    root = fresh_directory(workspace)
    for name, age in (("old", 30.0), ("new", 0.0)):
        build = root / name
        build.mkdir()
        (build / "main").write_bytes(b"\0")
        stamp = time.time() - age * 86400
        for path in (build / "main", build):
            os.utime(path, (stamp, stamp))
    text = repr(days) if isinstance(days, float) else days
    try:
        value = float(text)
    except ValueError:
        value = None
    try:
        status, error = start_command(["cache", "clean", f"--older-than={text}",
                                       "--build-dir", str(root)])
    except SystemExit as exit_:  # argparse: not a number at all
        assert value is None and exit_.code == 2
        status = 2
    else:
        if value is not None and math.isfinite(value) and value >= 0:
            assert status == 0, error
            # A build not used for at least DAYS days is removed (ages: 30 days, ~0).
            if not 29 < value < 31:
                assert (root / "old").exists() == (value > 30)
            if value == 0 or value > 1:
                assert (root / "new").exists() == (value > 1)
            return
        assert status == 2 and error.count("\n") == 1 and "nothing was removed" in error, error
    assert sorted(p.name for p in root.iterdir()) == ["new", "old"]


def test_comparison_checks_its_per_run_files_before_starting_workers(workspace):
    """A corrupt per-run file, one of another configuration, or a damaged per-run checkpoint:
    one line naming the file and the fix before any Dask task (no "Compute Failed" dumps,
    no OSError/ValueError traceback); the files are untouched."""
    directory = fresh_directory(workspace)
    out = directory / "comparison.nc"
    runs = directory / "comparison_runs"
    runs.mkdir()
    argv = command_argv("continual-comparison", out, directory)
    per_run = runs / "diehl-cook_seed1.nc"
    for content, fragment in [(b"\x89HDF\r\n\x1a\n truncated", "cannot be read"),
                              (b"", "cannot be read")]:
        per_run.write_bytes(content)
        status, error = start_command(argv)
        assert status == 2 and str(per_run) in error and "rm " in error, error
        assert fragment in error and error.count("\n") == 1, error
        assert per_run.read_bytes() == content
    import xarray

    write_dataset(xarray.Dataset(attrs={"config": '{"stream": {"seed": 99}}'}), per_run)
    status, error = start_command(argv)
    assert status == 2 and "another configuration" in error, error
    per_run.unlink()
    stored = runs / "diehl-cook_seed1.checkpoint.npz"
    stored.write_bytes(b"PK\x03\x04 damaged")
    status, error = start_command(argv)
    assert status == 2 and str(stored) in error and "run that pair afresh" in error, error
    stored.unlink()
    assert start_command(argv)[0] == "started"


@pytest.mark.parametrize("command", ["static-mnist", "continual-comparison"])
def test_tuned_given_a_results_file_that_is_not_a_trial_table(command, workspace):
    import xarray

    directory = fresh_directory(workspace)
    table = directory / "results.nc"
    write_dataset(xarray.Dataset({"accuracy": ((), 0.5)}), table)
    tuned = [str(table)] if command == "static-mnist" else [f"diehl-cook={table}"]
    argv = command_argv(command, directory / "out.nc", directory) + ["--tuned", *tuned]
    status, error = start_command(argv)
    assert status == 2 and "not a trial table" in error and str(table) in error, error
    assert error.count("\n") == 1


@generated(20)
@given(kind=st.sampled_from(["dangling", "under_a_file", "file", "env_file"]),
       command=st.sampled_from(["static-mnist", "dynamic-digits"]))
def test_an_unusable_build_directory_is_named(kind, command, workspace):
    directory = fresh_directory(workspace)
    a_file = directory / "plain"
    a_file.write_text("x")
    environment = {}
    if kind == "dangling":
        build = directory / "link"
        build.symlink_to(directory / "nowhere")
    elif kind == "under_a_file":
        build = a_file / "builds"
    elif kind == "file":
        build = a_file
    else:
        build = None
        environment["SPIKEDYN_BUILD_DIR"] = str(a_file)
    argv = command_argv(command, directory / "out.nc", directory)
    if build is not None:
        argv += ["--build-dir", str(build)]
    with mock.patch.dict(os.environ, environment):
        status, error = start_command(argv)
    assert status == 2, error
    assert ("'device.build_dir'" in error or "$SPIKEDYN_BUILD_DIR" in error), error
    assert error.count("\n") == 1


def test_a_build_that_fails_on_the_filesystem_is_a_clear_error(workspace):
    """An OSError while the build directory is prepared (FileNotFoundError, ...): one line
    naming the build directory and the fix; the lock is removed."""
    from spikedyn_brian import cli
    from spikedyn_brian.devices.backends import RuntimeBackend

    directory = fresh_directory(workspace)
    argv = command_argv("static-mnist", directory / "out.nc", directory)
    missing = FileNotFoundError(2, "No such file or directory", str(directory / "gone"))
    error = __import__("io").StringIO()
    with mock.patch.object(RuntimeBackend, "build", side_effect=missing), \
            __import__("contextlib").redirect_stderr(error):
        status = cli.main(argv)
    assert status == 2, error.getvalue()
    assert "build directory" in error.getvalue() and "FileNotFoundError" in error.getvalue()
    assert error.getvalue().count("\n") == 1
    assert not (directory / "out.nc.lock").exists()


@pytest.mark.parametrize("disposition", ["SIG_IGN", "SIG_DFL"])
def test_sigint_with_the_shells_disposition(disposition):
    """A process a shell started with SIGINT ignored (a background job) keeps ignoring it;
    Brian2's handler called SIG_IGN ("TypeError: 'Handlers' object is not callable")."""
    import signal
    import subprocess
    import sys

    code = ("import os, signal, time\n"
            "import spikedyn_brian.engine\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "time.sleep(0.3)\n"
            "print('still running', flush=True)\n")
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, getattr(signal, disposition)))
    assert "TypeError" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    if disposition == "SIG_IGN":
        assert run.returncode == 0 and "still running" in run.stdout
    else:
        assert run.returncode == -signal.SIGINT


# --------------------------------------------------------------------------
# Results files
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results_bytes(workspace):
    import xarray

    path = workspace / "valid.nc"
    dataset = xarray.Dataset({"accuracy": ((), 0.5), "counts": (("sample",), np.arange(30))},
                             attrs={"config": {"a": 1}})
    write_dataset(dataset, path)
    return path.read_bytes()


@generated(60)
@given(damage=st.sampled_from(["truncate", "empty", "random", "text"]), data=st.data())
def test_damaged_results_files_name_the_file(damage, data, results_bytes, workspace):
    path = fresh_directory(workspace) / "results.nc"
    if damage == "truncate":
        path.write_bytes(results_bytes[:data.draw(st.integers(0, len(results_bytes) - 1))])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=300)))
    else:
        path.write_text(data.draw(st.text(min_size=1, max_size=100)))
    with pytest.raises(ResultsFileError) as caught:
        read_dataset(path)
    assert str(path) in str(caught.value)
    assert "write it again" in str(caught.value)


def test_intact_results_file_still_reads(results_bytes, workspace):
    path = fresh_directory(workspace) / "intact.nc"
    path.write_bytes(results_bytes)
    assert float(read_dataset(path)["accuracy"]) == 0.5
    with pytest.raises(FileNotFoundError):
        read_dataset(path.with_name("absent.nc"))


def test_results_files_store_their_data_with_netcdf_checksums(workspace):
    import netCDF4
    import xarray

    path = fresh_directory(workspace) / "checked.nc"
    dataset = xarray.Dataset(
        {"accuracy": ((), 0.5), "counts": (("sample",), np.arange(30)),
         "matrix": (("a", "b"), np.ones((3, 4))), "mask": (("sample",), np.arange(30) > 3),
         "names": (("a",), np.array(["x", "yy", "z"], dtype=object))},
        coords={"sample": np.arange(30)})
    write_dataset(dataset, path)
    assert dataset.counts.encoding == {}  # the caller's dataset is untouched
    with netCDF4.Dataset(path) as stored:
        filters = {name: variable.filters()["fletcher32"]
                   for name, variable in stored.variables.items()}
    assert filters == {"accuracy": False, "counts": True, "matrix": True, "mask": True,
                       "names": False, "sample": True}, filters
    # Read back and written again (its encoding says contiguous): still checksummed.
    again = fresh_directory(workspace) / "again.nc"
    write_dataset(read_dataset(path), again)
    with netCDF4.Dataset(again) as stored:
        assert stored.variables["matrix"].filters()["fletcher32"]
    xarray.testing.assert_identical(read_dataset(again), read_dataset(path))


@generated(40)
@given(dtype=st.sampled_from(["int64", "int32", "float64", "float32", "uint8"]),
       size=st.integers(8, 2000), data=st.data())
def test_a_changed_byte_in_a_data_variable_is_detected(dtype, size, data, workspace):
    """netCDF4's own checksums (fletcher32): a byte changed in a data variable after it was
    written is a clear error naming the variable, never a different result."""
    import xarray

    rng = np.random.default_rng(size)
    values = (rng.integers(1, 200, size) if dtype.startswith(("int", "uint"))
              else rng.uniform(1.0, 2.0, size)).astype(dtype)
    dataset = xarray.Dataset({"accuracy": ((), 0.5), "payload": (("sample",), values)})
    path = fresh_directory(workspace) / "results.nc"
    write_dataset(dataset, path)
    raw = bytearray(path.read_bytes())
    start = raw.find(values.tobytes())
    assert start > 0
    at = start + data.draw(st.integers(0, values.nbytes - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(raw))
    with pytest.raises(ResultsFileError) as caught:
        read_dataset(path)
    message = str(caught.value)
    assert str(path) in message and "'payload'" in message and "checksum" in message, message
    assert "\n" not in message


def test_generated_cases_total_at_least_500():
    """The generated cases of this file (max_examples of every @given test) add up to >= 500."""
    import sys

    module = sys.modules[__name__]
    total = 0
    for name in dir(module):
        test = getattr(module, name)
        if name.startswith("test_") and hasattr(test, "hypothesis"):
            total += test._hypothesis_internal_use_settings.max_examples
    assert total >= 500, total


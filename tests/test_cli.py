"""The ``spikedyn`` command: help, option parsing, overrides, fast error paths.

Nothing here builds or runs a network: a fixture replaces the protocol's
``Engine`` and ``run`` so that a test reaching them fails at once.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import spikedyn_brian.engine

from spikedyn_brian import cli
from spikedyn_brian.cli import build_parser, main
from spikedyn_brian.config import load_experiment
from spikedyn_brian.protocols.static_mnist import DEFAULT_CONFIG

CONTRACT_OPTIONS = (
    "--network",
    "--neurons",
    "--train-samples",
    "--test-samples",
    "--device",
    "--seed",
    "--data-dir",
    "--out",
)

CONTRACT_ARGV = [
    "run", "static-mnist",
    "--network", "spikedyn",
    "--neurons", "50",
    "--train-samples", "30",
    "--test-samples", "20",
    "--device", "runtime",
    "--seed", "3",
    "--data-dir", "/x",
    "--out", "f.nc",
]


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if the CLI gets as far as building an engine."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the CLI built a simulation before reporting the error")

    # Protocols build their engine through spikedyn_brian.phases, which looks
    # the class up in spikedyn_brian.engine when it is called.
    monkeypatch.setattr(spikedyn_brian.engine, "Engine", forbidden)
    monkeypatch.delenv("SPIKEDYN_MNIST_DIR", raising=False)


def parse_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


# --------------------------------------------------------------------------
# Help
# --------------------------------------------------------------------------


def test_top_level_help(capsys):
    out = parse_help(["--help"], capsys)
    assert out.startswith("usage: spikedyn")
    assert "COMMAND" in out
    assert "run" in out


def test_top_level_help_mentions_contract_options(capsys):
    out = parse_help(["--help"], capsys)
    for option in CONTRACT_OPTIONS:
        assert option in out


def test_run_help_lists_protocol(capsys):
    out = parse_help(["run", "--help"], capsys)
    assert "usage: spikedyn run" in out
    assert "static-mnist" in out


def test_static_mnist_help_mentions_contract_options(capsys):
    out = parse_help(["run", "static-mnist", "--help"], capsys)
    assert out.startswith("usage: spikedyn run static-mnist")
    for option in CONTRACT_OPTIONS + ("--config", "--epochs"):
        assert option in out, option
    # The choices are shown.
    assert "diehl-cook" in out and "spikedyn" in out
    assert "runtime" in out and "cpp_standalone" in out


def test_missing_command_exits_with_2(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([])
    assert info.value.code == 2
    assert "spikedyn: error:" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Contract options → overrides → Experiment
# --------------------------------------------------------------------------


def test_contract_options_parse():
    args = build_parser().parse_args(CONTRACT_ARGV)
    assert args.command == "run"
    assert args.protocol == "static-mnist"
    assert args.network == "spikedyn"
    assert args.neurons == 50
    assert args.train_samples == 30
    assert args.test_samples == 20
    assert args.device == "runtime"
    assert args.seed == 3
    assert args.data_dir == "/x"
    assert args.out == "f.nc"
    assert args.config is None
    assert args.handler is cli._run_static_mnist


def test_contract_options_give_nested_overrides():
    args = build_parser().parse_args(CONTRACT_ARGV)
    assert cli._static_mnist_overrides(args) == {
        "network": {"variant": "spikedyn", "n_neurons": 50},
        "stream": {"train_samples": 30, "test_samples": 20, "seed": 3, "data_dir": "/x"},
        "device": {"name": "runtime"},
        "output": {"path": "f.nc"},
    }


def test_contract_overrides_load_over_default_config(tmp_path):
    from tests.test_config import write_mnist_files

    data = write_mnist_files(tmp_path / "x")
    argv = [str(data) if value == "/x" else value for value in CONTRACT_ARGV]
    args = build_parser().parse_args(argv)
    experiment = load_experiment(DEFAULT_CONFIG, cli._static_mnist_overrides(args))
    assert experiment.network.variant == "spikedyn"
    assert experiment.network.n_neurons == 50
    assert experiment.stream.train_samples == 30
    assert experiment.stream.test_samples == 20
    assert experiment.stream.seed == 3
    assert experiment.stream.data_dir == str(data)
    assert experiment.device.name == "runtime"
    assert experiment.output.path == "f.nc"
    # Keys not given keep the file's values.
    assert experiment.stream.epochs == 1
    assert experiment.device.chunk_samples == 1000
    assert experiment.output.progress is True


def test_no_options_give_empty_overrides():
    args = build_parser().parse_args(["run", "static-mnist"])
    assert cli._static_mnist_overrides(args) == {
        "network": {}, "stream": {}, "device": {}, "output": {}
    }
    assert load_experiment(DEFAULT_CONFIG, cli._static_mnist_overrides(args)) == load_experiment(
        DEFAULT_CONFIG
    )


def test_other_options_give_overrides():
    args = build_parser().parse_args([
        "run", "static-mnist", "--epochs", "2", "--assignment-samples", "0",
        "--build-dir", "/b", "--evaluate-each-epoch", "--no-progress",
    ])
    assert cli._static_mnist_overrides(args) == {
        "network": {},
        "stream": {"epochs": 2, "assignment_samples": 0, "evaluate_each_epoch": True},
        "device": {"build_dir": "/b"},
        "output": {"progress": False},
    }


def test_options_override_a_config_file(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text('[stream]\nepochs = 3\nseed = 11\n[network]\nvariant = "spikedyn"\n')
    args = build_parser().parse_args(
        ["run", "static-mnist", "--config", str(path), "--seed", "4", "--neurons", "9"]
    )
    assert args.config == str(path)
    experiment = load_experiment(args.config, cli._static_mnist_overrides(args))
    assert experiment.stream.seed == 4
    assert experiment.stream.epochs == 3
    assert experiment.network.variant == "spikedyn"
    assert experiment.network.n_neurons == 9


# --------------------------------------------------------------------------
# Invalid choices: argparse exits with 2
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--network", "foo"], "--network"),
        (["--device", "gpu"], "--device"),
        (["--neurons", "0"], "expected a positive integer, got 0"),
        (["--neurons", "-3"], "expected a positive integer, got -3"),
        (["--neurons", "abc"], "expected a positive integer, got 'abc'"),
        (["--train-samples", "0"], "--train-samples"),
        (["--test-samples", "x"], "--test-samples"),
        (["--epochs", "0"], "--epochs"),
        (["--seed", "1.5"], "--seed"),
        (["--unknown-option"], "unrecognized arguments"),
    ],
)
def test_invalid_options_exit_with_2(extra, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "static-mnist", *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err
    assert fragment in err


def test_invalid_option_through_main_exits_with_2(capsys, no_simulation):
    with pytest.raises(SystemExit) as info:
        main(["run", "static-mnist", "--network", "foo"])
    assert info.value.code == 2
    assert "invalid choice: 'foo'" in capsys.readouterr().err


def test_unknown_protocol_exits_with_2(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "dynamic-mnist"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------------
# main(): configuration and data errors → 2, before any simulation
# --------------------------------------------------------------------------


def test_main_config_file_with_unknown_key(tmp_path, capsys, no_simulation):
    path = tmp_path / "bad.toml"
    path.write_text("[stream]\ntrain_samples = 10\nbogus_key = 1\n")
    assert main(["run", "static-mnist", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("spikedyn: error:")
    assert "'stream.bogus_key'" in captured.err
    assert captured.out == ""


def test_main_config_file_with_wrong_type(tmp_path, capsys, no_simulation):
    path = tmp_path / "bad.toml"
    path.write_text('[network]\nn_neurons = "many"\n')
    assert main(["run", "static-mnist", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spikedyn: error: key 'network.n_neurons' must be an integer" in err


def test_main_missing_config_file(tmp_path, capsys, no_simulation):
    path = tmp_path / "absent.toml"
    assert main(["run", "static-mnist", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"spikedyn: error: configuration file '{path}' does not exist" in err


def test_main_negative_assignment_samples(capsys, no_simulation):
    assert main(["run", "static-mnist", "--assignment-samples", "-1"]) == 2
    assert "spikedyn: error: key 'stream.assignment_samples'" in capsys.readouterr().err


def test_main_missing_data_dir(tmp_path, capsys, no_simulation):
    missing = tmp_path / "no-such-mnist"
    argv = ["run", "static-mnist", "--data-dir", str(missing), "--device", "runtime",
            "--out", str(tmp_path / "out.nc")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("spikedyn: error:")
    assert str(missing) in captured.err
    assert "does not exist" in captured.err
    assert not (tmp_path / "out.nc").exists()


def test_main_data_dir_that_is_a_file(tmp_path, capsys, no_simulation):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert main(["run", "static-mnist", "--data-dir", str(not_a_dir)]) == 2
    err = capsys.readouterr().err
    assert "spikedyn: error:" in err and str(not_a_dir) in err


def test_main_empty_data_dir_names_missing_idx_file(tmp_path, capsys, no_simulation):
    assert main(["run", "static-mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "spikedyn: error:" in err
    assert "train-images-idx3-ubyte" in err


def test_main_too_many_test_samples_is_a_clean_error(capsys, no_simulation):
    assert main(["run", "static-mnist", "--test-samples", "2000"]) == 2
    assert "spikedyn: error:" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Module entry point and console script
# --------------------------------------------------------------------------


def test_python_m_cli_help():
    completed = subprocess.run(
        [sys.executable, "-m", "spikedyn_brian.cli", "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: spikedyn")


def test_console_script_installed(tmp_path):
    script = Path(sys.executable).parent / "spikedyn"
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    assert os.access(script, os.X_OK)
    # main()'s return value reaches the shell as the exit code.
    completed = subprocess.run(
        [str(script), "run", "static-mnist", "--config", str(tmp_path / "absent.toml")],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("spikedyn: error:")
    assert "absent.toml" in completed.stderr


def test_the_parser_offers_what_the_modules_implement():
    from spikedyn_brian import names
    from spikedyn_brian.devices import BACKENDS, STANDALONE_DEVICES
    from spikedyn_brian.protocols import continual_comparison, model_search, tuning

    assert names.DEVICES == tuple(BACKENDS)
    assert names.STANDALONE_DEVICES == STANDALONE_DEVICES
    assert names.COMPARISON_VARIANTS == tuple(continual_comparison.VARIANTS)
    assert names.SEARCH_VARIANTS == tuple(model_search.SEARCH_VARIANTS)
    assert names.TUNING_FAMILIES == tuple(tuning.SEARCH_SPACES)


def test_help_imports_neither_brian2_nor_xarray():
    import subprocess
    import sys

    code = ("import sys, contextlib, io\n"
            "from spikedyn_brian import cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['run', 'static-mnist', '--help'])\n"
            "print(sorted(m for m in ('brian2', 'xarray', 'dask') if m in sys.modules))")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
    assert printed == "[]"


def test_help_shows_defaults_and_explains_the_variants(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "dynamic-digits", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default 400)" in text and "(default spikedyn)" in text
    assert "asp: ASP (Panda et al. 2018" in text


def test_tuned_option_takes_the_best_trial_and_options_still_override(tmp_path):
    import numpy as np
    import xarray

    from spikedyn_brian.analysis.storage import write_dataset

    table = xarray.Dataset({
        "objective": ("trial", [0.5, 0.7]),
        "param.plasticity.nu_post": ("trial", [0.01, 0.02]),
    }, coords={"trial": [0, 1]}, attrs={"variant": "asp"})
    write_dataset(table, tmp_path / "tune.nc")
    args = build_parser().parse_args(["run", "static-mnist", "--tuned", str(tmp_path / "tune.nc"),
                                      "--neurons", "7"])
    experiment = load_experiment(DEFAULT_CONFIG, cli._static_mnist_overrides(args))
    assert experiment.network.variant == "asp"
    assert experiment.network.plasticity.nu_post == 0.02
    assert experiment.network.n_neurons == 7
    assert cli.main(["run", "static-mnist", "--tuned", str(tmp_path / "missing.nc")]) == 2
    assert np.isfinite(table.objective).all()


# --------------------------------------------------------------------------
# One table per command: option → configuration key
# --------------------------------------------------------------------------


def _parsers(parser=None, prefix=()):
    """(command words, parser) of every command and sub-command of ``spikedyn``."""
    import argparse

    parser = parser or build_parser()
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*prefix, name))


def test_every_help_shows_the_defaults():
    """Every option that takes a value and is not required says what it is when not given."""
    missing = []
    for words, parser in _parsers():
        for action in parser._actions:
            if (not action.option_strings or action.required or action.help is None
                    or action.dest == "help" or action.help == "==SUPPRESS=="):
                continue
            if "default" not in action.help:
                missing.append(f"spikedyn {' '.join(words)} {action.option_strings[0]}")
    assert missing == []


@pytest.mark.parametrize("command, table", [
    (["run", "static-mnist"], "STATIC_MNIST_OPTIONS"),
    (["run", "dynamic-digits"], "DYNAMIC_DIGITS_OPTIONS"),
    (["run", "continual-comparison"], "COMPARISON_OPTIONS"),
    (["run", "tune", "--variant", "asp", "--trials", "1", "--out", "t.nc"], "TUNE_OPTIONS"),
    (["run", "model-search"], "MODEL_SEARCH_OPTIONS"),
    (["codegen", "--device", "cpp_standalone", "--out", "d"], "CODEGEN_OPTIONS"),
])
def test_each_commands_table_names_its_options(command, table):
    """Every entry of a command's table is an option of that command: the one
    function `option_overrides` reads them all."""
    args = build_parser().parse_args(command)
    for attribute in getattr(cli, table):
        assert hasattr(args, attribute), f"{table}: {attribute}"
    given = {"device": {"name": "cpp_standalone"}} if command[0] == "codegen" else {}
    assert cli.option_overrides(args, getattr(cli, table)) == given


def test_option_overrides_follow_the_table_in_order():
    import argparse

    args = argparse.Namespace(a=3, b=None, c=True, d=[("x", 1)], tuned="T")
    table = {
        "tuned": ("network", lambda value, args: {"variant": value, "n": 1}),
        "a": "network.n",
        "b": "stream.seed",
        "c": ("output.progress", cli._off_if_given),
        "d": ("device.options", cli._device_options),
    }
    assert cli.option_overrides(args, table, sections=("stream",)) == {
        "network": {"variant": "T", "n": 3},
        "stream": {},
        "output": {"progress": False},
        "device": {"options": {"x": 1}},
    }


def test_device_options_from_the_command_line_reach_the_configuration():
    args = build_parser().parse_args([
        "run", "dynamic-digits", "--device", "runtime", "--device-option", "formulation=genn",
        "--device-option", "slots_per_sample=2.5", "--device-option", "target='numpy'"])
    overrides = cli.option_overrides(args, cli.DYNAMIC_DIGITS_OPTIONS, cli.RUN_SECTIONS)
    assert overrides["device"] == {"name": "runtime", "options": {
        "formulation": "genn", "slots_per_sample": 2.5, "target": "numpy"}}
    from spikedyn_brian.config import ContinualExperiment

    experiment = load_experiment(None, overrides, ContinualExperiment)
    assert experiment.device.options["slots_per_sample"] == 2.5
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "static-mnist", "--device-option", "nokey"])


def test_an_option_the_device_does_not_have_is_one_line(capsys, no_simulation):
    assert main(["run", "static-mnist", "--device", "cpp_standalone",
                 "--device-option", "gpu_id=1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("spikedyn: error:") and len(error.strip().splitlines()) == 1
    assert "'device.options'" in error and "has no options" in error


def test_the_comparison_and_tuner_bases_hold_only_the_options_given(tmp_path):
    """The base configuration of a study or a comparison is what its options and file
    say, nothing more (the tuner names its study after it)."""
    args = build_parser().parse_args(["run", "tune", "--variant", "asp", "--trials", "1",
                                      "--out", "t.nc", "--neurons", "20"])
    assert cli.read_mapping(None, cli.option_overrides(args, cli.TUNE_OPTIONS)) == {
        "network": {"n_neurons": 20}}
    args = build_parser().parse_args(["run", "continual-comparison"])
    assert cli.read_mapping(None, cli.option_overrides(args, cli.COMPARISON_OPTIONS)) == {}


def test_the_default_device_is_cpp_dense_and_the_help_says_so(capsys):
    from spikedyn_brian.devices import DEFAULT_DEVICE

    assert DEFAULT_DEVICE == "cpp_dense"
    for protocol in ("static-mnist", "dynamic-digits", "model-search"):
        assert cli._defaults(protocol)["device.name"] == DEFAULT_DEVICE
    for command in (["run", "static-mnist"], ["run", "tune"], ["run", "continual-comparison"]):
        text = " ".join(parse_help([*command, "--help"], capsys).split())
        assert "simulation device (default cpp_dense)" in text


def test_a_network_the_default_device_cannot_run_runs_on_cpp_standalone_saying_so(
        monkeypatch, capsys, tmp_path):
    """Diehl & Cook's original numerics have input delays, which cpp_dense refuses:
    the run goes to cpp_standalone with one line that says why."""
    built = []

    class Stop(Exception):
        pass

    class FakeEngine:
        builds_once = True

        def __init__(self, parameters, device, **arguments):
            built.append(device)
            self.device_name = device

        def check(self, compile=True, run=True):
            raise Stop

        def close(self):
            pass

    monkeypatch.setattr(spikedyn_brian.engine, "Engine", FakeEngine)
    original = Path(DEFAULT_CONFIG).with_name("diehl_cook_original.toml")
    with pytest.raises(Stop):
        main(["run", "static-mnist", "--config", str(original), "--out",
              str(tmp_path / "original.nc")])
    assert built == ["cpp_standalone"]
    note = capsys.readouterr().err.strip().splitlines()[0]
    assert "cpp_dense" in note and "input delays" in note
    assert note.endswith("running on cpp_standalone instead")


def test_the_help_defaults_agree_with_the_modules():
    from spikedyn_brian import names
    from spikedyn_brian.protocols import continual_comparison, tuning

    assert names.TRIAL_SEEDS == tuple(tuning.TRIAL_SEEDS)
    plan = continual_comparison.ComparisonPlan()
    assert names.COMPARISON_SEEDS == tuple(plan.seeds)
    assert names.COMPARISON_OUTPUT == plan.output


def test_comparison_summary_without_an_interval_for_one_seed(capsys):
    """One seed (the demo): values without a meaningless ± nan; several: mean ± CI."""
    import numpy as np
    import xarray

    from spikedyn_brian.cli import _COMPARISON_COLUMNS, _print_comparison

    names = [name for name, _ in _COMPARISON_COLUMNS]
    for seeds, ci in ((1, np.nan), (3, 0.021)):
        data = {f"{n}_mean": ("variant", [0.8, 0.6]) for n in names}
        data.update({f"{n}_ci95": ("variant", [ci, ci]) for n in names})
        data.update({f"{n}_difference_mean": ("baseline", [0.2]) for n in names})
        data.update({f"{n}_difference_ci95": ("baseline", [ci]) for n in names})
        dataset = xarray.Dataset(data, coords={"variant": ["spikedyn", "asp"],
                                               "baseline": ["asp"], "seed": list(range(seeds))})
        _print_comparison(dataset)
        out = capsys.readouterr().out
        assert "nan" not in out
        assert ("±" in out) == (seeds > 1)
        assert "+20.0" in out and "80.0" in out

"""Experiment configuration: defaults, TOML overrides, key-naming errors, JSON."""

import dataclasses
import json
import re
import tomllib

import pytest

from spikedyn_brian.config import (
    ConfigError,
    DeviceConfig,
    Experiment,
    OutputConfig,
    StreamConfig,
    experiment_from_mapping,
    load_experiment,
)
from spikedyn_brian.models.parameters import NetworkParameters
from spikedyn_brian.protocols.static_mnist import DEFAULT_CONFIG


#: Placeholder of a data directory, replaced by `write_mnist_files` in a test.
MNIST_DIR = "<mnist directory>"


def write_mnist_files(directory):
    """Four tiny valid MNIST IDX files in ``directory`` (created); return it."""
    import numpy as np

    from spikedyn_brian.data import write_idx

    directory.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        write_idx(directory / f"{prefix}-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", np.arange(10, dtype=np.uint8))
    return directory


def write_toml(tmp_path, text, name="experiment.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------


def test_defaults_without_a_file(default_experiment):
    experiment = load_experiment(None)
    assert isinstance(experiment, Experiment)
    assert experiment.network.variant == "diehl-cook"
    assert experiment.network.n_neurons == 400
    assert experiment.network.n_inputs == 784
    assert experiment.stream.train_samples == 4000
    assert experiment.stream.test_samples == 1000
    assert experiment.stream.epochs == 1
    assert experiment.stream.prediction_rule == "all_activity"
    assert experiment.device.name == "cpp_dense"
    assert experiment == default_experiment
    assert experiment.network != Experiment().network  # the tuned set, not the published one


def test_default_toml_exists_and_loads(default_experiment):
    assert DEFAULT_CONFIG.is_file()
    assert DEFAULT_CONFIG.name == "static_mnist.toml"
    assert load_experiment(DEFAULT_CONFIG) == default_experiment


def test_default_toml_equals_dataclass_defaults_for_the_keys_it_sets():
    mapping = tomllib.loads(DEFAULT_CONFIG.read_text())
    defaults = Experiment().to_dict()
    assert set(mapping) <= set(defaults)
    checked = 0
    for section, table in mapping.items():
        assert isinstance(table, dict), section
        for key, value in table.items():
            assert key in defaults[section], f"{section}.{key}"
            assert value == defaults[section][key], f"{section}.{key}"
            checked += 1
    # The file sets at least the contract keys.
    assert checked >= 10
    assert mapping["network"]["variant"] == "diehl-cook"
    assert mapping["network"]["n_neurons"] == 400
    assert mapping["stream"]["train_samples"] == 4000
    assert mapping["stream"]["test_samples"] == 1000
    assert mapping["device"]["name"] == "cpp_dense"


# --------------------------------------------------------------------------
# TOML overrides
# --------------------------------------------------------------------------


def test_nested_overrides_from_a_file(tmp_path):
    path = write_toml(
        tmp_path,
        """
[network]
variant = "spikedyn"
n_neurons = 25

[network.plasticity]
nu_post = 0.005

[network.spikedyn]
weight_decay = false

[stream]
epochs = 3
""",
    )
    experiment = load_experiment(path)
    assert experiment.network.variant == "spikedyn"
    assert experiment.network.n_neurons == 25
    assert experiment.network.plasticity.nu_post == 0.005
    assert experiment.network.spikedyn.weight_decay is False
    assert experiment.stream.epochs == 3
    # Untouched siblings keep their defaults.
    defaults = Experiment()
    assert experiment.network.plasticity.nu_pre == defaults.network.plasticity.nu_pre
    assert experiment.network.spikedyn.adaptive_threshold is True
    assert experiment.stream.train_samples == 4000
    assert experiment.device == defaults.device
    assert experiment.output == defaults.output


def test_file_path_may_be_a_string(tmp_path):
    path = write_toml(tmp_path, "[stream]\nseed = 7\n")
    assert load_experiment(str(path)).stream.seed == 7


def test_int_accepted_for_float_field_and_converted(tmp_path):
    path = write_toml(tmp_path, "[network.plasticity]\nnu_post = 1\n")
    experiment = load_experiment(path)
    assert experiment.network.plasticity.nu_post == 1.0
    assert type(experiment.network.plasticity.nu_post) is float


def test_integral_float_accepted_for_int_field():
    experiment = experiment_from_mapping({"stream": {"train_samples": 100.0}})
    assert experiment.stream.train_samples == 100
    assert type(experiment.stream.train_samples) is int


def test_empty_file_gives_defaults(tmp_path, default_experiment):
    path = write_toml(tmp_path, "")
    assert load_experiment(path) == default_experiment


# --------------------------------------------------------------------------
# Errors name the key
# --------------------------------------------------------------------------


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_unknown_top_level_key(tmp_path):
    path = write_toml(tmp_path, "[streem]\nepochs = 2\n")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "unknown configuration key 'streem'; known keys here: device, network, output, stream"
        ),
    ):
        load_experiment(path)


def test_unknown_nested_key_lists_known_keys(tmp_path):
    path = write_toml(tmp_path, "[network.plasticity]\nnu_postt = 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "unknown configuration key 'network.plasticity.nu_postt'" in message
    assert "known keys here:" in message
    known = message.split("known keys here:", 1)[1]
    listed = [name.strip() for name in known.split(",")]
    expected = sorted(f.name for f in dataclasses.fields(type(Experiment().network.plasticity)))
    assert listed == expected
    assert "nu_post" in listed and "nu_pre" in listed


def test_unknown_key_in_stream_section():
    with pytest.raises(
        ConfigError, match=r"unknown configuration key 'stream\.train'; known keys here: .*train_samples"
    ):
        experiment_from_mapping({"stream": {"train": 5}})


def test_wrong_type_string_for_integer(tmp_path):
    path = write_toml(tmp_path, '[stream]\ntrain_samples = "many"\n')
    with pytest.raises(
        ConfigError, match=r"key 'stream\.train_samples' must be an integer, got 'many'"
    ):
        load_experiment(path)


def test_bool_given_as_int_for_bool_field(tmp_path):
    path = write_toml(tmp_path, "[network.spikedyn]\nweight_decay = 1\n")
    with pytest.raises(
        ConfigError, match=r"key 'network\.spikedyn\.weight_decay' must be true or false, got 1"
    ):
        load_experiment(path)


def test_bool_given_for_int_field(tmp_path):
    path = write_toml(tmp_path, "[network]\nn_neurons = true\n")
    with pytest.raises(ConfigError, match=r"key 'network\.n_neurons' must be an integer, got True"):
        load_experiment(path)


def test_bool_given_for_float_field():
    with pytest.raises(
        ConfigError, match=r"key 'network\.plasticity\.nu_post' must be a number, got True"
    ):
        experiment_from_mapping({"network": {"plasticity": {"nu_post": True}}})


def test_float_given_for_int_field(tmp_path):
    path = write_toml(tmp_path, "[network]\nn_neurons = 1.5\n")
    with pytest.raises(ConfigError, match=r"key 'network\.n_neurons' must be an integer, got 1\.5"):
        load_experiment(path)


def test_number_given_for_string_field():
    with pytest.raises(ConfigError, match=r"key 'device\.name' must be a string, got 3"):
        experiment_from_mapping({"device": {"name": 3}})


def test_section_given_as_a_value():
    with pytest.raises(ConfigError, match=r"key 'network' must be a table of keys, got 5"):
        experiment_from_mapping({"network": 5})


def test_bad_variant_is_rejected():
    with pytest.raises(ConfigError, match=r"key 'network.variant' is 'foo'; choose one of "
                                          r"diehl-cook, asp, spikedyn"):
        experiment_from_mapping({"network": {"variant": "foo"}})


def test_bad_variant_names_the_key():
    with pytest.raises(ConfigError, match=r"network\.variant"):
        experiment_from_mapping({"network": {"variant": "foo"}})


def test_zero_neurons_is_rejected():
    with pytest.raises(
        ConfigError, match=r"key 'network.n_neurons' must be a positive integer, got 0"
    ):
        experiment_from_mapping({"network": {"n_neurons": 0}})


def test_bad_device_name(tmp_path):
    path = write_toml(tmp_path, '[device]\nname = "gpu"\n')
    with pytest.raises(
        ConfigError,
        match=re.escape("key 'device.name' is 'gpu'; choose one of runtime, cpp_standalone"),
    ):
        load_experiment(path)


@pytest.mark.parametrize("key", ["train_samples", "test_samples", "epochs"])
def test_stream_counts_must_be_positive(key):
    with pytest.raises(ConfigError, match=rf"key 'stream\.{key}' must be at least 1, got 0"):
        experiment_from_mapping({"stream": {key: 0}})


def test_negative_assignment_samples():
    with pytest.raises(
        ConfigError, match=re.escape("key 'stream.assignment_samples' must be >= 0 (0 means all)")
    ):
        experiment_from_mapping({"stream": {"assignment_samples": -1}})


def test_bad_prediction_rule():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "key 'stream.prediction_rule' is 'majority'; choose one of "
            "all_activity, proportion_weighting"
        ),
    ):
        experiment_from_mapping({"stream": {"prediction_rule": "majority"}})


def test_proportion_weighting_rule_is_accepted():
    experiment = experiment_from_mapping({"stream": {"prediction_rule": "proportion_weighting"}})
    assert experiment.stream.prediction_rule == "proportion_weighting"


def test_chunk_samples_must_be_positive():
    with pytest.raises(ConfigError, match=re.escape("key 'device.chunk_samples' must be at least 1")):
        experiment_from_mapping({"device": {"chunk_samples": 0}})


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(
        ConfigError, match=re.escape(f"configuration file '{path}' does not exist")
    ):
        load_experiment(path)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(tmp_path)


def test_invalid_toml_names_the_file(tmp_path):
    path = write_toml(tmp_path, "[stream\ntrain_samples = = 3\n", name="broken.toml")
    with pytest.raises(ConfigError, match=re.escape(f"configuration file '{path}' is not valid TOML")):
        load_experiment(path)
    with pytest.raises(ConfigError, match="broken.toml"):
        load_experiment(path)


def test_maximum_intensity_below_start_intensity(tmp_path):
    path = write_toml(
        tmp_path, "[network.inputs]\nstart_intensity = 4.0\nmaximum_intensity = 3.0\n"
    )
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "key 'network.inputs.maximum_intensity' must be >= 'network.inputs.start_intensity'"
        ),
    ):
        load_experiment(path)


def test_maximum_intensity_equal_to_start_is_accepted():
    experiment = experiment_from_mapping(
        {"network": {"inputs": {"start_intensity": 3, "maximum_intensity": 3}}}
    )
    assert experiment.network.inputs.maximum_intensity == 3.0


def test_n_inputs_must_be_784(tmp_path):
    path = write_toml(tmp_path, "[network]\nn_inputs = 100\n")
    with pytest.raises(ConfigError, match=r"key 'network\.n_inputs' must be 784"):
        load_experiment(path)


def test_classes_default_and_override(tmp_path):
    assert Experiment().stream.classes == list(range(10))
    path = write_toml(tmp_path, "[stream]\nclasses = [3, 1]\n")
    assert load_experiment(path).stream.classes == [3, 1]


def test_classes_must_be_a_list():
    with pytest.raises(ConfigError, match=r"key 'stream\.classes' must be a list of .*, got 3"):
        experiment_from_mapping({"stream": {"classes": 3}})


def test_classes_item_type_names_the_item():
    with pytest.raises(
        ConfigError, match=re.escape("key 'stream.classes[1]' must be an integer, got True")
    ):
        experiment_from_mapping({"stream": {"classes": [0, True]}})


@pytest.mark.parametrize("classes", [[], [0, 10], [-1]])
def test_classes_must_be_digits(classes):
    with pytest.raises(
        ConfigError,
        match=re.escape(f"key 'stream.classes' must list digit classes 0..9, got {classes!r}"),
    ):
        experiment_from_mapping({"stream": {"classes": classes}})


def test_classes_must_not_repeat():
    with pytest.raises(
        ConfigError, match=re.escape("key 'stream.classes' lists a class twice: [1, 1]")
    ):
        experiment_from_mapping({"stream": {"classes": [1, 1]}})


# --------------------------------------------------------------------------
# Overrides over a file
# --------------------------------------------------------------------------


def test_overrides_merge_over_file_without_dropping_siblings(tmp_path):
    path = write_toml(
        tmp_path,
        """
[network]
variant = "spikedyn"
n_neurons = 30

[network.plasticity]
nu_pre = 0.0002
nu_post = 0.02

[stream]
epochs = 2
seed = 5
test_samples = 50

[output]
path = "from_file.nc"
""",
    )
    overrides = {
        "network": {"n_neurons": 60, "plasticity": {"nu_post": 0.03}},
        "stream": {"train_samples": 10},
        "device": {"name": "runtime"},
    }
    before = json.dumps(overrides, sort_keys=True)
    experiment = load_experiment(path, overrides)
    # Overridden.
    assert experiment.network.n_neurons == 60
    assert experiment.network.plasticity.nu_post == 0.03
    assert experiment.stream.train_samples == 10
    assert experiment.device.name == "runtime"
    # Siblings from the file kept.
    assert experiment.network.variant == "spikedyn"
    assert experiment.network.plasticity.nu_pre == 0.0002
    assert experiment.stream.epochs == 2
    assert experiment.stream.seed == 5
    assert experiment.stream.test_samples == 50
    assert experiment.output.path == "from_file.nc"
    # The overrides mapping is not modified.
    assert json.dumps(overrides, sort_keys=True) == before


def test_empty_override_tables_change_nothing(tmp_path, default_experiment):
    path = write_toml(tmp_path, "[stream]\nepochs = 4\n")
    experiment = load_experiment(
        path, {"network": {}, "stream": {}, "device": {}, "output": {}}
    )
    assert experiment.stream.epochs == 4
    assert experiment.network == default_experiment.network


def test_overrides_are_validated():
    with pytest.raises(ConfigError, match=r"unknown configuration key 'stream\.bogus'"):
        load_experiment(None, {"stream": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"key 'device\.name' is 'gpu'"):
        load_experiment(DEFAULT_CONFIG, {"device": {"name": "gpu"}})


# --------------------------------------------------------------------------
# JSON round trip
# --------------------------------------------------------------------------


def test_to_json_gives_the_nested_dict():
    experiment = Experiment()
    data = json.loads(experiment.to_json())
    assert data == experiment.to_dict()
    assert set(data) == {"network", "stream", "device", "output"}
    assert data["network"]["variant"] == "diehl-cook"
    assert data["network"]["plasticity"]["nu_post"] == 1e-2
    assert data["network"]["spikedyn"]["weight_decay"] is True
    assert data["stream"]["train_samples"] == 4000
    assert data["device"]["name"] == "cpp_dense"
    assert data["output"]["path"] == "results/static_mnist.nc"


@pytest.mark.parametrize(
    "mapping",
    [
        {},
        {
            "network": {
                "variant": "spikedyn",
                "n_neurons": 17,
                "plasticity": {"nu_post": 1, "max_input_delay_ms": 10},
                "spikedyn": {"weight_decay": False, "x_target": 0.25},
                "excitatory": {"tau_theta_ms": 1e8},
            },
            "stream": {"epochs": 2, "seed": 9, "data_dir": MNIST_DIR, "classes": [7, 2],
                       "evaluate_each_epoch": True,
                       "prediction_rule": "proportion_weighting"},
            "device": {"name": "runtime", "threads": 1, "chunk_samples": 7},
            "output": {"path": "x.nc", "checkpoint": False, "progress": False},
        },
    ],
)
def test_to_json_round_trips(mapping, tmp_path):
    if mapping.get("stream", {}).get("data_dir") == MNIST_DIR:
        # A data directory must exist (and hold the IDX files) to be valid.
        mapping = {**mapping, "stream": {**mapping["stream"],
                                         "data_dir": str(write_mnist_files(tmp_path / "mnist"))}}
    experiment = experiment_from_mapping(mapping)
    text = experiment.to_json()
    assert isinstance(text, str)
    again = experiment_from_mapping(json.loads(text))
    assert again == experiment
    assert again.to_json() == text


def test_section_dataclasses_default_construct():
    # The dataclasses exported by config are usable on their own.
    assert StreamConfig().train_samples == 4000
    assert DeviceConfig().name == "cpp_dense"
    assert OutputConfig().checkpoint is True


# --------------------------------------------------------------------------
# Ranges of the values (NETWORK_BOUNDS, STREAM_LIMITS) and usable paths
# --------------------------------------------------------------------------


def test_zero_time_constant_names_key_value_range_and_default():
    with pytest.raises(ConfigError) as info:
        experiment_from_mapping({"network": {"excitatory": {"tau_ge_ms": 0}}})
    message = str(info.value)
    assert message.startswith("key 'network.excitatory.tau_ge_ms' is 0.0;")
    assert "(0, 1e+12] ms" in message and "time step" in message
    assert "Fix:" in message and "default 1.0" in message


def test_nan_membrane_time_constant_is_rejected(tmp_path):
    path = write_toml(tmp_path, "[network.excitatory]\ntau_membrane_ms = nan\n")
    with pytest.raises(ConfigError, match=r"key 'network\.excitatory\.tau_membrane_ms' is nan"):
        load_experiment(path)


def test_infinite_maximum_intensity_is_rejected(tmp_path):
    path = write_toml(tmp_path, "[network.inputs]\nmaximum_intensity = inf\n")
    with pytest.raises(ConfigError, match=r"'network\.inputs\.maximum_intensity' is inf.*1000"):
        load_experiment(path)


def test_unknown_integration_method_and_timer_name_the_key():
    with pytest.raises(ConfigError, match=r"key 'network\.integration_method' is 'heun'"):
        experiment_from_mapping({"network": {"integration_method": "heun"}})
    with pytest.raises(ConfigError, match=r"key 'network\.excitatory\.timer' is 'x'; choose"):
        experiment_from_mapping({"network": {"excitatory": {"timer": "x"}}})


def test_seed_must_fit_in_32_bits():
    with pytest.raises(ConfigError, match=r"key 'stream\.seed' is 2147483648; seeds must be"):
        experiment_from_mapping({"stream": {"seed": 2**31}})
    assert experiment_from_mapping({"stream": {"seed": 2**31 - 1}}).stream.seed == 2**31 - 1


def test_missing_data_dir_is_a_validation_error(tmp_path):
    missing = tmp_path / "no-mnist"
    with pytest.raises(ConfigError, match=r"key 'stream\.data_dir' .*does not exist"):
        experiment_from_mapping({"stream": {"data_dir": str(missing)}})
    experiment = experiment_from_mapping(
        {"stream": {"data_dir": str(write_mnist_files(tmp_path / "mnist"))}})
    assert experiment.stream.data_dir == str(tmp_path / "mnist")


def test_output_path_must_be_a_file_name(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'output\.path' is empty"):
        experiment_from_mapping({"output": {"path": ""}})
    with pytest.raises(ConfigError, match=r"key 'output\.path' .* an existing directory"):
        experiment_from_mapping({"output": {"path": str(tmp_path)}})


def test_more_than_one_thread_is_refused_with_the_reason():
    """Brian2's multi-threaded synaptic code loses inhibition updates in these
    networks (more spikes per digit): two or more threads are refused."""
    from spikedyn_brian.engine import Engine
    from spikedyn_brian.models.parameters import network_parameters

    with pytest.raises(ConfigError, match=r"'device.threads' is 2: more than one OpenMP "
                                          r"thread changes the network's dynamics.*use 0"):
        experiment_from_mapping({"device": {"name": "cpp_standalone", "threads": 2}})
    assert experiment_from_mapping({"device": {"name": "cpp_dense", "threads": 1}}).device.threads == 1
    with pytest.raises(ValueError, match="threads=2: more than one OpenMP thread"):
        Engine(network_parameters("diehl-cook", 3), "cpp_standalone", threads=2)


def test_networks_start_from_their_familys_tuned_set_unless_published(tmp_path, monkeypatch):
    """network.parameter_set: 'tuned' (default) puts the family's N = 400 set beneath
    the configuration's own keys; 'published' keeps the models' constants."""
    from spikedyn_brian import parameter_sets
    from spikedyn_brian.models.parameters import network_parameters

    (tmp_path / "spikedyn_N400.toml").write_text(
        '[network]\nvariant = "spikedyn"\n[network.spikedyn]\nw_lateral = 4.5\n'
        'x_target = 0.2\n')
    monkeypatch.setattr(parameter_sets, "TUNED_DIRECTORY", tmp_path)
    published = network_parameters("spikedyn", 200).spikedyn
    tuned = load_experiment(None, {"network": {"variant": "spikedyn", "n_neurons": 200,
                                               "spikedyn": {"x_target": 0.3}}})
    assert tuned.network.spikedyn.w_lateral == 4.5  # from the N = 400 set
    assert tuned.network.spikedyn.x_target == 0.3   # the configuration's own key wins
    assert tuned.network.spikedyn.consolidation_spikes == published.consolidation_spikes
    original = load_experiment(None, {"network": {"variant": "spikedyn",
                                                  "parameter_set": "published"}})
    assert original.network.spikedyn.w_lateral == published.w_lateral
    # A family without a shipped set keeps the published constants.
    assert load_experiment(None, {"network": {"variant": "asp"}}).network.asp == \
        network_parameters("asp").asp
    with pytest.raises(ConfigError, match="'network.parameter_set' is 'best'; choose one of "
                                          "tuned, published"):
        load_experiment(None, {"network": {"parameter_set": "best"}})


# --------------------------------------------------------------------------
# The device: names from the registry, its own options, the default's fallback
# --------------------------------------------------------------------------


def test_device_options_are_the_fields_of_the_devices_options_dataclass():
    experiment = experiment_from_mapping({"device": {"name": "cuda", "options": {
        "gpu_id": 1, "compute_capability": 8, "slots_per_sample": 2}}})
    assert experiment.device.options == {"gpu_id": 1, "compute_capability": 8,
                                         "slots_per_sample": 2}
    assert json.loads(experiment.to_json())["device"]["options"]["gpu_id"] == 1
    with pytest.raises(ConfigError, match=r"unknown configuration key "
                                          r"'device\.options\.gpu'; known keys here: "
                                          r"compute_capability, gpu_id, slots_per_sample"):
        experiment_from_mapping({"device": {"name": "cuda", "options": {"gpu": 1}}})
    with pytest.raises(ConfigError, match=r"key 'device\.options\.use_gpu' must be true or "
                                          r"false, got 'yes'"):
        experiment_from_mapping({"device": {"name": "genn", "options": {"use_gpu": "yes"}}})
    with pytest.raises(ConfigError, match=r"in 'device\.options': option 'slots_per_sample' is "
                                          r"0\.5; it must be a finite number >= 1"):
        experiment_from_mapping({"device": {"name": "genn",
                                            "options": {"slots_per_sample": 0.5}}})
    with pytest.raises(ConfigError, match=r"key 'device\.options' sets 'target', but device "
                                          r"'cpp_dense' has no options"):
        experiment_from_mapping({"device": {"options": {"target": "numpy"}}})
    with pytest.raises(ConfigError, match=r"key 'device\.options' must be a table of keys"):
        experiment_from_mapping({"device": {"name": "runtime", "options": 3}})


def test_device_options_from_a_toml_file(tmp_path):
    path = write_toml(tmp_path, '[device]\nname = "runtime"\n[device.options]\n'
                                'formulation = "genn"\nslots_per_sample = 3\n')
    experiment = load_experiment(path)
    assert experiment.device.options == {"formulation": "genn", "slots_per_sample": 3}


def test_no_device_options_leave_the_stored_configuration_as_before():
    """Results and checkpoints of earlier versions compare equal: an empty options
    table is not written."""
    assert "options" not in Experiment().to_dict()["device"]


def test_the_device_list_is_the_registrys_and_the_check_imports_no_brian2():
    import subprocess
    import sys

    code = ("import sys\nfrom spikedyn_brian.config import experiment_from_mapping\n"
            "from spikedyn_brian.config import ConfigError\n"
            "try:\n    experiment_from_mapping({'device': {'name': 'gpu'}})\n"
            "except ConfigError as error:\n    print(error)\n"
            "print(sorted(m for m in ('brian2', 'xarray') if m in sys.modules))")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert printed == ["key 'device.name' is 'gpu'; choose one of runtime, cpp_standalone, "
                       "cpp_dense, genn, cuda", "[]"]


def test_cpp_dense_hands_a_network_with_input_delays_to_cpp_standalone():
    from spikedyn_brian.devices import SPECS

    network = experiment_from_mapping({"network": {"plasticity": {"max_input_delay_ms": 10}}},
                                      check_files=False).network
    spec, note = SPECS["cpp_dense"].serving(network)
    assert spec.name == "cpp_standalone"
    assert note == ("device 'cpp_dense' runs dense input pathways only, and input delays "
                    "(plasticity.max_input_delay_ms = 10.0) make them sparse in time: "
                    "running on cpp_standalone instead")
    assert SPECS["cpp_dense"].serving(NetworkParameters()) == (SPECS["cpp_dense"], "")
    # A device without a fallback is not replaced: its backend refuses with the reason.
    assert SPECS["genn"].serving(network) == (SPECS["genn"], "")
    assert "heterogeneous synaptic delays" in SPECS["genn"].refusal(network)


def test_a_network_alone_goes_through_the_same_validation():
    from spikedyn_brian.config import network_from_mapping

    network = network_from_mapping({"variant": "spikedyn", "n_neurons": 7})
    assert (network.variant, network.n_neurons) == ("spikedyn", 7)
    with pytest.raises(ConfigError, match=r"key 'network\.n_neurons' must be a positive"):
        network_from_mapping({"n_neurons": 0})
    with pytest.raises(ConfigError, match=r"unknown configuration key 'network\.neurons'"):
        network_from_mapping({"neurons": 5})

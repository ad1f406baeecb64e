"""The shipped tuned networks (protocols/tuned/) and the defaults they give."""

import re

import pytest

from spikedyn_brian import parameter_sets
from spikedyn_brian.config import experiment_from_mapping, load_experiment, merge
from spikedyn_brian.models.parameters import network_parameters
from spikedyn_brian.protocols.tuning import tuned_overrides

SHIPPED = sorted(parameter_sets.TUNED_DIRECTORY.glob("*_N*.toml"))


def test_the_study_ships_a_tuned_set():
    assert SHIPPED, f"no tuned set in {parameter_sets.TUNED_DIRECTORY}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_set_says_where_it_comes_from_and_names_no_local_folder(path):
    text = path.read_text()
    assert re.search(r"best trial \d+ of \d+", text)
    assert re.search(r"# Objective 0\.\d+: .*validation split", text)
    assert "no test digit seen" in text
    assert re.search(r"commit [0-9a-f]{40}", text)
    assert not re.search(r'"(/|~)[^"]*"', text), "a shipped set names a local folder"
    family, size = path.stem.split("_N")
    assert tuned_overrides(path)["variant"] == family
    network = experiment_from_mapping(
        {"network": merge(tuned_overrides(path), {"n_neurons": int(size),
                                                  "parameter_set": "published"})},
        check_files=False).network
    assert network.variant == family


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.stem.endswith("_N400")],
                         ids=lambda p: p.stem)
def test_a_familys_defaults_are_its_shipped_n400_set(path):
    """`--network F` alone runs what `--tuned F` runs, not the published constants."""
    family = path.stem.split("_N")[0]
    plain = load_experiment(None, {"network": {"variant": family}}).network
    tuned = experiment_from_mapping(
        {"network": merge(tuned_overrides(family), {"parameter_set": "published"})},
        check_files=False).network
    assert plain == tuned
    assert plain != network_parameters(family)
    published = load_experiment(None, {"network": {"variant": family,
                                                   "parameter_set": "published"}}).network
    assert published == network_parameters(family)


def test_a_wrong_type_beneath_a_tuned_value_is_named_as_the_configurations_key():
    """A table where the shipped set holds a number is the configuration's error,
    named by its own key, not a clash with the tuned set."""
    from spikedyn_brian.config import ConfigError

    assert "nu_pre" in tuned_overrides("diehl-cook")["plasticity"]
    with pytest.raises(ConfigError, match=r"'network\.plasticity\.nu_pre'") as error:
        load_experiment(None, {"network": {"variant": "diehl-cook",
                                           "plasticity": {"nu_pre": {"a": 1}}}})
    assert "section" not in str(error.value)

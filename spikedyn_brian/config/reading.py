"""From a setting to a validated experiment: the one route every network takes.

A TOML file (and a protocol's own defaults beneath it), overrides from the
command line, a tuned set (`spikedyn_brian.parameter_sets`) beneath the
network's own keys: one nested mapping, built into dataclasses
(`spikedyn_brian.config.schema`), its values checked
(`spikedyn_brian.config.bounds`), then its paths
(`spikedyn_brian.config.files`), before anything is built or simulated.
"""

from spikedyn_brian.config.bounds import check_continual, check_static
from spikedyn_brian.config.files import check_paths
from spikedyn_brian.config.schema import ContinualExperiment, Experiment, from_mapping
from spikedyn_brian.errors import ConfigError, show
from spikedyn_brian.mappings import merge, read_mapping
from spikedyn_brian.parameter_sets import with_parameter_set

__all__ = ["experiment_from_mapping", "load_experiment", "network_from_mapping"]


def experiment_from_mapping(mapping, experiment_class=None, check_files=True):
    """Build and validate an experiment from a nested mapping (parsed TOML).

    ``experiment_class`` is `Experiment` (static protocol, default) or
    `ContinualExperiment`. The network starts from the constants
    ``network.parameter_set`` chooses (`spikedyn_brian.parameter_sets`).
    ``check_files=False`` leaves out the checks of the paths (data directory,
    build directory, output and its checkpoint): for a caller that wants the
    network or the device only.
    """
    experiment_class = experiment_class or Experiment
    if not isinstance(mapping, dict):
        raise ConfigError(f"the configuration must be a table of keys, got {show(mapping)}")
    experiment = from_mapping(experiment_class, with_parameter_set(mapping))
    if experiment_class is ContinualExperiment:
        check_continual(experiment)
    else:
        check_static(experiment)
    return check_paths(experiment) if check_files else experiment


def network_from_mapping(network):
    """The validated `NetworkParameters` of a ``[network]`` table (e.g.
    ``{'variant': 'spikedyn', 'n_neurons': 400}``), through `experiment_from_mapping`."""
    return experiment_from_mapping({"network": network}, check_files=False).network


def load_experiment(path=None, overrides=None, experiment_class=None, defaults=None):
    """Read a TOML configuration file, apply overrides, validate.

    Parameters
    ----------
    path : str or Path, optional
        TOML file; None starts from the defaults.
    overrides : dict, optional
        Nested mapping merged over the file's content (e.g. from CLI options).
    defaults : str or Path, optional
        A protocol's own TOML defaults (``protocols/<protocol>.toml``), beneath
        the file: a key the file leaves out takes the protocol's value, not the
        dataclass default.
    """
    mapping = read_mapping(path, overrides)
    if defaults is not None:
        mapping = merge(read_mapping(defaults), mapping)
    return experiment_from_mapping(mapping, experiment_class)

"""Experiment configuration: validated dataclasses read from TOML.

An `Experiment` groups what one protocol run needs: the network
(:class:`~spikedyn_brian.models.parameters.NetworkParameters`), the stream,
the device and the output. Every key of a TOML file is checked: an unknown
key or a value of the wrong type (`schema`), a value outside its range
(`bounds`: `NETWORK_BOUNDS` for the network, `STREAM_LIMITS` for the stream
and the device, the device's options) raises `ConfigError` naming the key,
the value, the allowed range and the fix; a data directory, build directory,
output path or checkpoint that cannot be used (`files`) is reported the same
way. All of it at validation time (`reading`): before anything is built or
simulated.
"""

from spikedyn_brian.config.bounds import INTEGRATION_METHODS, NETWORK_BOUNDS, STREAM_LIMITS, Bound
from spikedyn_brian.config.reading import (
    experiment_from_mapping,
    load_experiment,
    network_from_mapping,
)
from spikedyn_brian.config.schema import (
    EVALUATION_SPLITS,
    ContinualExperiment,
    ContinualStreamConfig,
    DeviceConfig,
    Experiment,
    OutputConfig,
    StreamConfig,
    from_mapping,
    task_sample_counts,
)
from spikedyn_brian.errors import ConfigError
from spikedyn_brian.mappings import SECTIONS, merge, read_mapping

__all__ = ["ConfigError", "StreamConfig", "ContinualStreamConfig", "DeviceConfig",
           "OutputConfig", "Experiment", "ContinualExperiment", "load_experiment",
           "experiment_from_mapping", "network_from_mapping", "read_mapping", "merge",
           "from_mapping", "task_sample_counts", "Bound", "NETWORK_BOUNDS",
           "INTEGRATION_METHODS", "STREAM_LIMITS", "EVALUATION_SPLITS", "SECTIONS"]

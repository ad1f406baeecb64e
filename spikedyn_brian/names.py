"""Names the command line offers, without importing Brian2 or xarray.

``spikedyn --help`` must answer at once, so the parser takes its choices from
here; the devices come from their registry
(`spikedyn_brian.devices.registry`, light as this module), the other names are
listed here and tests check that they agree with the modules that implement
them (the comparison's and the model search's variants, the tuner's search
spaces).
"""

from pathlib import Path

import spikedyn_brian.protocols as _protocols  # an empty package: nothing heavy
from spikedyn_brian.devices.registry import DEVICES, SPECS, STANDALONE_DEVICES

__all__ = ["DEVICES", "STANDALONE_DEVICES", "DEVICE_HELP", "DEVICE_OPTIONS_HELP", "VARIANT_HELP",
           "COMPARISON_VARIANTS", "SEARCH_VARIANTS", "TUNING_FAMILIES", "TRIAL_SEEDS",
           "COMPARISON_SEEDS", "COMPARISON_OUTPUT", "PROTOCOL_CONFIGS"]

#: What each ``--device`` is.
DEVICE_HELP = "; ".join(f"{name}: {spec.summary}" for name, spec in SPECS.items())
#: The options each device takes (``--device-option KEY=VALUE``).
DEVICE_OPTIONS_HELP = "; ".join(f"{name}: {', '.join(spec.option_names())}"
                                for name, spec in SPECS.items() if spec.option_names())

#: What each ``--network`` variant is.
VARIANT_HELP = (
    "diehl-cook: Diehl & Cook (2015), the unsupervised STDP baseline; "
    "asp: ASP (Panda et al. 2018, adaptive synaptic plasticity: Diehl & Cook's network "
    "with a significance-gated weight decay toward a baseline, a time-dependent learning "
    "rate and frequency-dependent updates), reconstructed from its abstract and a survey; "
    "spikedyn: SpikeDyn (Putra & Shafique 2021, direct lateral inhibition and four "
    "continual-learning mechanisms), reconstructed (docs/models.md)"
)

#: Variants of ``spikedyn run continual-comparison`` (`continual_comparison.VARIANTS`).
COMPARISON_VARIANTS = (
    "diehl-cook", "asp", "asp-leak-to-zero", "spikedyn", "spikedyn-no-adaptive-learning-rate", "spikedyn-no-adaptive-threshold",
    "spikedyn-no-weight-decay", "spikedyn-no-spurious-update-reduction",
)
#: Variants a model search may contain (`model_search.SEARCH_VARIANTS`).
SEARCH_VARIANTS = ("diehl-cook", "spikedyn")
#: Families the tuner has search spaces for (`tuning.SEARCH_SPACES`).
TUNING_FAMILIES = ("diehl-cook", "asp", "spikedyn")
#: Stream seeds of every tuning trial (`tuning.TRIAL_SEEDS`).
TRIAL_SEEDS = (100, 101)
#: Seeds and results file of a comparison (`continual_comparison.ComparisonPlan`).
COMPARISON_SEEDS = (0, 1, 2)
COMPARISON_OUTPUT = "results/continual_comparison.nc"

_PROTOCOLS = Path(_protocols.__file__).resolve().parent
#: Default configuration file of each protocol.
PROTOCOL_CONFIGS = {
    "static-mnist": _PROTOCOLS / "static_mnist.toml",
    "dynamic-digits": _PROTOCOLS / "dynamic_digits.toml",
    "model-search": _PROTOCOLS / "model_search.toml",
}

"""Which constants a network starts from: its family's shipped tuned set, or the published ones.

The tuning study (``docs/results.md``) ships the best validation trial of each
family and size as a TOML file, ``protocols/tuned/<family>_N<size>.toml``
(`spikedyn_brian.protocols.tuning.write_tuned_set`). A configuration's
``network.parameter_set`` chooses the constants its network starts from,
beneath every key the configuration sets itself:

``'tuned'`` (default)
    the family's N = 400 tuned set, whatever the network's size (the sets of
    other sizes are chosen by name: ``--tuned spikedyn-N200``); the published
    constants where a family has no shipped set;
``'published'``
    the constants of `spikedyn_brian.models.parameters` (Diehl & Cook's
    original code, and the documented reconstructions of ASP and SpikeDyn).

Light on purpose (no Brian2, no xarray): the configuration reader uses it.
"""

from pathlib import Path

from spikedyn_brian.errors import ConfigError
from spikedyn_brian.mappings import read_mapping
from spikedyn_brian.models.parameters import NetworkParameters

__all__ = ["PARAMETER_SETS", "TUNED_DIRECTORY", "DEFAULT_TUNED_SIZE", "tuned_set_path",
           "shipped_sets", "with_parameter_set"]

#: Values of ``network.parameter_set``.
PARAMETER_SETS = ("tuned", "published")

#: The committed tuned networks.
TUNED_DIRECTORY = Path(__file__).resolve().parent.parent / "protocols" / "tuned"
if not TUNED_DIRECTORY.is_dir():  # installed: the protocols package holds them
    import spikedyn_brian.protocols as _protocols

    TUNED_DIRECTORY = Path(_protocols.__file__).resolve().parent / "tuned"

#: The size whose tuned set is every network's default.
DEFAULT_TUNED_SIZE = 400


def shipped_sets(directory=None):
    """Names of the shipped sets, e.g. ``['asp-N200', 'asp-N400', ...]``."""
    directory = Path(directory or TUNED_DIRECTORY)
    return sorted(p.stem.replace("_N", "-N") for p in directory.glob("*_N*.toml"))


def tuned_set_path(name, n_neurons=None, directory=None):
    """The file of a shipped tuned set (it may not exist).

    ``'spikedyn'`` is the N = ``n_neurons`` set (default 400), ``'spikedyn-N200'``
    the N = 200 one.
    """
    family, _, size = str(name).partition("-N")
    if not size.isdigit():
        family, size = str(name), str(n_neurons or DEFAULT_TUNED_SIZE)
    return Path(directory or TUNED_DIRECTORY) / f"{family}_N{int(size)}.toml"


def with_parameter_set(mapping, directory=None):
    """``mapping`` (a parsed configuration) with its parameter set beneath its own keys.

    Removes ``network.parameter_set`` (default ``'tuned'``) and, for
    ``'tuned'``, merges the ``[network]`` table of the family's N = 400 set
    under the configuration's own ``[network]`` keys.

    Raises
    ------
    ConfigError
        For an unknown parameter set, or a tuned set without a ``[network]`` table.
    """
    network = mapping.get("network", {})
    if not isinstance(network, dict):
        return mapping  # the configuration reader names the problem
    network = dict(network)
    choice = network.pop("parameter_set", "tuned")
    if choice not in PARAMETER_SETS:
        raise ConfigError(f"key 'network.parameter_set' is {choice!r}; choose one of "
                          f"{', '.join(PARAMETER_SETS)}")
    if choice == "tuned":
        path = tuned_set_path(network.get("variant", NetworkParameters.variant),
                              DEFAULT_TUNED_SIZE, directory)
        if path.is_file():
            tuned = read_mapping(path).get("network")
            if not isinstance(tuned, dict):
                raise ConfigError(f"tuned set '{path}' has no [network] table")
            network = _beneath(tuned, network)
    return dict(mapping, network=network)


def _beneath(tuned, own):
    """``own`` over ``tuned``: every key the configuration sets wins, whatever its
    type (a wrong one is then named by the configuration reader as the
    configuration's own key, not as a clash with the tuned set)."""
    result = dict(tuned)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _beneath(result[key], value)
        else:
            result[key] = value
    return result

"""Every seed of a run, derived by name from one root seed.

A run has one root seed (``stream.seed``). Everything random in it — the
initial weights, the order of the training digits, the Poisson input spikes
of each phase and of each chunk of a phase — draws from a seed derived from
the root and a *name* through :class:`numpy.random.SeedSequence`::

    derive(root, "weights")                 # initial weights
    derive(root, "stream-order")            # which training digits, in which order
    derive(root, "inputs", "train0")        # input spikes of phase 'train0'
    derive(derive(root, "inputs", "train0"), "chunk", 1000)   # its 2nd chunk

Derived seeds of different names are statistically independent (that is
what ``SeedSequence`` is for), so adding a phase never shifts the seeds of
the others, and no seed is an arithmetic offset of another. Which digits are
*evaluation* digits (validation or test) never depends on the root seed:
those are fixed by the data split (:mod:`spikedyn_brian.data`).
"""

import hashlib

import numpy as np

__all__ = ["derive", "RunSeeds", "MAXIMUM_SEED"]

#: Derived seeds lie in 0 .. MAXIMUM_SEED (they fit Brian2's 32-bit integers).
MAXIMUM_SEED = 2**31 - 1


def _name_key(name):
    """A non-negative integer for one name component (int or str)."""
    if isinstance(name, (bool, np.bool_)):
        raise TypeError(f"seed name components are strings or integers, got {name!r}")
    if isinstance(name, (int, np.integer)):
        if name < 0:
            raise ValueError(f"integer seed name components must be >= 0, got {name}")
        return int(name)
    if isinstance(name, str):
        # A stable hash (Python's hash() of str changes between processes).
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    raise TypeError(f"seed name components are strings or integers, got {name!r}")


def derive(root, *names):
    """The seed named ``names`` of the run with root seed ``root``.

    Parameters
    ----------
    root : int
        Root seed (>= 0).
    *names : str or int
        Name of the seed, e.g. ``("inputs", "train0")``.

    Returns
    -------
    int
        A seed in 0 .. `MAXIMUM_SEED`; the same for the same arguments in every
        process and on every machine.
    """
    root = _name_key(root)
    sequence = np.random.SeedSequence(entropy=root, spawn_key=[_name_key(n) for n in names])
    return int(sequence.generate_state(1, np.uint32)[0]) & MAXIMUM_SEED


class RunSeeds:
    """The named seeds of one run.

    Parameters
    ----------
    root : int
        The run's root seed (``stream.seed``).
    """

    def __init__(self, root):
        self.root = _name_key(root)

    @property
    def weights(self):
        """Seed of the initial weights."""
        return derive(self.root, "weights")

    @property
    def stream_order(self):
        """Seed of the choice and order of the training digits."""
        return derive(self.root, "stream-order")

    @property
    def probe_choice(self):
        """Seed of the choice of labelled probe digits (from the training pool)."""
        return derive(self.root, "probe-choice")

    def inputs(self, phase):
        """Seed of the Poisson input spikes of phase ``phase`` (e.g. ``'train0'``)."""
        return derive(self.root, "inputs", phase)

    def as_dict(self, phases=()):
        """The seeds by name (for results attributes)."""
        named = {
            "root": self.root,
            "weights": self.weights,
            "stream_order": self.stream_order,
            "probe_choice": self.probe_choice,
        }
        named.update({f"inputs.{phase}": self.inputs(phase) for phase in phases})
        return named

    def __repr__(self):
        return f"RunSeeds(root={self.root})"


def chunk_seed(phase_seed, first):
    """Seed of the chunk of a phase that starts at stream position ``first``."""
    return derive(phase_seed, "chunk", int(first))


__all__.append("chunk_seed")

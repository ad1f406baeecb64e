"""Data objects of the engine: what a network has learned, and what a stream returned."""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LearnedState", "StreamResult", "StateError", "expected_state_shapes",
           "state_problem"]


class StateError(ValueError):
    """A learned state that does not fit the network (names, shapes, dtypes) or is not finite."""


def expected_state_shapes(parameters):
    """Name (as in `LearnedState.arrays`) → shape of every learned array of a network."""
    from spikedyn_brian.models.equations import (
        learned_input_variables,
        learned_neuron_variables,
        learned_synapse_variables,
    )

    n, n_inputs = parameters.n_neurons, parameters.n_inputs
    shapes = {"weights": (n_inputs * n,), "theta": (n,)}
    shapes.update({f"synapse.{name}": (n_inputs * n,)
                   for name in learned_synapse_variables(parameters)})
    shapes.update({f"neuron.{name}": (n,) for name in learned_neuron_variables(parameters)})
    shapes.update({f"input.{name}": (n_inputs,) for name in learned_input_variables(parameters)})
    return shapes


def state_problem(arrays, parameters, prefix=""):
    """Why named learned arrays do not fit a network (a sentence), or None when they do.

    Every array of `expected_state_shapes` must be there (and no other), of a
    floating-point dtype, of the expected shape, with finite values only.
    ``prefix`` goes before every array name in the sentence (e.g. the
    checkpoint's ``'train0.state.'``).
    """
    expected = expected_state_shapes(parameters)
    arrays = {f"{prefix}{name}": values for name, values in arrays.items()}
    expected = {f"{prefix}{name}": shape for name, shape in expected.items()}
    network = f"the {parameters.variant} network with N = {parameters.n_neurons}"
    missing = sorted(set(expected) - set(arrays))
    if missing:
        return f"the learned state lacks {', '.join(missing)} of {network}"
    extra = sorted(set(arrays) - set(expected))
    if extra:
        return f"the learned state holds {', '.join(extra)}, which {network} does not have"
    for name, shape in expected.items():
        values = np.asarray(arrays[name])
        if values.dtype.kind != "f":
            return (f"learned array '{name}' is of dtype {values.dtype}, not floating point "
                    f"as {network} writes it")
        if values.shape != shape:
            return f"learned array '{name}' has shape {values.shape}; {network} needs {shape}"
        bad = ~np.isfinite(values)
        if bad.any():
            return f"learned array '{name}' holds {int(bad.sum())} NaN or infinite values"
    return None


@dataclass
class LearnedState:
    """What a network has learned: input weights, adaptive thresholds and the rest.

    Attributes
    ----------
    weights : ndarray, shape (n_inputs * n_neurons,)
        Input → excitatory weights in Brian2's synapse order (input-major).
    theta : ndarray, shape (n_neurons,)
        Adaptive threshold, in volt.
    synapses : dict
        Other learned input-synapse variables (ASP's ``significance``), name →
        array in synapse order.
    neurons : dict
        Other learned excitatory-neuron variables (SpikeDyn's ``activity``,
        ASP's ``training_presentations``), name → array of length n_neurons.
    inputs : dict
        Learned input-neuron variables (ASP's ``feature_frequency``), name →
        array of length n_inputs.
    """

    weights: np.ndarray
    theta: np.ndarray
    synapses: dict = field(default_factory=dict)
    neurons: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)

    def weight_matrix(self, n_inputs):
        """Weights as an (n_inputs, n_neurons) matrix."""
        return self.weights.reshape(n_inputs, -1)

    def copy(self):
        return LearnedState(
            self.weights.copy(),
            self.theta.copy(),
            {name: values.copy() for name, values in self.synapses.items()},
            {name: values.copy() for name, values in self.neurons.items()},
            {name: values.copy() for name, values in self.inputs.items()},
        )

    def arrays(self):
        """Every array by a flat name: ``weights``, ``theta``, ``synapse.<name>``,
        ``neuron.<name>``, ``input.<name>``."""
        named = {"weights": self.weights, "theta": self.theta}
        for prefix, table in self._tables().items():
            named.update({f"{prefix}.{name}": values for name, values in table.items()})
        return named

    def _tables(self):
        return {"synapse": self.synapses, "neuron": self.neurons, "input": self.inputs}

    @classmethod
    def from_arrays(cls, named):
        """The inverse of `arrays`."""
        def table(prefix):
            return {key[len(prefix) + 1:]: value for key, value in named.items()
                    if key.startswith(prefix + ".")}

        return cls(named["weights"], named["theta"], table("synapse"), table("neuron"),
                   table("input"))

    def __repr__(self):
        extra = ", ".join(list(self.synapses) + list(self.neurons) + list(self.inputs))
        return (
            f"LearnedState({self.weights.size} weights, mean {self.weights.mean():.4f}; "
            f"theta mean {self.theta.mean() * 1e3:.3f} mV" + (f"; {extra}" if extra else "") + ")"
        )


@dataclass
class StreamResult:
    """Raw results of one stream.

    Attributes
    ----------
    spike_counts : ndarray (n_samples, n_neurons)
        Excitatory spikes during the accepted presentation of each sample.
    presentations : ndarray (n_samples,)
        Slots used by each sample (1 + number of intensity boosts).
    final_intensity : ndarray (n_samples,)
        Input intensity of the accepted presentation.
    state : LearnedState
        Learned state at the end of the stream.
    simulation_seconds : float
        Wall-clock time spent simulating (all chunks, without compilation).
    slots : int
        Presentation slots simulated.
    """

    spike_counts: np.ndarray
    presentations: np.ndarray
    final_intensity: np.ndarray
    state: LearnedState
    simulation_seconds: float
    slots: int
    spikes_total: int = 0
    input_spikes_total: int = 0
    inhibitory_spikes_total: int = 0
    chunk_seconds: list = field(default_factory=list)

    @classmethod
    def concatenate(cls, parts):
        """One result from consecutive parts of a stream (chunks, or phases of one kind)."""
        return cls(
            spike_counts=np.concatenate([p.spike_counts for p in parts]),
            presentations=np.concatenate([p.presentations for p in parts]),
            final_intensity=np.concatenate([p.final_intensity for p in parts]),
            state=parts[-1].state,
            simulation_seconds=float(sum(p.simulation_seconds for p in parts)),
            slots=int(sum(p.slots for p in parts)),
            spikes_total=int(sum(p.spikes_total for p in parts)),
            input_spikes_total=int(sum(p.input_spikes_total for p in parts)),
            inhibitory_spikes_total=int(sum(p.inhibitory_spikes_total for p in parts)),
        )

    def synaptic_events(self, parameters):
        """Synaptic events processed: each spike times its outgoing synapses.

        Input spikes reach N excitatory neurons; excitatory spikes reach 784
        input synapses (post pathway) and N - 1 neurons (direct inhibition)
        or one inhibitory neuron; inhibitory spikes reach N - 1 neurons.
        The bookkeeping synapses (spike counters) are not counted.
        """
        n = parameters.n_neurons
        exc_targets = parameters.n_inputs + (1 if parameters.has_inhibitory_layer else n - 1)
        return (
            self.input_spikes_total * n
            + self.spikes_total * exc_targets
            + self.inhibitory_spikes_total * (n - 1)
        )

    def __repr__(self):
        n = len(self.presentations)
        return (
            f"StreamResult({n} samples, {self.slots} slots, "
            f"{self.simulation_seconds / max(n, 1) * 1e3:.2f} ms per sample)"
        )

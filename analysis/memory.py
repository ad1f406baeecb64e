"""Memory model: the bytes a network needs, per variable, at a chosen precision.

The model lists the state a network must keep between time steps — weights,
neuron state, the lateral-inhibition structure, the presentation controller
and the current input image — as `MemoryItem` rows, each tied to the Brian2
array that holds it (``group`` and ``variable``), so that the model can be
checked against what Brian2 allocates (``tests/test_memory.py``).

Two settings describe an implementation:

* ``weight_bits`` (input weights, and ASP's significance) and ``state_bits``
  (every floating-point neuron state variable). Integers are 32-bit, pixels
  8-bit. Brian2 stores floats as float64: ``weight_bits=64, state_bits=64``
  reproduces its array sizes.
* ``connectivity``: ``'implicit'`` (default) — all-to-all input synapses and
  all-but-self lateral inhibition with one constant weight need no index
  arrays, only the constant; ``'index-list'`` — one (pre, post) pair of 32-bit
  indices per synapse, as Brian2's ``Synapses`` store them (``_synaptic_pre``,
  ``_synaptic_post``).

What is left out (``docs/energy.md``): Brian2's bookkeeping arrays that an
implementation derives (``not_refractory``, ``N_incoming``, ``i``/``j``
views, ``_spikespace``), the per-neuron copies of controller scalars
(``normalise_flag``, ``learning_rate_factor``, ``plastic``), the temporary
``normalisation_factor`` (computed in place from the weight sum), monitors,
and the whole-stream stimulus buffer (a device holds one image).
"""

import math

import numpy as np
from dataclasses import dataclass, field

from spikedyn_brian.models.equations import (
    learned_neuron_variables,
    uses_pre_spike_depression,
    uses_spike_history,
)

__all__ = ["MemoryItem", "MemoryFootprint", "memory_footprint", "CONNECTIVITY"]

#: Ways of storing the synapse structure.
CONNECTIVITY = ("implicit", "index-list")

#: Bits of an integer state variable (Brian2's ``integer`` is int32).
INTEGER_BITS = 32
#: Bits of one input pixel (0..255).
PIXEL_BITS = 8


@dataclass(frozen=True)
class MemoryItem:
    """One array of the memory model.

    Attributes
    ----------
    component : str
        'weights', 'excitatory_state', 'inhibitory_state', 'input_state',
        'lateral_inhibition', 'connectivity', 'controller' or 'input_buffer'.
    group : str or None
        Name of the Brian2 object holding the array (None: not a Brian2 array,
        e.g. a namespace constant).
    variable : str
        Brian2 variable name (or a descriptive name when ``group`` is None).
    count : int
        Number of elements.
    bits : int
        Bits per element.
    """

    component: str
    group: str | None
    variable: str
    count: int
    bits: int

    @property
    def nbytes(self):
        """Bytes of the array (bit-packed: ``ceil(count * bits / 8)``)."""
        return math.ceil(self.count * self.bits / 8)

    def __repr__(self):
        where = f"{self.group}.{self.variable}" if self.group else self.variable
        return f"MemoryItem({self.component}: {where}, {self.count} × {self.bits} bit = {self.nbytes} B)"


@dataclass
class MemoryFootprint:
    """The memory model of one network at one precision.

    Attributes
    ----------
    variant : str
    n_neurons : int
    weight_bits, state_bits : int
    connectivity : str
    items : list of MemoryItem
    """

    variant: str
    n_neurons: int
    weight_bits: int
    state_bits: int
    connectivity: str
    items: list = field(default_factory=list)

    @property
    def total_bytes(self):
        """Bytes of all items."""
        return int(sum(item.nbytes for item in self.items))

    def by_component(self):
        """Bytes per component, in the order components first appear."""
        totals = {}
        for item in self.items:
            totals[item.component] = totals.get(item.component, 0) + item.nbytes
        return totals

    def brian2_items(self):
        """Items held in a Brian2 array (``group`` is not None)."""
        return [item for item in self.items if item.group is not None]

    def __repr__(self):
        return (
            f"MemoryFootprint(variant={self.variant!r}, n_neurons={self.n_neurons}, "
            f"weight_bits={self.weight_bits}, state_bits={self.state_bits}, "
            f"connectivity={self.connectivity!r}, total={self.total_bytes} B)"
        )


def _check_bits(value, name):
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive whole number of bits, got {value!r}")
    return int(value)


def memory_footprint(parameters, weight_bits=32, state_bits=32, connectivity="implicit"):
    """Memory model of a network.

    Parameters
    ----------
    parameters : NetworkParameters
    weight_bits : int
        Bits per input weight (and per ASP significance value).
    state_bits : int
        Bits per floating-point neuron state variable.
    connectivity : {'implicit', 'index-list'}
        How synapse structure is stored (see the module docstring).

    Returns
    -------
    MemoryFootprint
    """
    weight_bits = _check_bits(weight_bits, "weight_bits")
    state_bits = _check_bits(state_bits, "state_bits")
    if connectivity not in CONNECTIVITY:
        raise ValueError(
            f"connectivity {connectivity!r} is unknown; choose one of {', '.join(CONNECTIVITY)}"
        )
    p = parameters
    n, n_inputs = int(p.n_neurons), int(p.n_inputs)
    n_synapses = n_inputs * n
    items = [MemoryItem("weights", "input_synapses", "w", n_synapses, weight_bits)]
    if p.uses_asp:
        items.append(MemoryItem("weights", "input_synapses", "significance", n_synapses,
                                weight_bits))

    # Excitatory neurons: membrane, conductances, threshold, refractoriness
    # (time of the last spike), the normalisation accumulator, and the
    # variant's optional variables.
    excitatory = ["v", "ge", "gi", "theta", "lastspike", "input_weight_sum"]
    if p.excitatory.uses_timer:
        excitatory.append("timer")
    if uses_pre_spike_depression(p):
        excitatory += ["post1", "post2"]
    if uses_spike_history(p):
        excitatory.append("slot_spikes")  # SpikeDyn's per-slot spike count
    excitatory += [name for name in learned_neuron_variables(p)]  # SpikeDyn's activity
    if "activity" in excitatory:
        excitatory.append("learning_rate_factor")
    items += [MemoryItem("excitatory_state", "excitatory", name, n, state_bits)
              for name in excitatory]

    # Inputs: presynaptic trace, time of the next spike, per-slot hazard.
    items += [MemoryItem("input_state", "inputs", name, n_inputs, state_bits)
              for name in ("pre", "next_spike", "hazard")]

    # Lateral inhibition: inhibitory neurons (Diehl & Cook) and constant weights.
    if p.has_inhibitory_layer:
        items += [MemoryItem("inhibitory_state", "inhibitory", name, n, state_bits)
                  for name in ("v", "ge", "lastspike")]
        items += [MemoryItem("lateral_inhibition", None, name, 1, state_bits)
                  for name in ("w_exc_to_inh", "w_inh_to_exc")]
        lateral = {"excitatory_to_inhibitory": n, "inhibitory_to_excitatory": n * (n - 1)}
    else:
        items.append(MemoryItem("lateral_inhibition", None, "w_lateral", 1, state_bits))
        lateral = {"lateral_inhibition": n * (n - 1)}

    if connectivity == "index-list":
        for group, count in {"input_synapses": n_synapses, **lateral}.items():
            items += [MemoryItem("connectivity", group, name, count, INTEGER_BITS)
                      for name in ("_synaptic_pre", "_synaptic_post")]

    # Controller: sample index, intensity, response count, slot start.
    items += [
        MemoryItem("controller", "controller", "index", 1, INTEGER_BITS),
        MemoryItem("controller", "controller", "intensity", 1, state_bits),
        MemoryItem("controller", "controller", "count", 1, INTEGER_BITS),
        MemoryItem("controller", "controller", "slot_start", 1, state_bits),
    ]
    items.append(MemoryItem("input_buffer", None, "pixels", n_inputs, PIXEL_BITS))
    return MemoryFootprint(p.variant, n, weight_bits, state_bits, connectivity, items)


def quantise_weights(weights, bits, w_max=1.0):
    """Weights as a ``bits``-bit implementation stores them.

    Below 32 bits: unsigned fixed point on ``[0, w_max]`` with ``2**bits - 1``
    steps, rounded to the nearest level (post-training quantisation). At 32
    bits: rounded to float32; above: unchanged. Returns float64 values.

    Parameters
    ----------
    weights : array_like
    bits : int
    w_max : float
    """
    bits = _check_bits(bits, "bits")
    weights = np.asarray(weights, dtype=float)
    if bits > 32:
        return weights.copy()
    if bits == 32:
        return weights.astype(np.float32).astype(float)
    levels = 2**bits - 1
    step = w_max / levels
    return np.clip(np.round(weights / step), 0, levels) * step


__all__ += ["quantise_weights"]

"""Energy model: operations per sample × energy per primitive operation.

Three steps, each a pure function (``docs/energy.md`` gives every formula):

1. **Operation counts** per sample (`OperationCounts`): neuron state updates
   (excitatory, inhibitory, input neurons, one per neuron per time step),
   input spikes (one random draw each) and the first draw of every input per
   slot, synaptic events (input spikes × N, lateral inhibition), STDP updates
   (Diehl & Cook: a depression per input spike per synapse *and* a
   potentiation per excitatory spike per input synapse; SpikeDyn with the
   reduction of spurious updates: only the latter), spike resets, and the
   weight normalisation (and decay) pass before every training presentation.
   They come from the spike totals of a real run
   (`operation_counts_from_result`) or, for a network not yet simulated,
   from activity rates (`estimate_operation_counts`, `ActivityRates`).
   Inference has no STDP update and no normalisation.
2. **Primitive costs** of each operation (`operation_costs`): float
   additions and multiplications, integer operations, random numbers and
   32-bit memory reads and writes, derived from the equations as implemented
   (``models/equations.py``). A weight access moves ``weight_bits / 32``
   words.
3. **Energy table** (`EnergyTable`): picojoules per primitive. The default,
   `HOROWITZ_45NM`, holds the 45 nm CMOS figures of Horowitz, "Computing's
   energy problem (and what we can do about it)", ISSCC 2014, as tabulated by
   Han et al., "Learning both weights and connections for efficient neural
   networks", NeurIPS 2015, Table 1. A table per platform can be read from
   TOML (`EnergyTable.from_toml`).

`energy_per_sample` multiplies them into an `EnergyEstimate` (joules per
sample, per operation and per primitive; ``to_dataset()`` gives xarray).
"""

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import xarray

from spikedyn_brian.models.equations import (
    uses_asp_frequency,
    uses_asp_learning_rate,
    uses_pre_spike_depression,
)

__all__ = [
    "PHASES",
    "PRIMITIVES",
    "EnergyTable",
    "HOROWITZ_45NM",
    "Primitives",
    "operation_costs",
    "ActivityRates",
    "DEFAULT_RATES",
    "OperationCounts",
    "operation_counts",
    "operation_counts_from_result",
    "estimate_operation_counts",
    "EnergyEstimate",
    "energy_per_sample",
    "analytical_profile",
]

#: Phases of a run: learning on (training) or off (inference: labelling, test).
PHASES = ("train", "inference")

#: Primitive operations of the cost model.
PRIMITIVES = ("float_add", "float_mult", "int_op", "random_number", "memory_read",
              "memory_write")

#: An ``exp`` or ``log`` is counted as a degree-5 polynomial after range
#: reduction (Horner): 6 multiplications and 6 additions (an assumption; no
#: published per-operation figure).
TRANSCENDENTAL_MULTS = 6
TRANSCENDENTAL_ADDS = 6


@dataclass(frozen=True)
class EnergyTable:
    """Energy per primitive operation, in picojoules.

    Attributes
    ----------
    name, source : str
        What the table describes and where its figures come from.
    float_add_pj, float_mult_pj : float
        32-bit floating-point addition (comparisons included) and multiplication.
    int_op_pj : float
        32-bit integer addition (and shift/xor/compare).
    random_number_pj : float
        One 32-bit pseudo-random number.
    memory_read_pj, memory_write_pj : float
        Access to one 32-bit word of the memory that holds the network.
    """

    name: str
    source: str
    float_add_pj: float
    float_mult_pj: float
    int_op_pj: float
    random_number_pj: float
    memory_read_pj: float
    memory_write_pj: float

    def picojoules(self, primitive):
        """Energy of one primitive operation, in pJ."""
        return getattr(self, f"{primitive}_pj")

    @classmethod
    def from_toml(cls, path):
        """Read a table from a TOML file with the attribute names as keys.

        Missing keys keep the values of `HOROWITZ_45NM`; unknown keys are errors.
        """
        path = Path(path)
        mapping = tomllib.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ValueError(
                f"energy table '{path}': unknown key(s) {', '.join(unknown)}; known keys: "
                f"{', '.join(sorted(known))}"
            )
        return replace(HOROWITZ_45NM, **mapping)

    def __repr__(self):
        return (
            f"EnergyTable({self.name!r}: add {self.float_add_pj} pJ, mult "
            f"{self.float_mult_pj} pJ, memory {self.memory_read_pj}/"
            f"{self.memory_write_pj} pJ per 32-bit word)"
        )


#: 45 nm CMOS at 0.9 V: Horowitz (ISSCC 2014, Fig. 1.1.9) as tabulated by Han
#: et al. (NeurIPS 2015, Table 1): 32-bit int add 0.1 pJ, 32-bit float add
#: 0.9 pJ, 32-bit float mult 3.7 pJ, 32-bit SRAM cache access 5 pJ (32-bit
#: DRAM access: 640 pJ; use a platform table for a network held in DRAM).
#: A random number is counted as ten 32-bit integer operations (a xorshift
#: or Mersenne-Twister tempering step: our assumption). Writes cost the same
#: as reads (the source gives one figure per access).
HOROWITZ_45NM = EnergyTable(
    name="45 nm CMOS, on-chip SRAM",
    source=(
        "M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
        "ISSCC 2014, pp. 10-14, Fig. 1.1.9, as tabulated in S. Han et al., 'Learning "
        "both weights and connections for efficient neural networks', NeurIPS 2015, "
        "Table 1: 32-bit int add 0.1 pJ, float add 0.9 pJ, float mult 3.7 pJ, "
        "SRAM access 5 pJ per 32-bit word; random number = 10 int ops (assumption)"
    ),
    float_add_pj=0.9,
    float_mult_pj=3.7,
    int_op_pj=0.1,
    random_number_pj=1.0,
    memory_read_pj=5.0,
    memory_write_pj=5.0,
)


@dataclass(frozen=True)
class Primitives:
    """Primitive operations of one model operation (memory in 32-bit words)."""

    float_add: float = 0.0
    float_mult: float = 0.0
    int_op: float = 0.0
    random_number: float = 0.0
    memory_read: float = 0.0
    memory_write: float = 0.0

    def __add__(self, other):
        return Primitives(**{name: getattr(self, name) + getattr(other, name)
                             for name in PRIMITIVES})

    def picojoules(self, table):
        """Energy of this combination under ``table``, in pJ."""
        return sum(getattr(self, name) * table.picojoules(name) for name in PRIMITIVES)


_EXP = Primitives(float_add=TRANSCENDENTAL_ADDS, float_mult=TRANSCENDENTAL_MULTS)


def _geometric_draw():
    """Steps to the next input spike: ``ceil(-log(1 - rand()) / hazard)``; ``t + dt*k``."""
    return _EXP + Primitives(random_number=1, float_add=3, float_mult=2)


def operation_costs(parameters, weight_bits=32):
    """Primitive operations of each model operation, from the equations as implemented.

    Parameters
    ----------
    parameters : NetworkParameters
    weight_bits : int
        Bits per input weight: one weight access moves ``weight_bits / 32``
        32-bit words (packed weights).

    Returns
    -------
    dict of str to Primitives
        Keys are the operation names of `OperationCounts`.
    """
    p = parameters
    w_words = weight_bits / 32
    depression = uses_pre_spike_depression(p)
    asp_rate = uses_asp_learning_rate(p)
    asp_frequency = uses_asp_frequency(p)
    timer = p.excitatory.uses_timer
    # Diehl & Cook's theta decays at every step; SpikeDyn's changes once per slot.
    theta_decays = not p.uses_spikedyn_learning

    # Excitatory neuron, one time step. Forward Euler (default):
    #   v += dt/tau ((v_rest - v) + ge (E_exc - v) + gi (E_inh - v)) → 5 add, 4 mult;
    # exponential Euler: g = 1 + ge + gi; v_inf = (v_rest + ge E_exc + gi E_inh) / g;
    #   v = v_inf + (v - v_inf) exp(-g dt / tau)   → 6 add, 5 mult, 1 exp.
    #   refractory test t - lastspike < t_ref      → 2 add
    #   ge, gi (and theta, post1, post2) decay by a constant factor → 1 mult each
    #   timer += rate dt → 1 add; threshold v > base + theta (and timer) → 2 (3) add
    exponential = p.integration_method == "exponential_euler"
    membrane = (_EXP + Primitives(float_add=6, float_mult=5) if exponential
                else Primitives(float_add=5, float_mult=4))
    state = ["v", "ge", "gi", "theta", "lastspike"] + (["timer"] if timer else []) + (
        ["post1", "post2"] if depression else [])
    decays = 2 + int(theta_decays) + (2 if depression else 0)
    excitatory = membrane + Primitives(
        float_add=2 + (1 if timer else 0) + 2 + (1 if timer else 0),
        float_mult=decays,
        memory_read=len(state),
        memory_write=len(state) - 1 - int(not theta_decays),  # lastspike only at a spike
    )
    # Inhibitory neuron (no gi): forward Euler 4 add, 3 mult (exponential Euler:
    # g = 1 + ge; v_inf; v update → 4 add, 4 mult, 1 exp); refractory 2 add;
    # ge decay 1 mult; threshold 1 add. State v, ge, lastspike.
    inhibitory_membrane = (_EXP + Primitives(float_add=4, float_mult=4) if exponential
                           else Primitives(float_add=4, float_mult=3))
    inhibitory = inhibitory_membrane + Primitives(float_add=2 + 1, float_mult=1,
                                                  memory_read=3, memory_write=2)
    # Input neuron: pre decays (1 mult); t >= next_spike and t - slot_start <
    # presentation (3 add). Reads pre, next_spike; writes pre.
    input_update = Primitives(float_add=3, float_mult=1, memory_read=2, memory_write=1)
    # Input spike: pre = 1 and the next inter-spike interval (reads hazard).
    input_spike = _geometric_draw() + Primitives(memory_read=1, memory_write=2)
    # Per input per slot: hazard = -log(1 - clip(pixel / 8 * intensity * dt))
    # (3 mult, 3 add, 1 log), then the first draw; reads the 8-bit pixel.
    slot_draw = _EXP + _geometric_draw() + Primitives(
        float_add=3, float_mult=3, memory_read=0.25, memory_write=2)
    if asp_frequency:
        # ASP, per input per slot: f += trained (spiked - f) / tau (2 add,
        # 2 mult), spiked = 0; an input spike sets spiked = 1.
        slot_draw += Primitives(float_add=2, float_mult=2, memory_read=2, memory_write=2)
        input_spike += Primitives(memory_write=1)
    # Synaptic event of an input spike: ge_post += w.
    input_event = Primitives(float_add=1, memory_read=w_words + 1, memory_write=1)
    # Diehl & Cook depression at an input spike (w already read by the event):
    # w = clip(w - nu_pre * post1_post, 0, w_max) → 1 mult, 1 add, 2 compares.
    stdp_depression = Primitives(float_add=3, float_mult=1, memory_read=1,
                                 memory_write=w_words)
    if asp_rate:
        # ASP's time-dependent factor k: 1 mult, read k.
        stdp_depression += Primitives(float_mult=1, memory_read=1)
    # Potentiation at an excitatory spike, per input synapse:
    # Diehl & Cook: w = clip(w + nu_post * pre * post2, 0, w_max) → 2 mult, 3 add
    # SpikeDyn: w = clip(w + k nu_post (pre - x_target), 0, w_max) → 1 mult, 4 add
    if depression:
        stdp_potentiation = Primitives(float_add=3, float_mult=2)
    else:
        stdp_potentiation = Primitives(float_add=4, float_mult=1)
    stdp_potentiation += Primitives(memory_read=w_words + 1, memory_write=w_words)
    if p.uses_asp:
        # significance += rate * (pre - significance) → 1 mult, 2 add
        stdp_potentiation += Primitives(float_add=2, float_mult=1, memory_read=w_words,
                                        memory_write=w_words)
    if asp_rate:  # times k: 1 mult, read k
        stdp_potentiation += Primitives(float_mult=1, memory_read=1)
    if asp_frequency:  # times (1 + gain f_pre): 1 add, 2 mult, read f
        stdp_potentiation += Primitives(float_add=1, float_mult=2, memory_read=1)
    # Lateral event: gi_post += w_lateral (or ge_post += w_exc_to_inh, gi_post += w_inh_to_exc).
    lateral_event = Primitives(float_add=1, memory_read=1, memory_write=1)
    # Excitatory spike: v = v_reset, lastspike = t, theta += theta_plus,
    # (timer = 0), (post1 = post2 = 1), response count += 1.
    excitatory_spike = Primitives(
        float_add=1, int_op=1, memory_read=1,
        memory_write=3 + (1 if timer else 0) + (2 if depression else 0))
    inhibitory_spike = Primitives(memory_write=2)
    # Normalisation before a training presentation, per synapse: sum pass
    # (read w, add) and scale pass (read w, mult, write w). SpikeDyn's decay
    # in the sum pass: w = clip(w - decay, 0, w_max) (3 add, write w). ASP's
    # leak w -= leak (1 - s) (w - baseline) (2 mult, 2 add, + 1 add with a
    # non-zero baseline, read s, write w).
    normalisation = Primitives(float_add=1, float_mult=1, memory_read=2 * w_words,
                               memory_write=w_words)
    if p.uses_spikedyn_learning and p.spikedyn.weight_decay:
        normalisation += Primitives(float_add=3, memory_write=w_words)
    if p.uses_asp:
        normalisation += Primitives(float_add=2 + int(p.asp.baseline_weight != 0),
                                    float_mult=2, memory_read=2 * w_words,
                                    memory_write=w_words)
    # Per neuron per normalisation: factor = total / sum (1 mult, 2 add).
    normalisation_neuron = Primitives(float_add=2, float_mult=1, memory_read=1,
                                      memory_write=1)
    if p.uses_spikedyn_learning:
        spikedyn = p.spikedyn
        # SpikeDyn's per-slot neuron updates: theta += rate (spikes - target),
        # clipped (3 add, 1 mult, 2 compares); activity = activity decay +
        # spikes (2 add, 2 mult); k = exp(-activity / scale) (1 mult, 1 exp).
        if spikedyn.adaptive_threshold:
            normalisation_neuron += Primitives(float_add=5, float_mult=1, memory_read=2,
                                               memory_write=1)
        if spikedyn.adaptive_learning_rate:
            normalisation_neuron += _EXP + Primitives(float_add=2, float_mult=3, memory_read=2,
                                                      memory_write=2)
    if asp_rate:
        # ASP's per-slot neuron update: n += flag (1 add); k = 1 / (1 + n / tau)
        # (1 add, 2 mult).
        normalisation_neuron += Primitives(float_add=2, float_mult=2, memory_read=2,
                                           memory_write=2)
    costs = {
        "excitatory_update": excitatory,
        "inhibitory_update": inhibitory,
        "input_update": input_update,
        "input_spike": input_spike,
        "slot_draw": slot_draw,
        "input_synaptic_event": input_event,
        "lateral_synaptic_event": lateral_event,
        "stdp_depression": stdp_depression,
        "stdp_potentiation": stdp_potentiation,
        "excitatory_spike": excitatory_spike,
        "inhibitory_spike": inhibitory_spike,
        "normalisation_synapse": normalisation,
        "normalisation_neuron": normalisation_neuron,
    }
    return costs


#: Operation names, in the order of the energy breakdown.
OPERATIONS = (
    "excitatory_update",
    "inhibitory_update",
    "input_update",
    "input_spike",
    "slot_draw",
    "input_synaptic_event",
    "lateral_synaptic_event",
    "stdp_depression",
    "stdp_potentiation",
    "excitatory_spike",
    "inhibitory_spike",
    "normalisation_synapse",
    "normalisation_neuron",
)


@dataclass
class OperationCounts:
    """Operations per sample of one phase of one network.

    Attributes
    ----------
    variant : str
    n_neurons : int
    phase : {'train', 'inference'}
    per_sample : dict of str to float
        Operation name (`OPERATIONS`) → count per sample.
    source : str
        Where the counts come from ('spike counts of a run', 'activity rates').
    totals : dict
        The run figures the counts were derived from (samples, slots, spikes).
    """

    variant: str
    n_neurons: int
    phase: str
    per_sample: dict
    source: str
    totals: dict = field(default_factory=dict)

    def __repr__(self):
        events = self.per_sample["input_synaptic_event"] + self.per_sample["lateral_synaptic_event"]
        return (
            f"OperationCounts({self.variant!r}, N={self.n_neurons}, {self.phase}, from "
            f"{self.source}: {events:.4g} synaptic events, "
            f"{self.per_sample['stdp_depression'] + self.per_sample['stdp_potentiation']:.4g} "
            "STDP updates per sample)"
        )


def _check_phase(phase):
    if phase not in PHASES:
        raise ValueError(f"phase {phase!r} is unknown; choose one of {', '.join(PHASES)}")


def steps_per_slot(parameters):
    """Time steps in one presentation slot (presentation + rest)."""
    inputs = parameters.inputs
    return int(round((inputs.presentation_ms + inputs.rest_ms) / inputs.dt_ms))


def operation_counts(parameters, phase, n_samples, slots, input_spikes, excitatory_spikes,
                     inhibitory_spikes=0, source="spike counts of a run"):
    """Operations per sample from the totals of a stream.

    Parameters
    ----------
    parameters : NetworkParameters
    phase : {'train', 'inference'}
    n_samples : int
        Samples in the stream.
    slots : float
        Presentation slots simulated (≥ n_samples: re-presentations).
    input_spikes, excitatory_spikes, inhibitory_spikes : float
        Spike totals of the stream (all slots, rest periods included).
    source : str
        Description stored with the counts.

    Returns
    -------
    OperationCounts
        Neuron updates count ``slots × steps_per_slot`` time steps (the steps
        a run simulates; ``tests/test_energy.py`` checks it).
    """
    _check_phase(phase)
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples!r}")
    p = parameters
    n, n_inputs = p.n_neurons, p.n_inputs
    steps = slots * steps_per_slot(p)
    training = phase == "train"
    inhibitory = p.has_inhibitory_layer
    if inhibitory:
        lateral = excitatory_spikes * 1 + inhibitory_spikes * (n - 1)
    else:
        lateral = excitatory_spikes * (n - 1)
    totals = {
        "excitatory_update": n * steps,
        "inhibitory_update": n * steps if inhibitory else 0,
        "input_update": n_inputs * steps,
        "input_spike": input_spikes,
        "slot_draw": n_inputs * slots,
        "input_synaptic_event": input_spikes * n,
        "lateral_synaptic_event": lateral,
        "stdp_depression": input_spikes * n if training and uses_pre_spike_depression(p) else 0,
        "stdp_potentiation": excitatory_spikes * n_inputs if training else 0,
        "excitatory_spike": excitatory_spikes,
        "inhibitory_spike": inhibitory_spikes if inhibitory else 0,
        "normalisation_synapse": n_inputs * n * slots if training else 0,
        "normalisation_neuron": n * slots if training else 0,
    }
    per_sample = {name: float(totals[name]) / n_samples for name in OPERATIONS}
    return OperationCounts(
        p.variant, n, phase, per_sample, source,
        totals={"samples": n_samples, "slots": slots, "input_spikes": input_spikes,
                "excitatory_spikes": excitatory_spikes, "inhibitory_spikes": inhibitory_spikes},
    )


def operation_counts_from_result(parameters, result, phase):
    """Operations per sample from an engine `StreamResult` (its spike totals)."""
    return operation_counts(
        parameters, phase,
        n_samples=len(result.presentations),
        slots=result.slots,
        input_spikes=result.input_spikes_total,
        excitatory_spikes=result.spikes_total,
        inhibitory_spikes=result.inhibitory_spikes_total,
    )


@dataclass(frozen=True)
class ActivityRates:
    """Spiking activity assumed for a network that has not been simulated.

    Attributes
    ----------
    input_spikes_per_slot : float
        Input spikes per presentation slot (embedded MNIST at the start
        intensity: about 2,300).
    excitatory_spikes_per_slot : float
        Excitatory spikes per slot (whole layer, rest included).
    inhibitory_spikes_per_excitatory_spike : float
        Inhibitory spikes per excitatory spike (Diehl & Cook's layer).
    slots_per_sample : float
        Presentation slots per sample (1 + intensity boosts).
    source : str
    """

    input_spikes_per_slot: float
    excitatory_spikes_per_slot: float
    inhibitory_spikes_per_excitatory_spike: float
    slots_per_sample: float
    source: str = "assumed"

    @classmethod
    def from_result(cls, result, source="measured run"):
        """Rates of a measured `StreamResult`."""
        slots = max(result.slots, 1)
        return cls(
            input_spikes_per_slot=result.input_spikes_total / slots,
            excitatory_spikes_per_slot=result.spikes_total / slots,
            inhibitory_spikes_per_excitatory_spike=(
                result.inhibitory_spikes_total / result.spikes_total if result.spikes_total
                else 0.0),
            slots_per_sample=result.slots / max(len(result.presentations), 1),
            source=source,
        )


_CALIBRATION = ("measured at N = 400, the shipped tuned networks, 1,000 full-MNIST training "
                "and 500 test digits, seed 0 (docs/results.md, section 3)")

#: Rates per (variant, phase), calibrated on the shipped tuned N = 400
#: networks (``protocols/tuned/``) by ``benchmarks/energy_comparison.py
#: --neurons 400 --train-samples 1000 --test-samples 500`` on full MNIST
#: (``docs/results.md``, section 3). The excitatory activity is taken as
#: independent of N (at N = 100 and 1600 it differs by up to 25 %:
#: ``docs/performance.md``).
DEFAULT_RATES = {
    ("diehl-cook", "train"): ActivityRates(2266.3, 43.44, 1.0, 1.008, _CALIBRATION),
    ("diehl-cook", "inference"): ActivityRates(2340.2, 45.06, 1.0, 1.006, _CALIBRATION),
    ("asp", "train"): ActivityRates(2263.5, 33.02, 1.0, 1.01, _CALIBRATION),
    ("asp", "inference"): ActivityRates(2344.2, 32.31, 1.0, 1.002, _CALIBRATION),
    ("spikedyn", "train"): ActivityRates(2276.4, 184.75, 0.0, 1.0, _CALIBRATION),
    ("spikedyn", "inference"): ActivityRates(2346.4, 202.49, 0.0, 1.0, _CALIBRATION),
}


def default_rates(variant, phase):
    """The calibrated `ActivityRates` of a variant and phase."""
    _check_phase(phase)
    key = (variant, phase)
    if key not in DEFAULT_RATES:
        raise ValueError(f"no default activity rates for variant {variant!r}")
    return DEFAULT_RATES[key]


def estimate_operation_counts(parameters, phase, rates=None):
    """Operations per sample of a network not yet simulated, from activity rates.

    Parameters
    ----------
    parameters : NetworkParameters
    phase : {'train', 'inference'}
    rates : ActivityRates, optional
        Default: `DEFAULT_RATES` of the variant and phase.
    """
    rates = rates or default_rates(parameters.variant, phase)
    slots = rates.slots_per_sample
    excitatory = rates.excitatory_spikes_per_slot * slots
    return operation_counts(
        parameters, phase, n_samples=1, slots=slots,
        input_spikes=rates.input_spikes_per_slot * slots,
        excitatory_spikes=excitatory,
        inhibitory_spikes=(excitatory * rates.inhibitory_spikes_per_excitatory_spike
                           if parameters.has_inhibitory_layer else 0.0),
        source=f"activity rates ({rates.source})",
    )


@dataclass
class EnergyEstimate:
    """Analytical energy per sample of one phase.

    Attributes
    ----------
    counts : OperationCounts
    table : EnergyTable
    weight_bits : int
    joules_by_operation : dict of str to float
    primitives : dict of str to float
        Primitive operations per sample (``memory_read`` etc. in 32-bit words).
    """

    counts: OperationCounts
    table: EnergyTable
    weight_bits: int
    joules_by_operation: dict
    primitives: dict

    @property
    def joules(self):
        """Total energy per sample, in joules."""
        return float(sum(self.joules_by_operation.values()))

    def to_dataset(self):
        """The breakdown as an xarray Dataset over dim ``operation``."""
        operations = list(OPERATIONS)
        return xarray.Dataset(
            {
                "operations_per_sample": (
                    ("operation",), [self.counts.per_sample[o] for o in operations],
                    {"long_name": "operations per sample", "units": "1"}),
                "energy_joules_per_sample": (
                    ("operation",), [self.joules_by_operation[o] for o in operations],
                    {"long_name": "energy per sample", "units": "J"}),
                "primitives_per_sample": (
                    ("primitive",), [self.primitives[p] for p in PRIMITIVES],
                    {"long_name": "primitive operations per sample (memory: 32-bit words)",
                     "units": "1"}),
            },
            coords={"operation": operations, "primitive": list(PRIMITIVES)},
            attrs={"variant": self.counts.variant, "n_neurons": self.counts.n_neurons,
                   "phase": self.counts.phase, "weight_bits": self.weight_bits,
                   "counts_source": self.counts.source, "energy_table": self.table.name,
                   "energy_table_source": self.table.source},
        )

    def __repr__(self):
        return (
            f"EnergyEstimate({self.counts.variant!r}, N={self.counts.n_neurons}, "
            f"{self.counts.phase}, {self.weight_bits}-bit weights: "
            f"{self.joules * 1e6:.3f} µJ per sample)"
        )


def energy_per_sample(parameters, counts, table=HOROWITZ_45NM, weight_bits=32):
    """Energy per sample: counts × primitive costs × energy table.

    Parameters
    ----------
    parameters : NetworkParameters
    counts : OperationCounts
    table : EnergyTable
    weight_bits : int

    Returns
    -------
    EnergyEstimate
    """
    costs = operation_costs(parameters, weight_bits)
    joules = {name: counts.per_sample[name] * costs[name].picojoules(table) * 1e-12
              for name in OPERATIONS}
    primitives = {prim: float(sum(counts.per_sample[name] * getattr(costs[name], prim)
                                  for name in OPERATIONS)) for prim in PRIMITIVES}
    return EnergyEstimate(counts, table, int(weight_bits), joules, primitives)


def analytical_profile(parameters, weight_bits=32, table=HOROWITZ_45NM, rates=None,
                       state_bits=32):
    """Memory and energy of a network before simulating it.

    Parameters
    ----------
    parameters : NetworkParameters
    weight_bits, state_bits : int
    table : EnergyTable
    rates : dict, optional
        Phase → `ActivityRates` (default: `DEFAULT_RATES`).

    Returns
    -------
    tuple (MemoryFootprint, EnergyEstimate, EnergyEstimate)
        Memory, training energy and inference energy per sample.
    """
    from spikedyn_brian.analysis.memory import memory_footprint

    rates = rates or {}
    memory = memory_footprint(parameters, weight_bits=weight_bits, state_bits=state_bits)
    train, inference = (
        energy_per_sample(parameters,
                          estimate_operation_counts(parameters, phase, rates.get(phase)),
                          table, weight_bits)
        for phase in PHASES)
    return memory, train, inference


def percent_change(new, reference):
    """``100 (new - reference) / reference`` (negative: a saving)."""
    return 100.0 * (np.asarray(new) - np.asarray(reference)) / np.asarray(reference)


__all__ += ["OPERATIONS", "default_rates", "steps_per_slot", "percent_change"]

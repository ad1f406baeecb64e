"""How a device expresses the models: formulations (pure descriptions, no devices).

The same network is written slightly differently for some devices
(``docs/models.md``, section Devices); a `Formulation` says which way, and the
model functions of :mod:`spikedyn_brian.models.equations` return complete
descriptions for it. Each engine backend (:mod:`spikedyn_brian.devices`)
names its formulation; the network builder never asks which device it is on.
"""

from dataclasses import dataclass, replace

__all__ = ["Formulation", "STANDARD", "GENN", "CUDA", "END_OF_STREAM_MODES"]

#: How a stream ends: ``'stop'`` ends the run through the ``stop_at``
#: function (runtime, C++ standalone); ``'idle'`` keeps the run going for its
#: fixed duration with the inputs silent (devices without a stop function).
END_OF_STREAM_MODES = ("stop", "idle")


@dataclass(frozen=True)
class Formulation:
    """How the models are written for one device.

    Attributes
    ----------
    end_of_stream : {'stop', 'idle'}
        ``'stop'``: the controller ends the run when the stream is done;
        ``'idle'``: the run has a fixed duration and the controller idles.
    linked_variables : bool
        Groups read the controller through linked variables (True), or hold
        plain copies set once per slot by broadcast synapses (False: GeNN).
    synaptic_traces : bool
        The STDP traces, learning flag and rate factor are per-synapse,
        event-driven variables (GeNN, whose ``on_post`` cannot read
        postsynaptic variables; and any device with input delays, where the
        original reads the trace of the spikes that have arrived).
    single_clock : bool
        Every group runs on Brian2's default clock (GeNN).
    slot_operation_suffix : str
        Suffix of the per-slot ``run_regularly`` names (brian2genn only keeps
        the code of operations whose name ends in ``_run_regularly``).
    atomic_column_sums : bool
        The synapses' per-slot code runs in parallel and needs atomic column
        sums (CUDA).
    progress_reports : bool
        The controller prints the sample it is at (at most once per second of
        wall-clock time) for the engine's progress bar; where its code runs on
        the host (not on a GPU).
    """

    end_of_stream: str = "stop"
    linked_variables: bool = True
    synaptic_traces: bool = False
    single_clock: bool = False
    slot_operation_suffix: str = ""
    atomic_column_sums: bool = False
    progress_reports: bool = True

    def __post_init__(self):
        if self.end_of_stream not in END_OF_STREAM_MODES:
            raise ValueError(
                f"end_of_stream must be one of {', '.join(END_OF_STREAM_MODES)}, "
                f"got {self.end_of_stream!r}"
            )

    def for_network(self, network):
        """This formulation as ``network`` needs it: input delays need synaptic traces."""
        if network.plasticity.max_input_delay_ms > 0 and not self.synaptic_traces:
            return replace(self, synaptic_traces=True)
        return self


#: Runtime and C++ standalone devices.
STANDARD = Formulation()
#: brian2genn: no linked variables, one clock, traces on the synapses, a fixed duration.
GENN = Formulation(end_of_stream="idle", linked_variables=False, synaptic_traces=True,
                   single_clock=True, slot_operation_suffix="_run_regularly",
                   progress_reports=False)
#: brian2cuda: a fixed duration (no stop function), atomic column sums.
CUDA = Formulation(end_of_stream="idle", atomic_column_sums=True, progress_reports=False)

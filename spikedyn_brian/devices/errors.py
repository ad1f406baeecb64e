"""The devices' error."""

__all__ = ["DeviceError"]


class DeviceError(RuntimeError):
    """A device is missing, or cannot express part of a model."""


#: Why compiled runs refuse more than one OpenMP thread (`Engine`, config check).
MULTITHREADING_REFUSAL = (
    "more than one OpenMP thread changes the network's dynamics (measured: Diehl & Cook "
    "N = 100 answered a digit with 26.8 instead of 21.5 excitatory spikes, SpikeDyn with "
    "42.2 instead of 22.9, on cpp_standalone and cpp_dense alike: updates of the "
    "inhibition are lost in Brian2's multi-threaded synaptic code), and on 2 cores it was "
    "not faster; use 0 (no OpenMP) or 1"
)

"""The devices' error."""

__all__ = ["DeviceError"]


class DeviceError(RuntimeError):
    """A device is missing, or cannot express part of a model."""

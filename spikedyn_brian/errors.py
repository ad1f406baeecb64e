"""The user's errors and how a message shows a value (light: the standard library only).

`ConfigError` is what every check of a configuration, a command-line value or
a file raises: the command line prints it as one line (exit status 2).
"""

import sys

__all__ = ["ConfigError", "show", "show_path"]


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def show(value, limit=60):
    """``repr`` of a value for a message, shortened (an int may have thousands of digits)."""
    try:
        text = repr(value)
    except ValueError:  # int too large to print
        text = f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= limit else text[:limit - 20] + "…" + text[-10:]


def show_path(text):
    """`show` for a path: longer before it is shortened."""
    return show(text, limit=300)

"""What a run shows while it works: a line that moves during a long step.

Progress bars of the streams are tqdm's (`spikedyn_brian.phases.PhaseRunner`);
a build has no digits to count, so `Ticker` shows the seconds it has taken and
what the build says of itself (e.g. the sources compiled so far) on one line
that it rewrites, where the output is a terminal. Elsewhere (a log file) the
line is written once.
"""

import shutil
import sys
import threading
import time

__all__ = ["Ticker"]


class Ticker:
    """``message`` with the seconds so far (and ``status()``), rewritten in place.

    A context manager: the line is shown while the ``with`` block runs and
    left as ``message ...`` afterwards (also after an error).

    Parameters
    ----------
    message : str
    status : callable, optional
        Returns a few words on how far the step is ('' for none).
    stream : file, optional
        Default ``sys.stderr``.
    period : float
        Seconds between two rewrites.
    """

    def __init__(self, message, status=None, stream=None, period=0.5):
        self.message = message
        self.status = status
        self.stream = stream or sys.stderr
        self.period = period
        self._stop = threading.Event()
        self._thread = None
        self._width = 0

    def _interactive(self):
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def __enter__(self):
        self._start = time.monotonic()
        if not self._interactive():
            print(f"{self.message} ...", file=self.stream, flush=True)
            return self
        self._write(self.line(self._columns()))
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()
        return self

    def line(self, width=None):
        """The moving line: message, seconds so far, status; the message shortened to fit
        ``width`` columns (a line that wraps cannot be rewritten in place)."""
        try:
            status = self.status() if self.status else ""
        except Exception:  # noqa: BLE001 - a status is never worth a failed build
            status = ""
        moving = f": {time.monotonic() - self._start:.0f} s" + (f", {status}" if status else "")
        message = self.message
        if width is not None and len(message) + len(moving) >= width:
            room = max(width - 1 - len(moving), 1)
            message = message[:room - 1] + "…"
        return message + moving

    def _columns(self):
        return shutil.get_terminal_size(fallback=(100, 24)).columns

    def _write(self, text):
        text = text[:max(self._columns() - 1, 1)]
        padding = " " * max(min(self._width, self._columns() - 1) - len(text), 0)
        self._width = len(text)
        self.stream.write(f"\r{text}{padding}")
        self.stream.flush()

    def _tick(self):
        while not self._stop.wait(self.period):
            self._write(self.line(self._columns()))

    def __exit__(self, *exc_info):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._write(f"{self.message} ...")
        self.stream.write("\n")
        self.stream.flush()

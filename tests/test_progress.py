"""What a run shows while it works: the moving build line, one progress bar per task."""

import io
import os
import time

import numpy as np
import pytest

from spikedyn_brian.models.parameters import network_parameters
from spikedyn_brian.phases import PhaseRunner
from spikedyn_brian.progress import Ticker
from spikedyn_brian.state import LearnedState, StreamResult, expected_state_shapes


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_build_line_moves_with_the_seconds_and_the_status():
    stream = Terminal()
    with Ticker("compiling the build", status=lambda: "make: 3 of 7 sources",
                stream=stream, period=0.01) as ticker:
        assert ticker.line().startswith("compiling the build: 0 s")
        time.sleep(0.1)
    text = stream.getvalue()
    assert text.count("\r") >= 3  # rewritten in place, more than once
    assert "compiling the build: 0 s, make: 3 of 7 sources" in text
    # Afterwards the line says what was done, as where the output is a log file.
    assert text.endswith("\n") and text.split("\r")[-1].rstrip() == "compiling the build ..."


def test_the_build_line_is_written_once_where_the_output_is_not_a_terminal():
    stream = io.StringIO()
    with Ticker("compiling the build", status=lambda: "1 of 2", stream=stream, period=0.01):
        pass
    assert stream.getvalue() == "compiling the build ...\n"


def test_a_failing_status_never_fails_the_build():
    def broken():
        raise OSError("gone")

    stream = Terminal()
    with Ticker("compiling", status=broken, stream=stream, period=0.01) as ticker:
        assert ticker.line() == "compiling: 0 s"


def test_the_build_status_counts_the_sources_make_compiled(tmp_path):
    from spikedyn_brian.engine import Engine

    engine = Engine(network_parameters("diehl-cook", 3), "cpp_standalone", build_root=tmp_path,
                    build=False)
    assert engine.build_status() == ""  # nothing under way
    directory = tmp_path / "build"
    (directory / "code_objects").mkdir(parents=True)
    for name in ("main.cpp", "code_objects/a.cpp", "code_objects/b.cpp"):
        (directory / name).write_text("")
    log = directory / "make.log"
    log.write_text("g++ -c -O3 main.cpp -o main.o\n")  # an earlier build's log
    os.utime(log, (1, 1))
    engine.backend.build_directory = directory
    engine.backend.build_started = time.time()
    assert engine.build_status() == ""  # make has not started
    log.write_text("g++ -c -O3 main.cpp -o main.o\n"
                   "g++ -c -O3 code_objects/a.cpp -o code_objects/a.o\n")
    assert engine.build_status() == "make: 2 of 3 sources"


class CountingEngine:
    """What a PhaseRunner needs of an engine, without Brian2; the bar moves by chunk."""

    def __init__(self, parameters):
        self.parameters = parameters

    def run_stream(self, images, state, plastic, seed, on_chunk=None, progress=None,
                   stream_offset=0):
        n, neurons = len(images), self.parameters.n_neurons
        part = StreamResult(np.ones((n, neurons), np.int64), np.ones(n, np.int64),
                            np.full(n, 2.0), state.copy(), 0.1, n, n * neurons)
        if progress is not None:
            progress.update(n)
        if on_chunk is not None:
            on_chunk(stream_offset, part)
        return part


class Bars:
    """Replaces tqdm: records every bar, its total, descriptions and updates."""

    made = []

    def __init__(self, total, initial=0, desc="", unit=""):
        self.total, self.n, self.descriptions, self.closed = total, initial, [desc], False
        Bars.made.append(self)

    def update(self, n):
        self.n += n

    def set_description(self, text, refresh=True):
        self.descriptions.append(text)

    def close(self):
        self.closed = True


@pytest.fixture
def bars(monkeypatch):
    import tqdm.auto

    Bars.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", Bars)
    return Bars.made


def _state(parameters):
    return LearnedState.from_arrays({name: np.full(shape, 0.1) for name, shape in
                                     expected_state_shapes(parameters).items()})


def test_a_tasks_train_label_and_test_share_one_progress_bar(bars):
    from spikedyn_brian.protocols import evaluation
    from spikedyn_brian.data import DigitSet
    from spikedyn_brian.seeds import RunSeeds

    parameters = network_parameters("diehl-cook", 4)
    phases = PhaseRunner(CountingEngine(parameters), None, progress=True)
    images = np.zeros((6, 784), np.uint8)
    labelled = DigitSet(np.zeros((4, 784), np.uint8), np.arange(4) % 2, "test")
    tested = DigitSet(np.zeros((3, 784), np.uint8), np.arange(3) % 2, "test")
    for task in range(2):
        with phases.one_bar(6 + 4 + 3, f"task {task + 1}/2"):
            result = evaluation.train(phases, f"train{task}", images, _state(parameters),
                                      RunSeeds(0), description=f"task {task + 1}/2: train")
            evaluation.label_and_test(phases, str(task), result.state, labelled, tested,
                                      RunSeeds(0), description=f"task {task + 1}/2")
    assert len(bars) == 2  # one per task, not three
    for task, bar in enumerate(bars):
        assert bar.total == bar.n == 13 and bar.closed
        assert bar.descriptions == [f"task {task + 1}/2", f"task {task + 1}/2: train",
                                    f"task {task + 1}/2: label", f"task {task + 1}/2: test"]


def test_a_phase_outside_a_task_has_its_own_bar(bars):
    parameters = network_parameters("diehl-cook", 4)
    phases = PhaseRunner(CountingEngine(parameters), None, progress=True)
    phases.run("train0", np.zeros((5, 784)), _state(parameters), True, 1, "train")
    assert [(bar.total, bar.n, bar.closed) for bar in bars] == [(5, 5, True)]
    quiet = PhaseRunner(CountingEngine(parameters), None, progress=False)
    with quiet.one_bar(5, "task"):
        quiet.run("train0", np.zeros((5, 784)), _state(parameters), True, 1, "train")
    assert len(bars) == 1


def test_the_build_line_fits_the_terminal(monkeypatch):
    """A line that wraps cannot be rewritten in place: the message gives way, the
    seconds and the status stay."""
    import shutil

    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None: os.terminal_size(
        (40, 24)))
    stream = Terminal()
    with Ticker("compiling the cpp_dense build of diehl-cook (N = 400)",
                status=lambda: "make: 3 of 7 sources", stream=stream, period=0.01):
        time.sleep(0.05)
    states = [state.rstrip() for state in stream.getvalue().split("\r") if state.strip()]
    assert states and all(len(state) < 40 for state in states)
    assert states[0].endswith(": 0 s, make: 3 of 7 sources") and "…" in states[0]

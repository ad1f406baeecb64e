"""Dask helpers: Brian2 imported inside a task thread."""

import subprocess
import sys
import textwrap

import pytest

_IN_A_THREAD = textwrap.dedent(
    """
    import threading
    outcome = []

    def task():
        try:
            {body}
            outcome.append(brian2.__version__)
        except Exception as error:
            outcome.append(f"{{type(error).__name__}}: {{error}}")

    thread = threading.Thread(target=task)
    thread.start()
    thread.join()
    print(outcome[0])
    """
)


def _first_import_in_a_thread(body):
    code = _IN_A_THREAD.format(body=body)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=300, check=True)
    return completed.stdout.strip().splitlines()[-1]


def test_brian2_cannot_be_imported_first_in_a_thread():
    """The failure a Dask task meets without the helper (Brian2 sets a SIGINT handler)."""
    assert "signal only works in main thread" in _first_import_in_a_thread("import brian2")


def test_import_brian2_in_worker_works_in_a_thread():
    body = ("from spikedyn_brian.cluster import import_brian2_in_worker; "
            "brian2 = import_brian2_in_worker()")
    import brian2

    assert _first_import_in_a_thread(body) == brian2.__version__


@pytest.mark.cluster
def test_a_task_whose_worker_dies_is_retried_elsewhere(tmp_path):
    """A worker process that dies loses only its task; Dask runs it again."""
    from spikedyn_brian.cluster import dask_client

    marker = tmp_path / "died-once"

    def dies_once(path):
        import os
        from pathlib import Path

        if not Path(path).exists():
            Path(path).write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-task
        return os.getpid()

    client, cluster = dask_client(workers=2)
    try:
        survivor = client.submit(lambda: 42, pure=False)
        future = client.submit(dies_once, str(marker), pure=False, retries=2)
        pid = future.result(timeout=120)
        assert survivor.result() == 42
    finally:
        client.close()
        cluster.close()
    assert marker.exists()
    assert pid != int(marker.read_text())  # ran again in another process

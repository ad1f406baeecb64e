"""Dask scale-out shared by the protocols that run independent tasks.

A LocalCluster with one single-threaded worker process per core by default,
or an existing scheduler given by its address. Tasks import Brian2 through
`import_brian2_in_worker`: Brian2 installs a SIGINT handler when it is first
imported, which Python only allows in the main thread, while a Dask task runs
in a worker thread.
"""

import os
import signal
import threading

__all__ = ["dask_client", "local_cluster", "import_brian2_in_worker"]


def dask_client(scheduler=None, workers=0):
    """Connect to ``scheduler`` or start a LocalCluster; return ``(client, cluster)``.

    Parameters
    ----------
    scheduler : str or None
        Address of an existing scheduler (``tcp://host:8786``); None or an
        empty string starts a LocalCluster.
    workers : int
        Worker processes of the LocalCluster (0: one per core).

    Returns
    -------
    client : dask.distributed.Client
    cluster : dask.distributed.LocalCluster or None
        The cluster to close afterwards (None with an external scheduler).
    """
    from dask.distributed import Client

    if scheduler:
        return Client(scheduler), None
    cluster = local_cluster(workers)
    return Client(cluster), cluster


def local_cluster(workers=0):
    """A LocalCluster of ``workers`` single-threaded worker processes (0: one per core).

    The one place a cluster is started (the tests watch it: a test that
    starts one carries the marker ``cluster``).
    """
    from dask.distributed import LocalCluster

    workers = workers or os.cpu_count() or 1
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None)


def import_brian2_in_worker():
    """Import Brian2 from any thread (a Dask task's) and return the module.

    Outside the main thread Brian2's SIGINT handler (which only makes Ctrl-C
    stop a run cleanly) cannot be installed; it is skipped there.
    """
    if threading.current_thread() is threading.main_thread():
        import brian2

        return brian2
    original = signal.signal
    signal.signal = lambda signalnum, handler: signal.getsignal(signalnum)
    try:
        import brian2
    finally:
        signal.signal = original
    return brian2

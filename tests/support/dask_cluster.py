"""The Dask cluster the engine's tests run on: a real `distributed.LocalCluster` of 2 worker processes
(1 thread, 1 GiB each) over TCP on 127.0.0.1, never the synchronous scheduler."""

from contextlib import contextmanager


@contextmanager
def local_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit="1GiB") as running:
        yield running

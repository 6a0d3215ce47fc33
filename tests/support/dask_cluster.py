"""The Dask cluster the engine's tests run on: a real `distributed.LocalCluster` of 2 worker processes
(1 thread, 1 GiB each) over TCP on 127.0.0.1, never the synchronous scheduler."""

from contextlib import contextmanager


@contextmanager
def local_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit="1GiB") as running:
        yield running


@contextmanager
def engine_record(cluster):
    """The dask engine of a stack file for `cluster`, as steps receive it (a dict); disconnected after."""
    from keel.engine.cluster import disconnect
    from keel.engine.spec import DaskEngine

    engine = DaskEngine(kind="dask", scheduler_address=cluster.scheduler_address, connect_timeout_seconds=5)
    yield engine.model_dump(mode="json")
    disconnect(engine)

"""The cluster layout recorded with a Dask-trained model is asked of the scheduler itself: every
worker of a running cluster, and a clear error (not a crash) for a cluster without workers."""

import pytest

from keel.engine.cluster import EngineUnavailableError, layout, ordered_workers
from keel.engine.spec import DaskEngine


def _cluster(workers):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    return cluster, Client(cluster, set_as_default=False)


def test_the_layout_names_every_worker_and_an_empty_cluster_is_a_clear_error():
    engine = DaskEngine(kind="dask", scheduler_address="tcp://unused:1")
    cluster, client = _cluster(2)
    try:
        for _ in range(20):  # the client's own periodic refresh must not hide the workers
            recorded = layout(client, engine, partitions=8)
            assert recorded["workers"] == 2 and recorded["threads_per_worker"] == 1
        assert len(ordered_workers(client)) == 2
    finally:
        client.close()
        cluster.close()
    cluster, client = _cluster(0)
    try:
        with pytest.raises(EngineUnavailableError, match="no workers"):
            layout(client, engine, partitions=8)
    finally:
        client.close()
        cluster.close()


def test_a_scheduler_without_workers_is_refused_before_any_work_not_waited_on_for_ever():
    """helper-62: `train` on a stack whose scheduler had no workers passed the reachability check and sat
    in its first step until killed."""
    import time

    from keel.engine.cluster import check_reachable, disconnect

    cluster, client = _cluster(0)
    engine = DaskEngine(kind="dask", scheduler_address=cluster.scheduler_address, connect_timeout_seconds=1)
    patient = engine.model_copy(update={"connect_timeout_seconds": 60})
    try:
        started = time.monotonic()
        with pytest.raises(EngineUnavailableError) as refused:
            check_reachable(engine)
        assert time.monotonic() - started < 10
        assert str(refused.value) == (
            f"engine: the Dask scheduler at {cluster.scheduler_address} has no workers (none joined within 1 s): "
            f"start workers for it (dask worker {cluster.scheduler_address}) or choose a stack with the local "
            "engine; nothing was run.")
        cluster.scale(1)
        check_reachable(patient)  # a worker joins: reachable
    finally:
        disconnect(engine)
        disconnect(patient)
        client.close()
        cluster.close()

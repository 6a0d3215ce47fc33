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

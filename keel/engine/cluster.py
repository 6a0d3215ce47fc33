"""Connect to the engine's Dask cluster: an existing scheduler, or a local cluster of worker processes
started for this process and shared by its steps (the local orchestrator runs them all here).

An unreachable scheduler is one message (`EngineUnavailableError`) after `connect_timeout_seconds`,
raised before any work is submitted.
"""

from __future__ import annotations

import atexit
import threading
from typing import Dict, TypedDict

from keel.engine.spec import DaskEngine

_clients: Dict[str, object] = {}
_lock = threading.Lock()

# Arrow's default pool (mimalloc) kept about 2 MiB per Parquet row group a worker read, so a worker's
# memory grew with the total rows; the system allocator keeps it flat (benchmarks/RESULTS.md, issue
# 17). Arrow reads it once, when the process starts: only a worker's environment can set it.
WORKER_ENVIRONMENT = {"ARROW_DEFAULT_MEMORY_POOL": "system"}


class EngineUnavailableError(RuntimeError):
    """The stack's Dask cluster cannot be used; nothing was run."""


class ClusterLayout(TypedDict):
    """What a model's provenance records about the cluster that made it."""

    engine: str
    workers: int
    threads_per_worker: int
    partitions: int
    partition_placement: str


def _unavailable(engine: DaskEngine, error: BaseException) -> EngineUnavailableError:
    reason = " ".join(str(error).split()) or type(error).__name__
    return EngineUnavailableError(
        f"engine: no Dask scheduler answers at {engine.scheduler_address} within "
        f"{engine.connect_timeout_seconds:g} s ({reason}). Start the cluster, fix engine.scheduler_address "
        f"in the stack file, or choose a stack with the local engine; no work was sent to it.")


def connect(engine: DaskEngine):
    """A `distributed.Client` for the engine, reused within this process."""
    key = engine.model_dump_json()
    with _lock:
        client = _clients.get(key)
        if client is not None and client.status == "running":
            return client
        client = _start(engine)
        _clients[key] = client
        return client


def _start(engine: DaskEngine):
    from distributed import Client, LocalCluster

    timeout = f"{engine.connect_timeout_seconds}s"
    if engine.scheduler_address:
        try:
            return Client(engine.scheduler_address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise _unavailable(engine, error) from None
    spec = engine.local_cluster
    cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=spec.threads_per_worker,
                           memory_limit=spec.memory_limit, processes=True, host="127.0.0.1",
                           dashboard_address=None, env=WORKER_ENVIRONMENT)
    return Client(cluster, set_as_default=False)


def check_reachable(engine: DaskEngine) -> None:
    """Before any work: an existing scheduler must answer, and have a worker, within the timeout (a
    local cluster is started by the first step that needs it). A scheduler without workers accepts
    work and never runs it: the first step waited for ever."""
    if engine.scheduler_address:
        client = connect(engine)
        try:
            client.wait_for_workers(1, timeout=engine.connect_timeout_seconds)
        except (TimeoutError, OSError):
            raise EngineUnavailableError(
                f"engine: the Dask scheduler at {engine.scheduler_address} has no workers (none joined within "
                f"{engine.connect_timeout_seconds:g} s): start workers for it (dask worker "
                f"{engine.scheduler_address}) or choose a stack with the local engine; nothing was run.") from None


def disconnect(engine: DaskEngine) -> None:
    """Close this process's client of the engine (and the local cluster it started, if any)."""
    with _lock:
        client = _clients.pop(engine.model_dump_json(), None)
    if client is not None:
        _close(client)


def _close(client) -> None:
    cluster = getattr(client, "cluster", None)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    except Exception:  # closing: a cluster already gone is fine
        pass


@atexit.register
def _close_all() -> None:
    for client in list(_clients.values()):
        _close(client)
    _clients.clear()


def _workers(client) -> dict:
    """The scheduler's workers (address -> info), asked of the scheduler now. Not
    `client.scheduler_info()`: it returns the client's cached identity, which the client's own periodic
    refresh (asking for no workers) can overwrite between the fetch and the return, an empty "workers"
    seen here once in a CI run. None at all: a clear error, not a layout of zero workers."""
    workers = client.sync(client.scheduler.identity, n_workers=-1)["workers"]
    if not workers:
        raise EngineUnavailableError("engine: the Dask scheduler has no workers; nothing was recorded")
    return workers


def ordered_workers(client) -> list:
    """The workers' addresses in a fixed order (so that placement depends on the layout only)."""
    return sorted(_workers(client))


def layout(client, engine: DaskEngine, partitions: int) -> ClusterLayout:
    info = _workers(client)
    threads = sorted({worker["nthreads"] for worker in info.values()})
    return ClusterLayout(engine=engine.describe(), workers=len(info),
                         threads_per_worker=threads[0] if len(threads) == 1 else max(threads),
                         partitions=partitions,
                         partition_placement="contiguous blocks of partitions per worker, workers by address")

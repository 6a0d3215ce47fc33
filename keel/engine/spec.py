"""The `engine` section of a stack file: where keel's data work runs.

The spec (the problem) never names an engine, so the same spec runs on either; the engine belongs
to the stack, like the orchestrator and the artifact store.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, model_validator

from keel.spec.base import StrictModel

MEMORY_LIMIT_PATTERN = r"^(auto|\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB))$"


# What the readiness report of a dask version judged: the training split's seeded sample, not all the data
# (its group sizes are the split's, about the training share of the data's).
READINESS_ROWS = "the training split, a seeded sample of at most engine.search_sample_rows rows (dask engine)"


class LocalEngine(StrictModel):
    """pandas in the process that runs the step (the default)."""

    kind: Literal["local"] = "local"


class LocalCluster(StrictModel):
    """A `distributed.LocalCluster` started for the command: worker processes on this machine."""

    workers: int = Field(default=2, ge=1, le=256)
    threads_per_worker: int = Field(default=1, ge=1, le=256)
    memory_limit: str = Field(default="4GiB", pattern=MEMORY_LIMIT_PATTERN,
                              description="per worker, e.g. 4GiB; a worker over it is restarted by Dask")


class DaskEngine(StrictModel):
    """A Dask cluster: an existing scheduler (`scheduler_address`, e.g. tcp://dask-scheduler:8786, a
    Kubernetes DaskCluster's service or a cloud service's address) or a `local_cluster` (not both)."""

    kind: Literal["dask"]
    scheduler_address: Optional[str] = Field(default=None, pattern=r"^(tcp|tls|ws|wss|inproc)://\S+$")
    local_cluster: Optional[LocalCluster] = None
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600,
                                           description="an unreachable scheduler fails after this, before any work")
    search_sample_rows: int = Field(default=200_000, ge=1_000,
                                    description="rows of the training split (seeded sample) the "
                                                "hyperparameter search runs on in memory; validation and "
                                                "the test sample for evaluation take the same bound")
    partition_rows: int = Field(default=1_000_000, ge=1_000,
                                description="rows per partition when a source is not partitioned Parquet")

    @model_validator(mode="after")
    def _one_cluster(self) -> "DaskEngine":
        if (self.scheduler_address is None) == (self.local_cluster is None):
            raise ValueError("a dask engine needs exactly one of scheduler_address (an existing cluster) "
                             "or local_cluster (workers started here)")
        return self

    def describe(self) -> str:
        if self.scheduler_address:
            return f"dask (scheduler {self.scheduler_address})"
        cluster = self.local_cluster
        return (f"dask (local cluster: {cluster.workers} worker(s) x {cluster.threads_per_worker} thread(s), "
                f"{cluster.memory_limit} each)")


EngineSpec = Union[LocalEngine, DaskEngine]
LOCAL = LocalEngine()


def engine_from_dict(value: Optional[dict]) -> EngineSpec:
    """An engine as a pipeline parameter or a stack label carries it (a plain dict; None is local)."""
    if not value or value.get("kind", "local") == "local":
        return LOCAL
    return DaskEngine.model_validate(value)


def describe_engine(engine: EngineSpec) -> str:
    return engine.describe() if isinstance(engine, DaskEngine) else "local (pandas in this process)"

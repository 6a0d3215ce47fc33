"""Which engine a command runs on: the active ZenML stack's, recorded by `stack apply` as the
stack's label `keel_engine` (a stack without one, e.g. ZenML's default, is local)."""

from __future__ import annotations

from keel.engine.spec import DaskEngine, EngineSpec, engine_from_dict

ENGINE_LABEL = "keel_engine"


def active_engine() -> EngineSpec:
    from zenml.client import Client

    labels = Client().active_stack_model.labels or {}
    return engine_from_dict(labels.get(ENGINE_LABEL))


def engine_parameter(engine: EngineSpec) -> dict:
    """The engine as the training pipeline's parameter (a plain dict; local is {} so that a local
    run's parameters stay as they were)."""
    return engine.model_dump(mode="json") if isinstance(engine, DaskEngine) else {}


def check_engine(engine: EngineSpec) -> None:
    """Before any work: a dask engine's scheduler must answer (keel.engine.cluster.EngineUnavailableError)."""
    if isinstance(engine, DaskEngine):
        from keel.engine.cluster import check_reachable

        check_reachable(engine)

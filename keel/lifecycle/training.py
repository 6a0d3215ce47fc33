"""Train one model version: run the training pipeline and return the version its own register step
created (never "the latest version", which a concurrent run may have made)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from keel.artifacts import Artifact
from keel.spec.models import Spec


@dataclass
class TrainingResult:
    """What `train_version` came to: the registered version with its recorded metadata and readiness
    report, or `error` (the failed step's message) and no version."""

    version: Optional[int]
    run_name: Optional[str] = None
    metadata: dict = field(default_factory=dict)
    readiness: Optional[dict] = None
    error: Optional[str] = None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else 1


def train_version(spec: Spec, no_cache: bool = False) -> TrainingResult:
    """Run the training pipeline; the version is `register_model_step`'s output of this run."""
    from keel.lifecycle.pipeline_runs import failed_step_message, run_pipeline
    from keel.data.sources import source_stamp
    from keel.provenance import collect_provenance
    from keel.registry import registered_metadata
    from keel.spec import spec_hash
    from keel.engine.cluster import EngineUnavailableError
    from keel.engine.selection import active_engine, check_engine, engine_parameter
    from pipelines.training import training_pipeline

    engine = active_engine()  # the active stack's (keel.engine): checked before any work
    try:
        check_engine(engine)
    except EngineUnavailableError as error:
        return TrainingResult(None, error=str(error))
    on_engine = {"engine": engine_parameter(engine)} if engine_parameter(engine) else {}
    outcome = run_pipeline(training_pipeline, no_cache=no_cache, spec=spec, spec_hash=spec_hash(spec),
                           source_stamp=source_stamp(spec.data), provenance=collect_provenance(), **on_engine)
    if outcome.error is not None:
        return TrainingResult(None, error=failed_step_message(outcome))
    steps = outcome.run.steps
    version = steps["register_model_step"].output.load()
    return TrainingResult(version, run_name=outcome.run.name,
                          metadata=registered_metadata(spec.problem.name, version),
                          readiness=steps["readiness_step"].outputs[Artifact.READINESS_REPORT][0].load())

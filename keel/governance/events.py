"""Small helpers the lifecycle's side effects call to record what they just did (one line each)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from keel import registration as keys
from keel.clock import utc_from_epoch
from keel.governance.audit import (DEPLOYMENT_STEP, ROLLBACK, ROUTING_CHANGED, STAGE_CHANGED, record_event)


def routing_event(table) -> str:
    if table.strategy == "rollback":  # champion-only after a breach or by hand; not when awaiting approval
        return ROUTING_CHANGED if table.step == "awaiting approval" else ROLLBACK
    return DEPLOYMENT_STEP if table.strategy not in ("before rollout", "promoted", "serve") else ROUTING_CHANGED


def routing_recorder(model: str, version: Optional[int], run_id: Optional[object], folder: Path,
                     actor: Optional[str] = None) -> Callable[[object], None]:
    """Called right after a routing table was written to `folder`: records the split and the file's
    write time (the moment the service started routing by it)."""

    def record(table) -> None:
        path = Path(folder) / "routing.json"
        effective = utc_from_epoch(path.stat().st_mtime_ns / 1e9).isoformat() if path.exists() else None
        record_event(routing_event(table), model, version, run_id, actor=actor,
                     details={"routing": table.to_dict(), "effective_at": effective, "folder": str(folder)})

    return record


def record_stage(model: str, version: int, stage: str, previous_stage_holder: Optional[int] = None) -> None:
    details = {"stage": stage}
    if previous_stage_holder is not None:
        details["replaced"] = previous_stage_holder
    record_event(STAGE_CHANGED, model, version, details=details)


def record_promotion(model: str, version: int, previous: Optional[int]) -> None:
    """`version` became production; the previous production version (if another) was archived."""
    if previous is not None and previous != version:
        record_stage(model, previous, "archived")
    record_stage(model, version, "production", previous if previous != version else None)


REGISTRATION_FACTS = (keys.MODEL_FAMILY, keys.MODEL_SHA256, keys.DATA_FINGERPRINT, keys.DATA_SOURCE, keys.SPEC_SHA256,
                      keys.SEED, keys.GIT_COMMIT, keys.GIT_DIRTY, keys.SOURCE_SHA256, keys.LOCK_SHA256, keys.RUN_NAME,
                      keys.VALIDATION_METRICS, keys.MITIGATED_FROM)


def record_registration_started(model: str, version: int, run_id, started_at: str) -> None:
    """The first thing written about a new version: with no `training_run_registered` record after it,
    the registration was interrupted (`audit verify` says so, and no command uses the version)."""
    from keel.governance.audit import REGISTRATION_STARTED

    record_event(REGISTRATION_STARTED, model, version, run_id, details={keys.STARTED_AT: started_at})


def record_registration(model: str, version: int, run_id, artifact_ids, metadata: dict) -> None:
    from keel.governance.audit import TRAINING_REGISTERED

    record_event(TRAINING_REGISTERED, model, version, run_id, artifact_ids,
                 {k: metadata.get(k) for k in REGISTRATION_FACTS})


def record_validation(model: str, run_id, passed: bool, summary: str, evidence=(),
                      reused_from_run: Optional[object] = None) -> None:
    """`evidence`: the validation report's artifact id when it is already stored. `reused_from_run`: the run
    whose validation a cached validate step reused (the outcome then applies to this run's data too)."""
    from keel.governance.audit import DATA_VALIDATED

    details = {"passed": bool(passed), "summary": summary[:4000]}
    if reused_from_run is not None:
        details["reused_from_run"] = str(reused_from_run)
    record_event(DATA_VALIDATED, model, None, run_id, evidence, details)


def record_cached_validation(model: str, run_id, validate_step, report: dict, report_artifact_id) -> bool:
    """A cached validate step did not run, so it recorded nothing for this run: record its (passed)
    outcome now, with the report it produced as evidence. `validate_step` is this run's step run.
    Returns whether a record was written (False when the step ran and recorded itself)."""
    from zenml.enums import ExecutionStatus

    from keel.data.schema import CheckFailure, ValidationReport

    if validate_step is None or validate_step.status != ExecutionStatus.CACHED:
        return False
    original = validate_step.original_step_run_id
    if original is not None:
        from zenml.client import Client

        original = Client().get_run_step(original).pipeline_run_id
    rebuilt = ValidationReport(report["rows"], report["columns"], [CheckFailure(**f) for f in report.get("failures", [])])
    record_validation(model, run_id, rebuilt.passed, rebuilt.summary(), [report_artifact_id], original)
    return True


def record_retraining_decision(model: str, version: int, run_id, decision: dict) -> None:
    """Only a decision that fires is a lifecycle event; quiet checks stay in the monitoring decisions file."""
    from keel.governance.audit import RETRAINING_TRIGGERED

    if decision.get("retrain"):
        record_event(RETRAINING_TRIGGERED, model, version, run_id, details=decision)


BATCH_SCORED = "batch_scored"  # a batch's outputs were published (`run.py score`); details: its batch record


def record_batch_scored(model: str, record: dict, run_id=None, evidence=()) -> None:
    """A completed batch: its record (keel.lifecycle.batch.BatchRecord) is the event's details, so the
    trail alone answers which batches ran, on what input, with which version, and who ran them."""
    record_event(BATCH_SCORED, model, record["model_version"], run_id, evidence, dict(record), actor=record["actor"])

"""One monitoring run of the production version (profile, labels, drift, policy, drift report) and,
when the policy fires, one retraining."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from keel.artifacts import REFERENCES, Artifact
from keel.lifecycle.progress import Progress
from keel.lifecycle.retraining import INTERRUPTED, INTERRUPTED_EXIT, Mark, RetrainingResult, no_mark
from keel.monitoring.records import DriftStatus, RetrainingDecision
from keel.spec.models import Spec

MONITOR_FAILED = 1


@dataclass
class MonitorResult:
    """What `monitor_once` came to: the monitored `version`, the drift status and the policy's decision
    of the run `run_name`, the drift report's path, the retraining if the policy fired; or `error`
    (then `status` is None)."""

    code: int
    status: Optional[DriftStatus] = None
    decision: Optional[RetrainingDecision] = None
    report: Optional[Path] = None
    run_name: Optional[str] = None
    retraining: Optional[RetrainingResult] = None
    timeline: list = field(default_factory=list)
    version: Optional[int] = None
    error: Optional[str] = None


def write_report(spec: Spec, run_name: str, html: str) -> Path:
    """The monitoring run's drift report, under the reports folder; its absolute path."""
    from keel.files import write_atomically
    from keel.lifecycle.evaluation import reports_folder

    folder = reports_folder(spec) / spec.problem.name / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_name}.html"
    write_atomically(path, html)
    return path


def monitor_once(spec: Spec, retrain: bool = True, progress: Progress = Progress(),
                 mark: Mark = no_mark, traffic: str = "both") -> MonitorResult:
    """One monitoring run over `traffic` (online, batch or both) and, if the policy fires, one
    retraining (or, with `retrain` off, the record that it was skipped)."""
    from keel.lifecycle.pipeline_runs import failed_step_message, run_pipeline
    from keel.lifecycle.retraining import retrain_and_roll_out, skipped_retraining
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.policy import describe_fired
    from keel.registry import production_version, version_artifacts

    name = spec.problem.name
    version = production_version(name)
    if version is None:
        return MonitorResult(1, error=f"keel: '{name}' has no production version to monitor: python run.py deploy")
    from pipelines.monitoring import monitoring_pipeline

    try:
        version_artifacts(name, version, REFERENCES)
    except LookupError as error:  # a version evaluated before monitoring existed has no references
        return MonitorResult(1, version=version, error=f"keel: {error}; evaluate it again: python run.py evaluate "
                                                       f"--model-version {version}")
    from keel.engine.cluster import EngineUnavailableError
    from keel.engine.selection import active_engine, check_engine, engine_parameter

    engine = active_engine()  # the stack's: a dask scheduler must answer before any work
    try:
        check_engine(engine)
    except EngineUnavailableError as error:
        return MonitorResult(MONITOR_FAILED, version=version, error=f"keel: {error}")
    on_engine = {"engine": engine_parameter(engine)} if engine_parameter(engine) else {}
    outcome = run_pipeline(monitoring_pipeline, spec=spec, model_version=version, traffic=traffic, **on_engine)
    if outcome.error is not None:
        return MonitorResult(MONITOR_FAILED, version=version, error=failed_step_message(outcome))
    steps = outcome.run.steps
    status = steps["drift_step"].outputs[Artifact.DRIFT_STATUS][0].load()
    decision = steps["policy_step"].outputs[Artifact.RETRAINING_DECISION][0].load()
    html = steps["policy_step"].outputs[Artifact.DRIFT_REPORT][0].load()
    report = write_report(spec, outcome.run.name, str(html))
    status["decision_folder"] = str(monitoring_folder(spec))
    result = MonitorResult(0, status, decision, report, outcome.run.name, version=version)
    progress.monitored(spec, result)
    suppressed = f" ({decision['suppressed_by']})" if decision["suppressed_by"] else ""
    mark("monitor", f"{status['verdict']['summary']}; triggers fired: {describe_fired(decision)} -> "
                    f"{'retrain' if decision['retrain'] else 'no retraining' + suppressed}; drift report {report}")
    if decision["retrain"] and retrain:
        result.retraining = retrain_and_roll_out(spec, decision, version, progress, mark)
        if result.retraining.outcome == "failed":
            result.code = 1
        elif result.retraining.outcome == INTERRUPTED:
            result.code = INTERRUPTED_EXIT
    elif decision["retrain"]:  # the decision stands (it counts for the cooldown); say it was not acted on
        result.retraining = skipped_retraining(spec, decision, version)
        progress.retraining_skipped(spec, result.retraining.outcome)
    return result

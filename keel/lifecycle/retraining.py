"""Retraining when the monitoring policy fires: train -> evaluate (against the champion) -> deploy as
the challenger, each stage on the version its own training run registered; the outcome is recorded
beside the decision that caused it.

(No `from __future__ import annotations` here: under it Python 3.11's TypedDict counts `NotRequired`
keys as required.)"""

from dataclasses import dataclass
from typing import Callable, Dict, List, NotRequired, Optional, TypedDict

from keel.lifecycle.deployment import DeploymentResult
from keel.lifecycle.evaluation import GATES_FAILED, EvaluationResult
from keel.lifecycle.progress import Progress
from keel.lifecycle.training import TrainingResult
from keel.monitoring.policy import INTERRUPTED, SKIPPED, STARTED
from keel.monitoring.records import RetrainingDecision
from keel.spec.models import Spec

INTERRUPTED_EXIT = 130  # 128 + SIGINT, the shell's convention for a command stopped by Ctrl+C

Mark = Callable[[str, str], None]  # (stage, detail): a line of the main job's timeline


def no_mark(what: str, detail: str) -> None:
    pass


class RetrainedEvaluation(TypedDict):
    """How the evaluation of the retrained version came out (`exit_code` as `evaluate`'s)."""

    passed: Optional[bool]
    deployable: bool
    decision: Optional[str]
    failed: List[str]
    exit_code: int


class RetrainingStarted(TypedDict):
    """The first line a retraining writes to the monitoring decisions file: who runs it. Without its
    outcome line later, a monitor whose host runs no such process any more counts it as interrupted
    (keel.monitoring.policy.died_retrainings): a SIGKILL or the OOM killer writes nothing."""

    kind: str  # STARTED
    time: str
    decision_time: str
    pid: int
    host: str
    process_started: float  # the process's start time (epoch seconds): a reused pid is another process


class RetrainingRecord(TypedDict):
    """What a retraining came to: a `kind: retraining` line of the monitoring decisions file, beside
    the decision (`decision_time`) whose fired `triggers` caused it. `new_version` is the version its
    training run registered (None: none); `outcome` as `retraining_outcome` says, SKIPPED or INTERRUPTED."""

    kind: str
    time: str
    decision_time: str
    triggers: List[str]  # those that retrain by policy: what caused it
    champion: int
    new_version: Optional[int]
    outcome: str
    error: NotRequired[str]
    interrupted_during: NotRequired[str]  # training, evaluation or deployment (outcome INTERRUPTED)
    fired_not_retraining: NotRequired[List[str]]  # fired too, but alert only (monitoring.fairness.retrain false)
    evaluation: NotRequired[RetrainedEvaluation]
    rollout: NotRequired[Optional[str]]
    rollout_report: NotRequired[str]
    label_coverage: NotRequired[dict]  # of the window whose decision caused it (selective labels)


@dataclass
class RetrainingResult:
    """What a retraining came to. `record` is what was appended to the monitoring decisions (kind,
    triggers, champion, new_version, evaluation, rollout, outcome, error); reading the result by key
    reads the record. The stages' own results are kept beside it (None where a stage did not run)."""

    record: RetrainingRecord
    training: Optional[TrainingResult] = None
    evaluation: Optional[EvaluationResult] = None
    deployment: Optional[DeploymentResult] = None

    def __getitem__(self, key: str):
        return self.record[key]

    def get(self, key: str, default=None):
        return self.record.get(key, default)

    @property
    def outcome(self) -> str:
        return self.record["outcome"]

    @property
    def new_version(self) -> Optional[int]:
        return self.record["new_version"]


def retraining_spec(spec: Spec) -> Spec:
    """The spec the retraining runs with: the spec plus the policy's `data_overrides`."""
    overrides = spec.monitoring.retraining.data_overrides
    if not overrides:
        return spec
    from keel.spec.load import apply_overrides, validate_spec

    return validate_spec(apply_overrides(spec.model_dump(mode="json"), overrides),
                         "monitoring.retraining.data_overrides")


def retraining_outcome(evaluation_code: int, evaluation_passed: Optional[bool],
                       deploy_code: Optional[int] = None, rollout: Optional[str] = None) -> str:
    """What a retraining came to, from the evaluation's exit code and whether it made the version
    deployable, and (once deployed) the deployment's exit code and rollout outcome. "deploy": evaluation
    passed, deploy next."""
    if evaluation_code == GATES_FAILED:
        return "rejected by evaluation"
    if evaluation_code != 0:  # the evaluation run itself failed: nothing was judged
        return "failed"
    if evaluation_passed is None:
        return "failed"
    if not evaluation_passed:
        return "rejected by evaluation"
    if deploy_code is None:
        return "deploy"
    if deploy_code == 0 and rollout == "promoted":
        return "rolled out"
    return f"not rolled out ({rollout or 'deployment failed'})"


def same_model_as_champion(spec: Spec, champion: int, trained: dict) -> Optional[str]:
    """Why a retrained version is not rolled out when it is the champion's model byte for byte (the same
    data and spec: a retrain fired by performance drift on unchanged data cannot address the drift, and
    would be evaluated against the champion's own test split and "roll out" the same model); None else."""
    from keel import registration as keys
    from keel.registry import get_model_version_metadata

    now = trained.get(keys.MODEL_SHA256)
    if now is None or now != get_model_version_metadata(spec.problem.name, champion).get(keys.MODEL_SHA256):
        return None
    return (f"identical to the champion v{champion} (model SHA-256 {now[:12]}...): the retraining data and spec "
            f"gave the same model; name newer data in monitoring.retraining.data_overrides")


RESTORED_BY_ROLLBACK = "restored by rollback"  # keel.lifecycle.deployment's outcome for `run.py rollback`


def operator_rollbacks(records: List[dict]) -> Dict[int, dict]:
    """The versions an operator took out of production with `rollback` and nobody deployed again
    since, from the audit trail's records (in sequence order): {version: {"by", "at"}}. The trail, not
    the registry, because a retrained model identical to one of them is that decision undone."""
    from keel.governance.audit import DEPLOYMENT_OUTCOME

    held: Dict[int, dict] = {}
    for record in records:
        details = record.get("details") or {}
        if record.get("event") != DEPLOYMENT_OUTCOME:
            continue
        if details.get("outcome") == RESTORED_BY_ROLLBACK and isinstance(details.get("replaced"), int):
            # `by` is the --by the operator gave; without it the record's actor is the same default
            held[details["replaced"]] = {"by": details.get("by") or record.get("actor"),
                                         "at": _to_second(record.get("time"))}
        elif details.get("outcome") == "promoted" and record.get("version") in held:
            del held[record["version"]]  # deployed again on purpose: the rollback no longer speaks for it
    return held


def _to_second(time: Optional[str]) -> Optional[str]:
    from datetime import datetime

    try:
        return datetime.fromisoformat(time).replace(microsecond=0).isoformat()
    except (TypeError, ValueError):  # an edited record: shown as it is
        return time


def identical_to_rolled_back(model_sha256: Optional[str], rolled_back: Dict[int, dict],
                             hashes: Dict[int, Optional[str]]) -> Optional[str]:
    """Why a retrained model is not rolled out when it is byte for byte a version an operator rolled
    back (`hashes`: each rolled-back version's model SHA-256); None else. The latest such version is
    named."""
    same = [v for v in sorted(rolled_back) if model_sha256 is not None and hashes.get(v) == model_sha256]
    if not same:
        return None
    version = same[-1]
    held = rolled_back[version]
    return (f"identical to v{version}, rolled back by {held['by']} at {held['at']} (model SHA-256 "
            f"{model_sha256[:12]}...); deploy it explicitly if wanted: "
            f"python run.py deploy --model-version {version}")


def same_model_as_rolled_back(spec: Spec, trained: dict) -> Optional[str]:
    """identical_to_rolled_back on the model's audit trail and the registry's model hashes."""
    from keel import registration as keys
    from keel.governance.audit import audit_store, read_records
    from keel.registry import get_model_version_metadata

    name = spec.problem.name
    rolled_back = operator_rollbacks(read_records(audit_store(name)))
    hashes = {v: get_model_version_metadata(name, v).get(keys.MODEL_SHA256) for v in rolled_back}
    return identical_to_rolled_back(trained.get(keys.MODEL_SHA256), rolled_back, hashes)


def _record(decision: RetrainingDecision, champion: int, outcome: str) -> RetrainingRecord:
    """A retraining record beside `decision`: the triggers that caused it, and apart those that fired beside
    them but alert only."""
    from keel.monitoring.monitor import now_utc
    from keel.monitoring.policy import alerting_triggers, retraining_triggers

    record: RetrainingRecord = {"kind": "retraining", "time": now_utc().isoformat(), "decision_time": decision["time"],
                                "triggers": retraining_triggers(decision), "champion": champion, "new_version": None,
                                "outcome": outcome}
    alerting = alerting_triggers(decision)
    if alerting:
        record["fired_not_retraining"] = alerting
    return record


def skipped_retraining(spec: Spec, decision: RetrainingDecision, champion: int) -> RetrainingResult:
    """The policy fired but retraining was switched off: the decision stands (it counts for the
    cooldown); record that it was not acted on."""
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.policy import append_record

    record = _record(decision, champion, SKIPPED)
    append_record(monitoring_folder(spec), record)
    return RetrainingResult(record)


def retrain_and_roll_out(spec: Spec, decision: RetrainingDecision, champion: int, progress: Progress = Progress(),
                         mark: Mark = no_mark) -> RetrainingResult:
    """train -> evaluate (against the champion) -> deploy as challenger; the outcome is recorded
    beside the decision that caused it. Every stage works on `new_version`, the number the training
    run's register step returned."""
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.policy import append_record

    progress.retraining_started(spec, decision)
    append_record(monitoring_folder(spec), started_record(decision))
    record = _record(decision, champion, "failed")
    result = RetrainingResult(record)
    try:
        return _retrain(spec, decision, champion, progress, mark, result)
    except KeyboardInterrupt:  # Ctrl+C (ZenML stops the step run, then Python raises this)
        # Recorded where the other outcomes are, so the next monitor says so and the cooldown leaves it out.
        record["outcome"] = INTERRUPTED
        record["interrupted_during"] = interrupted_stage(result)
        mark("retrain", f"interrupted during {record['interrupted_during']}")
        append_record(monitoring_folder(spec), record)
        return result


def started_record(decision: RetrainingDecision) -> RetrainingStarted:
    """Who starts retraining on `decision` now (this process)."""
    from keel.monitoring.monitor import now_utc
    from keel.monitoring.policy import this_process

    return {"kind": STARTED, "time": now_utc().isoformat(), "decision_time": decision["time"], **this_process()}


def interrupted_stage(result: RetrainingResult) -> str:
    """The stage an interrupted retraining was in: the first whose result it did not get."""
    if result.training is None:
        return "training"
    return "evaluation" if result.evaluation is None else "deployment"


def _retrain(spec: Spec, decision: RetrainingDecision, champion: int, progress: Progress, mark: Mark,
             result: RetrainingResult) -> RetrainingResult:
    from keel.data.sources import describe_source
    from keel.evaluation.gates import is_deployable
    from keel.lifecycle.deployment import deploy_version
    from keel.lifecycle.evaluation import evaluate_version, model_card_path
    from keel.lifecycle.training import train_version
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.policy import append_record
    from keel.spec.load import SpecError

    record = result.record
    try:
        new_spec = retraining_spec(spec)
    except SpecError as error:  # `monitor` checks this first; a spec changed since must not crash the loop
        record["error"] = str(error)
        progress.retraining_not_started(spec, str(error))
        mark("retrain", f"failed: {error}")
        append_record(monitoring_folder(spec), record)
        return result
    progress.training_started(new_spec)
    result.training = train_version(new_spec)
    progress.trained(new_spec, result.training)
    if result.training.exit_code != 0:
        mark("retrain", "failed: the training run failed")
        append_record(monitoring_folder(spec), record)
        return result
    record["new_version"] = version = result.training.version
    mark("retrain", f"v{version} trained on {describe_source(new_spec.data)}")
    same = same_model_as_champion(spec, champion, result.training.metadata)
    if same:
        record["outcome"] = f"not rolled out ({same})"
        mark("rollout", f"none: {same}")
        append_record(monitoring_folder(spec), record)
        return result
    undone = same_model_as_rolled_back(spec, result.training.metadata)
    if undone:  # rolling it out would undo an operator's rollback with no one deciding it
        record["outcome"] = f"not rolled out ({undone})"
        mark("rollout", f"none: {undone}")
        append_record(monitoring_folder(spec), record)
        return result
    if decision.get("label_coverage"):  # the outcomes production could teach it (selective labels)
        from keel.monitoring.production_fairness import record_label_coverage

        record["label_coverage"] = decision["label_coverage"]
        record_label_coverage(new_spec.problem.name, version, decision["label_coverage"])
        if decision["label_coverage"]["selective"]:
            mark("retrain", f"selective labels: {decision['label_coverage']['note']}")
    progress.evaluation_started(new_spec)
    result.evaluation = evaluated = evaluate_version(new_spec, version)
    progress.evaluated(new_spec, evaluated)
    code, evaluation = evaluated.exit_code, evaluated.record
    failed = evaluation["failed"] if evaluation else []
    record["evaluation"] = {"passed": evaluation["passed"] if evaluation else None,
                            "deployable": is_deployable(evaluation),
                            "decision": evaluation["decision"] if evaluation else None, "failed": failed,
                            "exit_code": code}
    record["outcome"] = retraining_outcome(code, is_deployable(evaluation) if evaluation else None)
    mark("evaluate", f"v{version} against champion v{champion}: "
                     + {"deploy": "passed its gates", "failed": f"the evaluation run failed (exit {code})"}.get(
                         record["outcome"], "failed: " + "; ".join(failed))
                     + f"; model card {model_card_path(new_spec, version)}")
    if record["outcome"] == "deploy":
        progress.deployment_started(new_spec)
        result.deployment = deployed = deploy_version(new_spec, version)
        progress.deployed(new_spec, deployed)
        record["rollout"] = deployed.outcome
        record["outcome"] = retraining_outcome(code, True, deployed.exit_code, deployed.outcome)
        if deployed.report:  # no rollout recorded: no report of it
            record["rollout_report"] = deployed.report
        why = deployed.rolled_back_because
        mark("rollout", record["outcome"] + (f" at {why}" if why else "")
             + (f"; rollout report {deployed.report}" if deployed.report else ""))
    else:
        mark("rollout", f"none: {record['outcome']}")
    append_record(monitoring_folder(spec), record)
    return result

"""Retraining when the monitoring policy fires: train -> evaluate (against the champion) -> deploy as
the challenger, each stage on the version its own training run registered; the outcome is recorded
beside the decision that caused it.

(No `from __future__ import annotations` here: under it Python 3.11's TypedDict counts `NotRequired`
keys as required.)"""

from dataclasses import dataclass
from typing import Callable, List, NotRequired, Optional, TypedDict

from keel.lifecycle.deployment import DeploymentResult
from keel.lifecycle.evaluation import GATES_FAILED, EvaluationResult
from keel.lifecycle.progress import Progress
from keel.lifecycle.training import TrainingResult
from keel.monitoring.records import RetrainingDecision
from keel.spec.models import Spec

SKIPPED = "skipped (--no-retrain)"

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


class RetrainingRecord(TypedDict):
    """What a retraining came to: a `kind: retraining` line of the monitoring decisions file, beside
    the decision (`decision_time`) whose fired `triggers` caused it. `new_version` is the version its
    training run registered (None: none); `outcome` as `retraining_outcome` says or SKIPPED."""

    kind: str
    time: str
    decision_time: str
    triggers: List[str]
    champion: int
    new_version: Optional[int]
    outcome: str
    error: NotRequired[str]
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


def skipped_retraining(spec: Spec, decision: RetrainingDecision, champion: int) -> RetrainingResult:
    """The policy fired but retraining was switched off: the decision stands (it counts for the
    cooldown); record that it was not acted on."""
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.policy import append_record

    record: RetrainingRecord = {"kind": "retraining", "time": now_utc().isoformat(), "decision_time": decision["time"],
                                "triggers": decision["fired"], "champion": champion, "new_version": None,
                                "outcome": SKIPPED}
    append_record(monitoring_folder(spec), record)
    return RetrainingResult(record)


def retrain_and_roll_out(spec: Spec, decision: RetrainingDecision, champion: int, progress: Progress = Progress(),
                         mark: Mark = no_mark) -> RetrainingResult:
    """train -> evaluate (against the champion) -> deploy as challenger; the outcome is recorded
    beside the decision that caused it. Every stage works on `new_version`, the number the training
    run's register step returned."""
    from keel.data.sources import describe_source
    from keel.evaluation.gates import is_deployable
    from keel.lifecycle.deployment import deploy_version
    from keel.lifecycle.evaluation import evaluate_version, model_card_path
    from keel.lifecycle.training import train_version
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.policy import append_record
    from keel.spec.load import SpecError

    progress.retraining_started(spec, decision)
    record: RetrainingRecord = {"kind": "retraining", "time": now_utc().isoformat(), "decision_time": decision["time"],
                                "triggers": decision["fired"], "champion": champion, "new_version": None,
                                "outcome": "failed"}
    result = RetrainingResult(record)
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
        mark("rollout", record["outcome"] + (f"; rollout report {deployed.report}" if deployed.report else ""))
    else:
        mark("rollout", f"none: {record['outcome']}")
    append_record(monitoring_folder(spec), record)
    return result

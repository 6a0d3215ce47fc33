"""Evaluate one model version: run the evaluation pipeline, and when it fails, record the evaluation
as `incomplete` with the failed step, so that nothing judged on part of the evidence is deployable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from keel.artifacts import Artifact
from keel.evaluation.gates import INCOMPLETE, Decision
from keel.evaluation.record import StagedEvaluation
from keel.spec.models import Spec

GATES_FAILED = 3  # distinct from 1 (an error) so CI can tell "the model is not good enough"
EVALUATION_INCOMPLETE = 4  # a step failed or evidence is missing: nothing was judged, nothing staged
EVALUATION_WAIT_SECONDS = 3600.0  # how long an evaluation waits for another of the same version to end


def reports_folder(spec: Spec) -> Path:
    """Where keel writes its reports (model cards, drift reports, `run.py docs`): the spec's
    `governance.documentation_folder`, a relative one resolved against the working directory (as
    `deployment.folder` is), once, here."""
    return Path(spec.governance.documentation_folder).resolve()


def model_card_path(spec: Spec, version: int) -> Path:
    """The latest model card of `version` (a copy of its latest evaluation run's)."""
    return reports_folder(spec) / spec.problem.name / f"v{version}" / "model_card.md"


@dataclass
class EvaluationResult:
    """What `evaluate_version` came to. `record` is the evaluation as recorded on the version (with
    its `stage` after the run); `decision` the gates step's (the record itself when the run failed);
    `error` is set when the run failed or no version could be found."""

    version: Optional[int]
    record: Optional[StagedEvaluation] = None
    decision: Optional[Union[Decision, StagedEvaluation]] = None
    run_name: Optional[str] = None
    card_paths: list = field(default_factory=list)
    mitigation: Optional[dict] = None
    error: Optional[str] = None
    blocking: bool = True  # the spec's `evaluation.blocking`: failed gates fail the command

    @property
    def complete(self) -> bool:
        return self.error is None and self.record is not None and self.record.get("complete") is True

    @property
    def exit_code(self) -> int:
        """1 no such version; 4 the evaluation did not complete; 3 a blocking gate failed; else 0."""
        if self.version is None:
            return 1
        if self.error is not None or (self.decision is not None and self.decision["decision"] == INCOMPLETE):
            return EVALUATION_INCOMPLETE
        if self.decision is not None and self.decision["failed"] and self.blocking:
            return GATES_FAILED
        return 0


def write_model_card(spec: Spec, version: int, run_name: str, markdown: str, page: str) -> list:
    """The card of this evaluation run, kept beside every earlier run's; `model_card.md` beside them is
    a copy of the latest. Returns [this run's card, the latest copy]."""
    from keel.files import write_atomically

    folder = model_card_path(spec, version).parent
    kept = folder / "evaluations" / run_name
    kept.mkdir(parents=True, exist_ok=True)
    for target in (kept, folder):  # a reader of the latest copy never sees half of one card
        write_atomically(target / "model_card.md", markdown)
        write_atomically(target / "model_card.html", page)
    return [kept / "model_card.md", folder / "model_card.md"]


def record_failed_evaluation(spec: Spec, version: int, failed_step: Optional[str], error: str,
                             run=None) -> StagedEvaluation:
    """The evaluation of `version` did not finish: record it as incomplete, naming the failed step."""
    from keel.evaluation.gates import incomplete_decision
    from keel.evaluation.record import FAILED, evaluation_record
    from keel.registry import record_evaluation
    from keel.spec import spec_hash

    first_line = error.strip().splitlines()[0][:500] if error.strip() else "no error was recorded"
    if failed_step is None:
        first_line = f"the evaluation run failed: {first_line}"
    record = evaluation_record(incomplete_decision(failed_step, first_line),
                               status=FAILED, run_id=getattr(run, "id", None), run_name=getattr(run, "name", None),
                               spec_sha256=spec_hash(spec), evaluation=spec.evaluation)
    stage = record_evaluation(spec.problem.name, version, record, (), promote=False)
    staged: StagedEvaluation = {**record, "stage": stage}
    return staged


def evaluate_version(spec: Spec, version: Optional[int], no_cache: bool = False) -> EvaluationResult:
    """Run the evaluation pipeline for `version` (None: the latest) and write its model card; waits for
    another evaluation of the same version to end first."""
    from keel.locks import LockBusy, file_lock
    from keel.registry import resolve_version

    try:
        version = resolve_version(spec.problem.name, version)
    except LookupError as error:
        return EvaluationResult(None, error=f"keel: {error}", blocking=spec.evaluation.blocking)
    # One evaluation of a version at a time: each judges its gates against the version's previous
    # evaluation (LOOSENED), which a concurrent one would not have recorded yet.
    try:
        with file_lock(f"{spec.problem.name}.v{version}.evaluation", f"evaluating {spec.problem.name} v{version}",
                       wait_seconds=EVALUATION_WAIT_SECONDS):
            return _evaluate_locked(spec, version, no_cache)
    except LockBusy as busy:
        return EvaluationResult(version, error=f"keel: {busy}", blocking=spec.evaluation.blocking)


def _evaluate_locked(spec: Spec, version: int, no_cache: bool) -> EvaluationResult:
    from keel.lifecycle.pipeline_runs import failed_step_message, run_pipeline
    from keel.registry import version_target_change
    from pipelines.evaluation import evaluation_pipeline

    other_target = version_target_change(spec, version)
    if other_target:  # its metrics, fairness and threshold would be computed for the other class
        return EvaluationResult(version, error=f"keel: {spec.problem.name} v{version} was trained with another target "
                                               f"than this spec declares ({other_target}); evaluate it under the spec "
                                               "it was trained with", blocking=spec.evaluation.blocking)
    outcome = run_pipeline(evaluation_pipeline, no_cache=no_cache, spec=spec, model_version=version)
    if outcome.error is not None:
        run = outcome.run if outcome.failed_step else None  # no failed step: it failed before any step ran
        record = record_failed_evaluation(spec, version, outcome.failed_step, outcome.error, run)
        return EvaluationResult(version, record=record, decision=record, run_name=getattr(run, "name", None),
                                error=failed_step_message(outcome), blocking=spec.evaluation.blocking)
    steps = outcome.run.steps
    card = steps["model_card_step"].outputs
    paths = write_model_card(spec, version, outcome.run.name, card[Artifact.MODEL_CARD_MARKDOWN][0].load(),
                             str(card[Artifact.MODEL_CARD_HTML][0].load()))
    mitigation = (steps["mitigation_step"].outputs[Artifact.MITIGATION_REPORT][0].load()
                  if "mitigation_step" in steps else None)
    record = steps["record_decision_step"].outputs[Artifact.EVALUATION_RECORD][0].load()
    return EvaluationResult(version, record=record,
                            decision=steps["gates_step"].outputs[Artifact.PROMOTION_DECISION][0].load(),
                            run_name=outcome.run.name, card_paths=paths, mitigation=mitigation,
                            blocking=spec.evaluation.blocking)

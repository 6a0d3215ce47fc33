"""Model tests for a pull request, in one process and without ZenML: a sample of the spec's data,
validated, trained on, and judged by every gate; the outcome as a result (the CLI prints it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from keel.spec.models import Spec


@dataclass
class CheckResult:
    """What `check_sample` came to: the model `model` trained on the sample, its primary metric on
    validation and the gates' `decision`; or `error` (the sample's data failed validation)."""

    model: Optional[str] = None
    validation_score: Optional[float] = None
    decision: Optional[dict] = None  # keel.evaluation.gates.Decision
    error: Optional[str] = None
    blocking: bool = True  # the spec's `evaluation.blocking`: failed gates fail the check
    screening_findings: List[str] = field(default_factory=list)  # leakage suspects and proxies, reported only

    @property
    def exit_code(self) -> int:
        """1 invalid data; 4 the evaluation did not complete; 3 a blocking gate failed; else 0."""
        from keel.evaluation.gates import INCOMPLETE
        from keel.lifecycle.evaluation import EVALUATION_INCOMPLETE, GATES_FAILED

        if self.error is not None:
            return 1
        if self.decision["decision"] == INCOMPLETE:
            return EVALUATION_INCOMPLETE
        if self.decision["failed"] and self.blocking:
            return GATES_FAILED
        return 0


def draw_sample(spec: Spec, sample: int):
    """At most `sample` rows of the spec's data, drawn with the split's seed in their original order
    (DataSourceError when the data cannot be read)."""
    from keel.data.sources import load_frame

    raw = load_frame(spec.data)
    if len(raw) > sample:
        raw = raw.sample(sample, random_state=spec.split.seed).sort_index()
    return raw


def check_sample(spec: Spec, raw) -> CheckResult:
    """Validate `raw`, screen it for leakage and proxies as training does (blocking screening that finds one
    is an error, as it stops `train`), train on it in process and run every gate of the spec."""
    from keel.data.screening import screening_blocks, screening_findings
    from keel.evaluation.suite import evaluate_all
    from keel.training.in_process import train_in_process

    trained = train_in_process(raw, spec)
    if not trained.validation_report.passed:
        return CheckResult(error=trained.validation_report.summary(), blocking=spec.evaluation.blocking)
    screening = trained.readiness["screening"]
    blocked = screening_blocks(screening)
    if blocked:
        return CheckResult(error=blocked, blocking=spec.evaluation.blocking)
    reports = evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec)
    return CheckResult(trained.selected.name, trained.selected.validation_metrics[spec.training.primary_metric],
                       reports["decision"], blocking=spec.evaluation.blocking,
                       screening_findings=screening_findings(screening))

from typing import Tuple

from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.fairness import group_rule
from keel.evaluation.gates import decide, gate_values, gates_html
from keel.evaluation.performance import too_little_test_evidence
from keel.evaluation.record import (applied_gates, evidence_minimums, gate_changes, gate_history,
                                    previous_evaluation)
from keel.governance.audit import audit_store, read_records
from keel.spec import spec_hash
from keel.spec.models import Spec


@step(enable_cache=False)
def gates_step(performance_report: dict, fairness_report: dict, calibration_report: dict,
               robustness_report: dict, latency_report: dict, business_report: dict,
               champion_comparison: dict, spec: Spec, model_version: int) -> Tuple[
    Annotated[dict, Artifact.PROMOTION_DECISION],
    Annotated[HTMLString, Artifact.PROMOTION_DECISION_HTML],
]:
    """Judge every gate of the spec on the complete evidence set: promote, reject or incomplete (a
    missing or non-numeric value). Also how these gates differ from the version's earlier
    evaluations (read from the audit trail, so never cached). Records nothing: record_decision_step does."""
    values = gate_values(performance_report, fairness_report, calibration_report, robustness_report,
                         latency_report, business_report)
    decision = decide(spec.evaluation.gates, values, champion_comparison,
                      robustness_report["hostile_inputs"]["passed"], spec.evaluation.blocking,
                      too_little_test_evidence(performance_report, group_rule(spec.data)),
                      reports={"fairness": fairness_report, "performance": performance_report,
                               "business": business_report, "comparison": champion_comparison})
    records = read_records(audit_store(spec.problem.name))
    decision["values"] = values
    decision["gate_changes"] = gate_changes(previous_evaluation(records, model_version),
                                            applied_gates(spec.evaluation), spec.evaluation.blocking, spec_hash(spec),
                                            evidence_minimums(spec.data), spec.governance.roles is not None)
    decision["gate_history"] = gate_history(records, model_version)
    return decision, HTMLString(gates_html(decision))

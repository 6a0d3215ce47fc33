from typing import Tuple

from typing_extensions import Annotated
from zenml import get_step_context, step
from zenml.types import HTMLString

from keel.evaluation.gates import decide, gate_values, gates_html
from keel.registry import record_evaluation
from keel.spec.models import Spec


@step(enable_cache=False)
def gates_step(performance_report: dict, fairness_report: dict, calibration_report: dict,
               robustness_report: dict, latency_report: dict, business_report: dict,
               champion_comparison: dict, decision_threshold: dict, spec: Spec, model_version: int) -> Tuple[
    Annotated[dict, "promotion_decision"],
    Annotated[HTMLString, "promotion_decision_html"],
]:
    """Check every gate of the spec; record the outcome on the model version; promote to staging
    only if all pass. A side effect, so never cached."""
    values = gate_values(performance_report, fairness_report, calibration_report, robustness_report,
                         latency_report, business_report)
    decision = decide(spec.evaluation.gates, values, champion_comparison,
                      robustness_report["hostile_inputs"]["passed"])
    decision["values"] = values
    context = get_step_context()
    evidence = [artifact.id for inputs in context.inputs.values() for artifact in inputs]
    record = {"decision": decision["decision"], "passed": decision["passed"], "failed": decision["failed"],
              "gates": decision["gates"], "threshold": decision_threshold["threshold"],
              "threshold_rule": decision_threshold["rule"], "run_id": str(context.pipeline_run.id),
              "run_name": context.pipeline_run.name}
    decision["stage"] = record_evaluation(spec.problem.name, model_version, record, evidence,
                                          promote=decision["passed"])
    return decision, HTMLString(gates_html(decision))

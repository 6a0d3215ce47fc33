from zenml import get_step_context, step
from zenml.types import HTMLString, MarkdownString

from keel.registry import link_artifacts


@step(enable_cache=False)
def link_evidence_step(promotion_decision: dict, promotion_decision_html: HTMLString, model_card_markdown: MarkdownString,
                       model_card_html: HTMLString, performance_report_html: HTMLString,
                       fairness_report_html: HTMLString, calibration_report_html: HTMLString,
                       robustness_report_html: HTMLString, explainability_report_html: HTMLString,
                       latency_report_html: HTMLString, business_report_html: HTMLString,
                       champion_comparison_html: HTMLString, model_name: str, model_version: int) -> None:
    """Link the decision, the model card and every rendered report to the model version, so the
    version's page lists the evidence it was judged on."""
    evidence = [artifact.id for inputs in get_step_context().inputs.values() for artifact in inputs]
    link_artifacts(model_name, model_version, evidence)

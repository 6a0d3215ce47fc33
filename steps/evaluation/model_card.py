from typing import Optional, Tuple

from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString, MarkdownString

from keel.artifacts import Artifact
from keel.evaluation.model_card import card_sections, model_card_html, model_card_markdown
from keel.registry import get_model_version_metadata
from keel.spec.models import Spec


@step(enable_cache=False)
def model_card_step(promotion_decision: dict, decision_threshold: dict, performance_report: dict,
                    fairness_report: dict, calibration_report: dict, robustness_report: dict,
                    explainability_report: dict, latency_report: dict, champion_comparison: dict,
                    spec: Spec, model_version: int, mitigation_report: Optional[dict] = None,
                    business_report: Optional[dict] = None) -> Tuple[
    Annotated[MarkdownString, Artifact.MODEL_CARD_MARKDOWN],
    Annotated[HTMLString, Artifact.MODEL_CARD_HTML],
]:
    """The model card (Markdown and HTML) from the version's recorded training facts and this evaluation."""
    training = get_model_version_metadata(spec.problem.name, model_version)
    reports = {"decision": promotion_decision, "threshold": decision_threshold, "performance": performance_report,
               "fairness": fairness_report, "calibration": calibration_report, "robustness": robustness_report,
               "explainability": explainability_report, "latency": latency_report,
               "comparison": champion_comparison if champion_comparison.get("champion") else None,
               "mitigation": mitigation_report, "business": business_report}
    sections = card_sections(spec, spec.problem.name, model_version, training, reports)
    return (MarkdownString(model_card_markdown(spec.problem.name, model_version, sections)),
            HTMLString(model_card_html(spec.problem.name, model_version, sections)))

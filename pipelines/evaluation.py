from zenml import pipeline

from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.evaluation.business import business_step
from steps.evaluation.calibration import calibration_step
from steps.evaluation.champion_challenger import champion_challenger_step
from steps.evaluation.decision_threshold import decision_threshold_step
from steps.evaluation.explainability import explainability_step
from steps.evaluation.fairness import fairness_step
from steps.evaluation.gates import gates_step
from steps.evaluation.latency import latency_step
from steps.evaluation.mitigation import mitigation_step
from steps.evaluation.model_card import model_card_step
from steps.evaluation.performance import performance_step
from steps.evaluation.robustness import robustness_step


@pipeline
def evaluation_pipeline(spec: Spec, model_version: int) -> None:
    """Seven dimensions on the version's own held-out test split -> champion/challenger -> gates -> model card."""
    linked = version_artifacts(spec.problem.name, model_version, ["model", "train", "validation", "test"])
    model, validation, test = linked["model"], linked["validation"], linked["test"]
    scoring, threshold = decision_threshold_step(model, validation, spec)
    performance, _ = performance_step(scoring, test, threshold, spec.data)
    fairness, _ = fairness_step(scoring, test, threshold, spec.data)
    calibration, _ = calibration_step(model, scoring, test, spec.evaluation.calibration, spec.data)
    robustness, _ = robustness_step(scoring, test, spec)
    explainability, _ = explainability_step(model, test, validation, spec)
    latency, _ = latency_step(scoring, test, spec.evaluation.latency)
    comparison, champion_scores, _ = champion_challenger_step(scoring, threshold, validation, test, spec,
                                                              model_version)
    business, _ = business_step(scoring, threshold, test, comparison, champion_scores, spec)
    decision, _ = gates_step(performance, fairness, calibration, robustness, latency, business, comparison,
                             threshold, spec, model_version)
    model_card_step(decision, threshold, performance, fairness, calibration, robustness, explainability,
                    latency, comparison, spec, model_version)
    if spec.evaluation.mitigation.method != "none":
        mitigation_step(model, linked["train"], validation, test, threshold, decision, comparison, robustness,
                        spec)

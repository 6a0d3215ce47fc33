from zenml import pipeline
from zenml.enums import ExecutionMode

from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.evaluation.begin import begin_evaluation_step
from steps.evaluation.business import business_step
from steps.evaluation.calibration import calibration_step
from steps.evaluation.champion_challenger import champion_challenger_step
from steps.evaluation.decision_threshold import decision_threshold_step
from steps.evaluation.explainability import explainability_step
from steps.evaluation.fairness import fairness_step
from steps.evaluation.gates import gates_step
from steps.evaluation.latency import latency_step
from steps.evaluation.link_evidence import link_evidence_step
from steps.evaluation.mitigation import mitigation_step
from steps.evaluation.model_card import model_card_step
from steps.evaluation.performance import performance_step
from steps.evaluation.record_decision import record_decision_step
from steps.evaluation.robustness import robustness_step
from steps.monitoring.link_references import link_references_step
from steps.monitoring.reference_profiles import reference_profiles_step


# Stop on the first failed step: nothing after it runs, and record_decision_step (which needs every
# other step) never records a decision from part of the evidence.
@pipeline(execution_mode=ExecutionMode.STOP_ON_FAILURE)
def evaluation_pipeline(spec: Spec, model_version: int) -> None:
    """Mark the evaluation incomplete -> seven dimensions on the version's own held-out test split ->
    champion/challenger -> gates -> model card -> reference profiles for monitoring -> record the
    decision (staged only on a complete evidence set)."""
    linked = version_artifacts(spec.problem.name, model_version, ["model", "train", "validation", "test"])
    model, validation, test = linked["model"], linked["validation"], linked["test"]
    begin_evaluation_step(spec, model_version)
    started = ["begin_evaluation_step"]
    scoring, threshold = decision_threshold_step(model, validation, spec, after=started)
    performance, performance_html = performance_step(scoring, test, threshold, spec.data,
                                                        spec.evaluation.performance)
    fairness, fairness_html = fairness_step(scoring, test, threshold, spec.data)
    calibration, calibration_html = calibration_step(model, scoring, test, spec.evaluation.calibration, spec.data)
    robustness, robustness_html = robustness_step(scoring, test, spec)
    explainability, explainability_html = explainability_step(model, test, validation, spec, after=started)
    latency, latency_html = latency_step(scoring_model=scoring, test=test, validation=validation, spec=spec,
                                         model_version=model_version)
    comparison, champion_scores, comparison_html = champion_challenger_step(
        scoring_model=scoring, decision_threshold=threshold, validation=validation, test=test, spec=spec,
        model_version=model_version)
    business, business_html = business_step(scoring, threshold, test, comparison, champion_scores, spec)
    decision, decision_html = gates_step(
        performance_report=performance, fairness_report=fairness, calibration_report=calibration,
        robustness_report=robustness, latency_report=latency, business_report=business,
        champion_comparison=comparison, spec=spec, model_version=model_version)
    mitigation = None
    if spec.evaluation.mitigation.method != "none":  # the analysis, shown in the card; `mitigate` ships it
        mitigation, _ = mitigation_step(model, linked["train"], validation, test, threshold, decision, comparison,
                                        robustness, spec)
    card, card_html = model_card_step(
        promotion_decision=decision, decision_threshold=threshold, performance_report=performance,
        fairness_report=fairness, calibration_report=calibration, robustness_report=robustness,
        explainability_report=explainability, latency_report=latency, champion_comparison=comparison,
        spec=spec, model_version=model_version, mitigation_report=mitigation)
    link_evidence_step(decision, decision_html, card, card_html, performance_html, fairness_html, calibration_html,
                       robustness_html, explainability_html, latency_html, business_html, comparison_html,
                       spec.problem.name, model_version)
    evidence = ["link_evidence_step", "link_references_step"]
    link_references_step(*reference_profiles_step(model, linked["train"], test, threshold, spec),
                         spec.problem.name, model_version)
    record_decision_step(decision, threshold, spec, model_version, after=evidence)

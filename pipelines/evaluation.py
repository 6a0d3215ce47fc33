from zenml import pipeline
from zenml.enums import ExecutionMode

from keel.artifacts import Artifact
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
    linked = version_artifacts(spec.problem.name, model_version,
                               [Artifact.MODEL, Artifact.TRAIN, Artifact.VALIDATION, Artifact.TEST])
    model, train = linked[Artifact.MODEL], linked[Artifact.TRAIN]
    validation, test = linked[Artifact.VALIDATION], linked[Artifact.TEST]
    begin_evaluation_step(spec=spec, model_version=model_version)
    started = ["begin_evaluation_step"]
    scoring, threshold = decision_threshold_step(model=model, validation=validation, spec=spec, after=started)
    performance, performance_html = performance_step(scoring_model=scoring, test=test, decision_threshold=threshold,
                                                     data=spec.data, performance=spec.evaluation.performance)
    fairness, fairness_html = fairness_step(scoring_model=scoring, test=test, decision_threshold=threshold,
                                            data=spec.data)
    calibration, calibration_html = calibration_step(model=model, scoring_model=scoring, test=test,
                                                     calibration=spec.evaluation.calibration, data=spec.data)
    robustness, robustness_html = robustness_step(scoring_model=scoring, test=test, spec=spec)
    explainability, explainability_html = explainability_step(model=model, test=test, validation=validation,
                                                              spec=spec, after=started)
    latency, latency_html = latency_step(scoring_model=scoring, test=test, validation=validation, spec=spec,
                                         model_version=model_version)
    comparison, champion_scores, comparison_html = champion_challenger_step(
        scoring_model=scoring, decision_threshold=threshold, validation=validation, test=test, spec=spec,
        model_version=model_version)
    business, business_html = business_step(scoring_model=scoring, decision_threshold=threshold, test=test,
                                            champion_comparison=comparison, champion_scores=champion_scores,
                                            spec=spec)
    decision, decision_html = gates_step(
        performance_report=performance, fairness_report=fairness, calibration_report=calibration,
        robustness_report=robustness, latency_report=latency, business_report=business,
        champion_comparison=comparison, spec=spec, model_version=model_version)
    mitigation = None
    if spec.evaluation.mitigation.method != "none":  # the analysis, shown in the card; `mitigate` ships it
        mitigation, _ = mitigation_step(model=model, train=train, validation=validation, test=test,
                                        decision_threshold=threshold, promotion_decision=decision,
                                        champion_comparison=comparison, robustness_report=robustness, spec=spec)
    card, card_html = model_card_step(
        promotion_decision=decision, decision_threshold=threshold, performance_report=performance,
        fairness_report=fairness, calibration_report=calibration, robustness_report=robustness,
        explainability_report=explainability, latency_report=latency, champion_comparison=comparison,
        spec=spec, model_version=model_version, mitigation_report=mitigation, business_report=business)
    link_evidence_step(promotion_decision=decision, promotion_decision_html=decision_html, model_card_markdown=card,
                       model_card_html=card_html, performance_report_html=performance_html,
                       fairness_report_html=fairness_html, calibration_report_html=calibration_html,
                       robustness_report_html=robustness_html, explainability_report_html=explainability_html,
                       latency_report_html=latency_html, business_report_html=business_html,
                       champion_comparison_html=comparison_html, model_name=spec.problem.name,
                       model_version=model_version)
    evidence = ["link_evidence_step", "link_references_step"]
    data_profile, prediction_profile, summary = reference_profiles_step(model=model, train=train, test=test,
                                                                        decision_threshold=threshold, spec=spec)
    link_references_step(reference_data_profile=data_profile, reference_prediction_profile=prediction_profile,
                         reference_summary=summary, model_name=spec.problem.name, model_version=model_version)
    record_decision_step(promotion_decision=decision, decision_threshold=threshold, spec=spec,
                         model_version=model_version, after=evidence)

"""The names of the artifacts keel's steps output, in one place.

Steps name their outputs with these (`Annotated[dict, Artifact.PROMOTION_DECISION]`) and every
lookup (a run's step outputs, a model version's linked artifacts) uses the same member, so a
renamed output cannot leave a reader looking for the old name. A `StrEnum`: each member *is* its
string, so ZenML (which reads the name with `isinstance(name, str)` and stores it as `str`), JSON
and dictionary lookups by the plain string all see the same name. No ZenML import here.
"""

from enum import StrEnum


class Artifact(StrEnum):
    # training: data
    RAW_DATA = "raw_data"
    VALIDATED_DATA = "validated_data"
    DATA_FINGERPRINT = "data_fingerprint"
    VALIDATION_REPORT = "validation_report"
    VALIDATION_REPORT_HTML = "validation_report_html"
    DATA_VERSION_URI = "data_version_uri"
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"
    FEATURE_PIPELINE = "feature_pipeline"
    READINESS_REPORT = "readiness_report"
    READINESS_REPORT_HTML = "readiness_report_html"
    # training: models
    BASELINE_MODEL = "baseline_model"
    BASELINE_SUMMARY = "baseline_summary"
    CANDIDATE_MODEL = "candidate_model"
    CANDIDATE_SUMMARY = "candidate_summary"
    SEARCH_TRIALS = "search_trials"
    MODEL = "model"  # every version's model, the mitigated one's too
    SELECTION = "selection"
    ENGINE_RECORD = "engine_record"  # the dask engine's layout, whole-split rows and samples
    MODEL_VERSION = "model_version"
    # evaluation
    SCORING_MODEL = "scoring_model"
    DECISION_THRESHOLD = "decision_threshold"
    PERFORMANCE_REPORT = "performance_report"
    PERFORMANCE_REPORT_HTML = "performance_report_html"
    FAIRNESS_REPORT = "fairness_report"
    FAIRNESS_REPORT_HTML = "fairness_report_html"
    CALIBRATION_REPORT = "calibration_report"
    CALIBRATION_REPORT_HTML = "calibration_report_html"
    ROBUSTNESS_REPORT = "robustness_report"
    ROBUSTNESS_REPORT_HTML = "robustness_report_html"
    EXPLAINABILITY_REPORT = "explainability_report"
    EXPLAINABILITY_REPORT_HTML = "explainability_report_html"
    LATENCY_REPORT = "latency_report"
    LATENCY_REPORT_HTML = "latency_report_html"
    CHAMPION_COMPARISON = "champion_comparison"
    CHAMPION_SCORES = "champion_scores"
    CHAMPION_COMPARISON_HTML = "champion_comparison_html"
    BUSINESS_REPORT = "business_report"
    BUSINESS_REPORT_HTML = "business_report_html"
    PROMOTION_DECISION = "promotion_decision"
    PROMOTION_DECISION_HTML = "promotion_decision_html"
    MITIGATION_REPORT = "mitigation_report"
    MITIGATION_REPORT_HTML = "mitigation_report_html"
    MODEL_CARD_MARKDOWN = "model_card_markdown"
    MODEL_CARD_HTML = "model_card_html"
    EVALUATION_RECORD = "evaluation_record"
    # monitoring references (made by evaluation, linked to the version)
    REFERENCE_DATA_PROFILE = "reference_data_profile"
    REFERENCE_PREDICTION_PROFILE = "reference_prediction_profile"
    REFERENCE_SUMMARY = "reference_summary"
    # monitoring
    WINDOW_PROFILE = "window_profile"
    WINDOW = "window"
    LABELLED_PREDICTIONS = "labelled_predictions"
    LABEL_REPORT = "label_report"
    DRIFT_STATUS = "drift_status"
    RETRAINING_DECISION = "retraining_decision"
    DRIFT_REPORT = "drift_report"
    ALERT_OUTCOME = "alert_outcome"
    # deployment
    ROLLOUT_EVIDENCE = "rollout_evidence"
    ROLLOUT_TIMELINE_HTML = "rollout_timeline_html"
    BENTO_TAG = "bento_tag"
    KUBERNETES_MANIFESTS = "kubernetes_manifests"
    MODEL_REGISTRY_HTML = "model_registry_html"
    # batch scoring (the outputs themselves are referenced by URI and fingerprint, not copied)
    INPUT_FINGERPRINT = "input_fingerprint"
    BATCH_RESULT = "batch_result"
    BATCH_RECORD = "batch_record"


# What a version's monitoring compares production with (made by evaluation, linked to the version).
REFERENCES = (Artifact.REFERENCE_DATA_PROFILE, Artifact.REFERENCE_PREDICTION_PROFILE, Artifact.REFERENCE_SUMMARY)

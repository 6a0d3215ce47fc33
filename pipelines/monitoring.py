from zenml import pipeline

from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.monitoring.alert import alert_step
from steps.monitoring.drift import drift_step
from steps.monitoring.join_labels import join_labels_step
from steps.monitoring.policy import policy_step
from steps.monitoring.window_profile import window_profile_step

REFERENCES = ["reference_data_profile", "reference_prediction_profile", "reference_summary"]


@pipeline
def monitoring_pipeline(spec: Spec, model_version: int) -> None:
    """Prediction log -> window profile -> delayed labels -> four kinds of drift against the
    version's references -> continuous-training decision and drift report -> alert."""
    references = version_artifacts(spec.problem.name, model_version, REFERENCES)
    window_profile, window = window_profile_step(spec, model_version)
    labelled, label_report = join_labels_step(window, spec)
    status = drift_step(window_profile, window, references["reference_data_profile"],
                        references["reference_prediction_profile"], references["reference_summary"],
                        labelled, label_report, spec)
    decision, _ = policy_step(status, label_report, spec, model_version)
    alert_step(status, decision, spec)

from typing import Optional

from zenml import pipeline

from keel.artifacts import REFERENCES, Artifact
from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.monitoring.alert import alert_step
from steps.monitoring.drift import drift_step
from steps.monitoring.join_labels import join_labels_step
from steps.monitoring.policy import policy_step
from steps.monitoring.window_profile import window_profile_step


@pipeline
def monitoring_pipeline(spec: Spec, model_version: int, traffic: str = "both", engine: Optional[dict] = None) -> None:
    """Prediction log (and batch rows, by `traffic`) -> window profile -> delayed labels -> four kinds of drift against the
    version's references -> continuous-training decision and drift report -> alert."""
    references = version_artifacts(spec.problem.name, model_version, REFERENCES)
    window_profile, window = window_profile_step(spec=spec, model_version=model_version, traffic=traffic, engine=engine)
    labelled, label_report = join_labels_step(window=window, spec=spec)
    status = drift_step(window_profile=window_profile, window=window,
                        reference_data_profile=references[Artifact.REFERENCE_DATA_PROFILE],
                        reference_prediction_profile=references[Artifact.REFERENCE_PREDICTION_PROFILE],
                        reference_summary=references[Artifact.REFERENCE_SUMMARY],
                        labelled_predictions=labelled, label_report=label_report, spec=spec)
    decision, _ = policy_step(drift_status=status, label_report=label_report, spec=spec, model_version=model_version)
    alert_step(drift_status=status, retraining_decision=decision, spec=spec)

from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.monitoring.alerts import alert_message, send_alert
from keel.spec.models import Spec


@step(enable_cache=False)
def alert_step(drift_status: dict, retraining_decision: dict,
               spec: Spec) -> Annotated[dict, Artifact.ALERT_OUTCOME]:
    """Alert on drift or a fired trigger: the log by default, or the spec's webhook."""
    message = alert_message(spec.problem.name, drift_status.get("model_version"), drift_status, retraining_decision)
    return send_alert(message, spec.monitoring.alerter)

from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.clock import utc_now
from keel.monitoring.alerts import alert_message, deliver_alert
from keel.monitoring.monitor import monitoring_folder
from keel.spec.models import Spec


@step(enable_cache=False)
def alert_step(drift_status: dict, retraining_decision: dict,
               spec: Spec) -> Annotated[dict, Artifact.ALERT_OUTCOME]:
    """Alert on drift or a fired trigger: the log by default, or the spec's webhook; an alert saying what the
    last delivered one said is held back for monitoring.alerter.repeat_after_hours. Out: where it went."""
    message = alert_message(spec.problem.name, drift_status.get("model_version"), drift_status, retraining_decision)
    return deliver_alert(message, spec.monitoring.alerter, monitoring_folder(spec) / "last_alert.json", utc_now())

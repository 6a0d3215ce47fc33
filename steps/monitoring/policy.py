from typing import Tuple

from typing_extensions import Annotated
from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.governance.events import record_retraining_decision
from keel.monitoring.monitor import decide_and_record
from keel.monitoring.report import drift_report_html
from keel.spec.models import Spec


@step(enable_cache=False)
def policy_step(drift_status: dict, label_report: dict, spec: Spec, model_version: int) -> Tuple[
    Annotated[dict, Artifact.RETRAINING_DECISION],
    Annotated[HTMLString, Artifact.DRIFT_REPORT],
]:
    """Apply the continuous-training policy; record the decision with its evidence (decisions file,
    status file, run metadata); render the drift report with the decision."""
    from zenml.client import Client

    created = Client().get_model_version(spec.problem.name, model_version).created
    decision = decide_and_record(spec, drift_status, label_report, created, model_version)
    run_id = get_step_context().pipeline_run.id
    record_retraining_decision(spec.problem.name, model_version, run_id, decision)
    log_metadata(metadata={"retraining_decision": decision, "drift_verdict": drift_status["verdict"]},
                 run_id_name_or_prefix=run_id)
    return decision, HTMLString(drift_report_html(drift_status, decision))

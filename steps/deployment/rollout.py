from typing import Optional, Tuple

from typing_extensions import Annotated
from zenml import get_step_context, step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.deployment.deploy import check_deployable, deploy, deployment_folder
from keel.deployment.lock import service_lock
from keel.deployment.recovery import finish_interrupted_rollout, local_trail
from keel.deployment.report import rollout_html
from keel.governance.audit import record_event
from keel.governance.events import routing_recorder
from keel.lifecycle.approval import approval_in_force
from keel.registration import APPROVAL
from keel.registry import (evaluation_outcome, get_model_version_metadata, load_version_model, production_version,
                           promote_to_production, record_deployment, version_artifacts)
from keel.spec.models import Spec


@step(enable_cache=False)
def rollout_step(spec: Spec, model_version: int, strategy: Optional[str] = None, actor: Optional[str] = None) -> Tuple[
    Annotated[dict, Artifact.ROLLOUT_EVIDENCE],
    Annotated[HTMLString, Artifact.ROLLOUT_TIMELINE_HTML],
]:
    """Roll a version that passed evaluation out by the spec's strategy, with a health check and hold
    between stages and automatic rollback; on success (and approval) it becomes the production
    version. Without its approval record the challenger never takes all the traffic. A side effect,
    so never cached. `actor` (who deploys) is recorded with every routing change. Out: the evidence of
    every stage."""
    if strategy:
        spec = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"strategy": strategy})})
    name = spec.problem.name
    folder = deployment_folder(spec)
    # `deploy` holds the lock already (re-entrant); a pipeline run on its own takes it here.
    with service_lock(folder, "deploy"):
        finish_interrupted_rollout(spec, actor)
        evaluation = evaluation_outcome(name, model_version)
        check_deployable(model_version, evaluation, spec)
        production = production_version(name)
        champion = None if production == model_version else production
        versions = [model_version] + ([champion] if champion is not None else [])
        models = {v: load_version_model(name, v) for v in versions}
        thresholds = {v: float(evaluation_outcome(name, v)["threshold"]) for v in versions}
        linked = version_artifacts(name, model_version, [Artifact.TEST, Artifact.VALIDATION])
        # SHAP's background: validation
        probe_rows, background = linked[Artifact.TEST].load(), linked[Artifact.VALIDATION].load()
        approval = approval_in_force(spec.governance, name, model_version,
                                     get_model_version_metadata(name, model_version).get(APPROVAL))
        run_id = get_step_context().pipeline_run.id
        audit = routing_recorder(name, model_version, run_id, folder, actor=actor)
        result = deploy(spec, model_version, champion, models, thresholds, probe_rows, approval, on_routing=audit,
                        background=background, promote=lambda: promote_to_production(name, model_version),
                        on_event=lambda event, details: record_event(event, name, model_version, run_id, actor=actor,
                                                                     details=details),
                        trail=local_trail(name), already_production=production == model_version)
        if actor:
            result["by"] = actor
        record_deployment(name, model_version, {k: v for k, v in result.items() if k != "stages"}
                          | {"stages": [{k: s[k] for k in ("stage", "step", "healthy", "breaches")}
                                        for s in result["stages"]]})
    return result, HTMLString(rollout_html(result))

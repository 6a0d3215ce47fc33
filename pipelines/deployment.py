from typing import Optional

from zenml import pipeline

from keel.spec.models import Spec
from keel.deployment.deploy import deployment_folder
from steps.deployment.curate_registry_view import curate_registry_view_step
from steps.deployment.package import package_step
from steps.deployment.registry_view import registry_view_step
from steps.deployment.rollout import rollout_step


@pipeline
def deployment_pipeline(spec: Spec, model_version: int, strategy: Optional[str] = None,
                        actor: Optional[str] = None) -> None:
    """Bundle -> service answering on 127.0.0.1 -> staged rollout with health checks -> promote or roll
    back -> the version's Bento and Kubernetes manifests -> the model registry page, pinned to the
    run, the pipeline and the model (curated visualizations). `actor` (`deploy --by`) is recorded as
    who changed the routing."""
    evidence, _ = rollout_step(spec=spec, model_version=model_version, strategy=strategy, actor=actor)
    package_step(rollout_evidence=evidence, bundle_folder=str(deployment_folder(spec)), model_name=spec.problem.name,
                 model_version=model_version, api_key_env=spec.deployment.api_key_env)
    registry = registry_view_step(model_name=spec.problem.name, after="package_step")
    curate_registry_view_step(model_registry_html=registry, model_name=spec.problem.name)

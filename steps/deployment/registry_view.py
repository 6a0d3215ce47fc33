from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.registry import list_model_versions
from keel.reports.registry_view import registry_html


@step(enable_cache=False)
def registry_view_step(model_name: str) -> Annotated[HTMLString, Artifact.MODEL_REGISTRY_HTML]:
    """The model registry as it stands after this run: every version with its stage, metrics, gate
    outcomes, approval and deployment (the open-source dashboard has no model pages). Reads live
    state, so never cached."""
    return HTMLString(registry_html(model_name, list_model_versions(model_name)))

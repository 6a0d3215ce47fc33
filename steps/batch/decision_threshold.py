from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.lifecycle.batch import version_threshold
from keel.spec.models import Spec


@step(enable_cache=False)
def batch_threshold_step(spec: Spec, model_version: int) -> Annotated[float, Artifact.DECISION_THRESHOLD]:
    """The version's decision threshold, once its registration completed and its latest evaluation is
    deployable (what the service decides with); fails naming why not otherwise."""
    return version_threshold(spec, model_version)

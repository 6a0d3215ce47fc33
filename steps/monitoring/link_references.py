from zenml import get_step_context, step

from keel.monitoring.profiles import Profile
from keel.registry import link_artifacts


@step(enable_cache=False)
def link_references_step(reference_data_profile: Profile, reference_prediction_profile: Profile,
                         reference_summary: dict, model_name: str, model_version: int) -> None:
    """Link the reference profiles to the model version: the monitor finds them there."""
    references = [artifact.id for inputs in get_step_context().inputs.values() for artifact in inputs]
    link_artifacts(model_name, model_version, references)

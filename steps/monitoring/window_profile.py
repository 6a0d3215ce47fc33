from typing import Optional, Tuple

from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.monitoring.monitor import update_window
from keel.monitoring.profiles import Profile
from keel.spec.models import Spec
from steps.monitoring.profile_materializer import ProfileMaterializer


@step(enable_cache=False, output_materializers={Artifact.WINDOW_PROFILE: ProfileMaterializer})
def window_profile_step(spec: Spec, model_version: int, traffic: str = "both", engine: Optional[dict] = None) -> Tuple[
    Annotated[Profile, Artifact.WINDOW_PROFILE],
    Annotated[dict, Artifact.WINDOW],
]:
    """Profile the predictions served since the last run (per hour and version, in the deployment
    folder), then merge the judged window (the spec's hour/day/week) from the stored hours, of the
    judged traffic (online, batch or both). `engine`: the stack's dask engine profiles the log on its
    workers (None: local)."""
    profile, window = update_window(spec, model_version, traffic=traffic, engine=engine)
    return profile, window

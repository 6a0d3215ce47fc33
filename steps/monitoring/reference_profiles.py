from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.monitoring.profiles import Profile
from keel.monitoring.reference import reference_profiles
from keel.spec.models import Spec
from steps.monitoring.profile_materializer import ProfileMaterializer


@step(output_materializers={Artifact.REFERENCE_DATA_PROFILE: ProfileMaterializer,
                            Artifact.REFERENCE_PREDICTION_PROFILE: ProfileMaterializer})
def reference_profiles_step(model: Any, train: pd.DataFrame, test: pd.DataFrame, decision_threshold: dict,
                            spec: Spec) -> Tuple[
    Annotated[Profile, Artifact.REFERENCE_DATA_PROFILE],
    Annotated[Profile, Artifact.REFERENCE_PREDICTION_PROFILE],
    Annotated[dict, Artifact.REFERENCE_SUMMARY],
]:
    """Profiles monitoring compares production with: the training rows (features and label), and
    the served model's scores and decisions on its test split; plus the test metrics, the decision
    rate and the training label rate."""
    data, predictions, summary = reference_profiles(model, train, test, float(decision_threshold["threshold"]), spec)
    return data, predictions, summary

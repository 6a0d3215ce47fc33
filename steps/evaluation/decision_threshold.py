from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.evaluation.suite import decision_model
from keel.spec.models import Spec


@step
def decision_threshold_step(model: Any, validation: pd.DataFrame, spec: Spec) -> Tuple[
    Annotated[Any, Artifact.SCORING_MODEL],
    # A keel.evaluation.decisions.ChosenThreshold, declared `dict` here and in the steps that read it:
    # ZenML checks outputs with isinstance and inputs with issubclass, which a TypedDict refuses.
    Annotated[dict, Artifact.DECISION_THRESHOLD],
]:
    """Choose the decision threshold (and optional post-hoc calibration) on validation data only.

    Out: the model that scores (calibrated or not) and its ChosenThreshold.
    """
    scoring_model, threshold = decision_model(model, validation, spec)
    return scoring_model, threshold

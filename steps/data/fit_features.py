from typing import Any

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.features.preprocessing import fit_preprocessor
from keel.spec.data import DataSpec


@step
def fit_features_step(train: pd.DataFrame, data: DataSpec) -> Annotated[Any, Artifact.FEATURE_PIPELINE]:
    """Fit imputation, scaling and encoding on the training split only (no leakage)."""
    return fit_preprocessor(train, data)

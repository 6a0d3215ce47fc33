from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.spec.data import DataSpec
from keel.spec.training import TrainingSpec
from keel.training.fit import fit_baseline


@step
def train_baseline_step(feature_pipeline: Any, train: pd.DataFrame, validation: pd.DataFrame,
                        data: DataSpec, training: TrainingSpec) -> Tuple[
    Annotated[Any, Artifact.BASELINE_MODEL],
    Annotated[dict, Artifact.BASELINE_SUMMARY],
]:
    """Logistic regression on the shared features: the bar every candidate must clear.

    Out: the fitted pipeline and {name, params, validation_metrics}.
    """
    fitted = fit_baseline(feature_pipeline, train, validation, data, training)
    return fitted.pipeline, {"name": fitted.name, "params": fitted.params,
                             "validation_metrics": fitted.validation_metrics}

from dataclasses import asdict
from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import log_metadata, step

from keel.artifacts import Artifact
from keel.spec.data import DataSpec
from keel.spec.training import TrainingSpec
from keel.training.fit import fit_candidate


@step
def search_candidate_step(feature_pipeline: Any, train: pd.DataFrame, validation: pd.DataFrame,
                          data: DataSpec, training: TrainingSpec) -> Tuple[
    Annotated[Any, Artifact.CANDIDATE_MODEL],
    Annotated[dict, Artifact.CANDIDATE_SUMMARY],
    Annotated[list, Artifact.SEARCH_TRIALS],
]:
    """Seeded random search over the spec's LightGBM space, scored on validation data.

    Every trial (parameters, validation score, fit time) is kept as an artifact and as step metadata.
    """
    fitted, trials = fit_candidate(feature_pipeline, train, validation, data, training)
    records = [asdict(trial) for trial in trials]
    log_metadata(metadata={"trials": records, "primary_metric": training.primary_metric})
    summary = {"name": fitted.name, "params": fitted.params,
               "validation_metrics": fitted.validation_metrics}
    return fitted.pipeline, summary, records

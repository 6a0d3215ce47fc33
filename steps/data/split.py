from typing import Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.data.split import split_frame
from keel.spec.data import DataSpec, SplitSpec


@step
def split_step(validated_data: pd.DataFrame, split: SplitSpec, data: DataSpec) -> Tuple[
    Annotated[pd.DataFrame, Artifact.TRAIN],
    Annotated[pd.DataFrame, Artifact.VALIDATION],
    Annotated[pd.DataFrame, Artifact.TEST],
]:
    """Split rows by the spec's strategy (random or time); no row appears twice.

    The test split is recorded here and used only by evaluation, never for selection.
    """
    train, validation, test = split_frame(validated_data, split, data.target.column, data.time_column)
    return train, validation, test  # a literal tuple: ZenML reads it as three artifacts

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.data.sources import load_frame
from keel.spec.data import DataSpec


@step
def ingest_step(data: DataSpec, source_stamp: str) -> Annotated[pd.DataFrame, Artifact.RAW_DATA]:
    """Read the spec's data source as it is.

    `source_stamp` changes whenever the source changed (the SHA-256 of a file's bytes, or every run
    for SQL), so a cached result is never served for different data.
    """
    return load_frame(data)

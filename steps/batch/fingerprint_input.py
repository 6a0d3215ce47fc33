from typing import Optional

from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.batch.inputs import batch_source, fingerprint_input
from keel.spec.data import DataSpec


@step(enable_cache=False)
def fingerprint_input_step(location: str, query: Optional[str], data: DataSpec) -> Annotated[str, Artifact.INPUT_FINGERPRINT]:
    """SHA-256 of what the batch reads (a file's bytes, a directory's files, a query's rows): the
    batch's identity for lineage and re-run detection. Never cached: the input may change in place."""
    return fingerprint_input(batch_source(location, data, query))

import pandas as pd
from typing_extensions import Annotated
from zenml import log_metadata, step

from keel.artifacts import Artifact
from keel.governance.data_versions import data_root, store_data_version


@step(enable_cache=False)
def store_data_version_step(validated_data: pd.DataFrame, data_fingerprint: str,
                            model_name: str) -> Annotated[str, Artifact.DATA_VERSION_URI]:
    """Keep the training run's validated rows as a Parquet file addressed by their content fingerprint
    (stored once per distinct content, under the active artifact store). Out: its URI.

    Never cached: the file is checked for (and written if missing) on every run."""
    uri, written = store_data_version(validated_data, data_fingerprint, data_root(model_name))
    log_metadata(metadata={"data_fingerprint": data_fingerprint, "rows": len(validated_data), "newly_stored": written},
                 infer_artifact=True, artifact_name=Artifact.DATA_VERSION_URI)
    return uri

"""The champion's training rows, read from its version's linked `train` split: what the champion/challenger
comparison leaves out of the challenger's test split (keel.evaluation.suite.compared_rows)."""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import pandas as pd

from keel.artifacts import Artifact
from keel.evaluation.comparison import row_key, row_keys
from keel.registration import ENGINE
from keel.registry import version_artifacts
from keel.spec.data import DataSpec

PARQUET_FILE = "df.parquet.gzip"  # where ZenML's pandas materializer stores a frame, in its artifact's folder
BATCH_ROWS = 100_000


def _parquet_path(artifact) -> Optional[str]:
    from zenml.io import fileio

    path = f"{str(artifact.uri).rstrip('/')}/{PARQUET_FILE}"
    return path if fileio.exists(path) else None


def _keys_of_batches(batches: Iterator[pd.DataFrame], key: dict) -> np.ndarray:
    """The distinct keys of every batch's rows: a batch is dropped once its keys are taken."""
    distinct = [np.unique(row_keys(batch, key)) for batch in batches]
    return np.unique(np.concatenate(distinct)) if distinct else np.array([], dtype=object)


def _training_keys(artifact, data: DataSpec) -> dict:
    """{"key", "keys"} of a training split artifact, or {"why"}. A parquet frame is read column by column
    and in batches (a champion trained on a million rows is never one frame here); anything else is
    loaded whole and dropped once its keys are taken."""
    path = _parquet_path(artifact)
    if path is None:
        frame = artifact.load()
        key = row_key(data.id_column, data.features, data.target.column, frame.columns)
        return {"why": key["why"]} if key["by"] is None else {"key": key, "keys": _keys_of_batches(iter([frame]), key)}
    import pyarrow.parquet as pq
    from zenml.io import fileio

    with fileio.open(path, "rb") as stream:
        parquet = pq.ParquetFile(stream)
        key = row_key(data.id_column, data.features, data.target.column, parquet.schema_arrow.names)
        if key["by"] is None:
            return {"why": key["why"]}
        batches = (b.to_pandas() for b in parquet.iter_batches(batch_size=BATCH_ROWS, columns=key["columns"]))
        return {"key": key, "keys": _keys_of_batches(batches, key)}


def _sampled(trained: dict, engine: Optional[dict]) -> dict:
    """The dask engine links a sample of the training split: the rows outside it cannot be matched."""
    engine = engine or {}
    sample, whole = (engine.get("sample_rows") or {}).get("train"), (engine.get("rows") or {}).get("train")
    if "keys" not in trained or sample is None or whole is None or int(sample) >= int(whole):
        return trained
    text = (f"{trained['key']['text']}, against the {sample}-row sample of its {whole} training rows the dask engine "
            "keeps: more test rows may be training rows")
    return {**trained, "key": {**trained["key"], "text": text}}


def champion_training_rows(model_name: str, champion: dict, data: DataSpec) -> dict:
    """The champion's training rows as `keel.evaluation.suite.compared_rows` takes them: {"key", "keys"}
    from its version's `train` split artifact, or {"why"} they could not be read (an older version, an
    artifact missing): the comparison then uses every test row and says the overlap was not checked."""
    version = champion["number"]
    try:
        artifact = version_artifacts(model_name, version, [Artifact.TRAIN])[Artifact.TRAIN]
    except LookupError as error:
        return {"why": str(error)}
    try:
        trained = _training_keys(artifact, data)
    except Exception as error:  # unreadable evidence of the overlap: compared as before, and said so
        return {"why": f"{model_name} v{version}'s training split could not be read ({type(error).__name__}: {error})"}
    return _sampled(trained, champion.get("metadata", {}).get(ENGINE))

"""Delayed labels: read (entity id, label, time) from a CSV file or a SQL table and join them to the
served predictions. Labels nobody predicted for, labels dated before their prediction and duplicate
labels are counted and shown, never fatal."""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Tuple, Union

import pandas as pd

from keel.spec.monitoring import CsvLabels, LabelsSpec, SqlLabels


class LabelsError(ValueError):
    """The label source cannot be read or lacks a column; the message names the source and the key."""


def read_labels(spec: LabelsSpec, positive: Union[int, str] = 1) -> pd.DataFrame:
    """Columns entity_id (str), label (1 = the spec's positive class, else 0), label_time (UTC)."""
    source = spec.source
    if source is None:
        return pd.DataFrame({"entity_id": pd.Series([], dtype=object), "label": pd.Series([], dtype=int),
                             "label_time": pd.Series([], dtype="datetime64[ns, UTC]")})
    where = _describe(source)
    try:
        if isinstance(source, CsvLabels):
            raw = pd.read_csv(source.path, dtype={spec.id_column: str}, engine="pyarrow")  # multi-threaded
        else:
            import sqlalchemy as sa

            engine = sa.create_engine(source.url)
            with engine.connect() as connection:
                raw = pd.read_sql(sa.text(source.query), connection)
            engine.dispose()
    except FileNotFoundError:
        raise LabelsError(f"monitoring.labels.source.path: no such file {source.path}") from None
    except Exception as error:  # a bad file or query: one readable message
        raise LabelsError(f"{where}: cannot be read ({type(error).__name__}: {error})") from None
    missing = [key for key, column in (("id_column", spec.id_column), ("label_column", spec.label_column),
                                       ("time_column", spec.time_column)) if column not in raw.columns]
    if missing:
        raise LabelsError(f"{where}: no column for monitoring.labels.{missing[0]} "
                          f"({getattr(spec, missing[0])!r}); found columns {list(raw.columns)}")
    times = _times(raw[spec.time_column])
    return pd.DataFrame({"entity_id": raw[spec.id_column].astype(str),
                         "label": (raw[spec.label_column].astype(str) == str(positive)).astype(int),
                         "label_time": times})


def _times(values: pd.Series) -> pd.Series:
    """UTC times: ISO 8601 in one vectorised pass; whatever it cannot read is parsed value by value
    (mixed formats), and what still fails becomes NaT (reported as unreadable)."""
    times = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    missed = times.isna() & values.notna()
    if missed.any():
        times[missed] = pd.to_datetime(values[missed], utc=True, errors="coerce", format="mixed")
    return times


def _describe(source: Union[CsvLabels, SqlLabels]) -> str:
    if isinstance(source, CsvLabels):
        return f"labels file {source.path}"
    from keel.data.sources import _redacted

    return f"labels query on {_redacted(source.url)}"


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame,
                new_since: Optional[datetime] = None) -> Tuple[pd.DataFrame, dict]:
    """Labelled predictions (the latest prediction per entity, its first label) and a report:
    labels matched, labels for ids never predicted (late labels for unknown ids), labels dated
    before their prediction, duplicates, unreadable times, and how many arrived after `new_since`."""
    report = {"labels": int(len(labels)), "matched": 0, "unknown_ids": 0, "unknown_examples": [],
              "before_prediction": 0, "duplicates": 0, "unreadable_times": 0, "new_labelled_rows": 0}
    labelled = predictions.iloc[0:0].assign(label=pd.Series([], dtype=int),
                                            label_time=pd.Series([], dtype="datetime64[ns, UTC]"))
    if labels.empty:
        return labelled, report
    report["unreadable_times"] = int(labels["label_time"].isna().sum())
    labels = labels.dropna(subset=["label_time"])
    report["duplicates"] = int(labels.duplicated("entity_id").sum())
    labels = labels.sort_values("label_time").drop_duplicates("entity_id", keep="first")
    latest = predictions.sort_values("time").drop_duplicates("entity_id", keep="last")
    known = labels["entity_id"].isin(latest["entity_id"])
    report["unknown_ids"] = int((~known).sum())
    report["unknown_examples"] = labels.loc[~known, "entity_id"].head(5).tolist()
    joined = latest.merge(labels[known], on="entity_id", how="inner")
    early = joined["label_time"] < joined["time"]
    report["before_prediction"] = int(early.sum())
    joined = joined[~early].reset_index(drop=True)
    report["matched"] = int(len(joined))
    if new_since is not None:
        report["new_labelled_rows"] = int((joined["label_time"] > pd.Timestamp(new_since)).sum())
    else:
        report["new_labelled_rows"] = report["matched"]
    return joined, report

"""Delayed labels: read (entity id, label, time) from a CSV file or a SQL table and join them to the
served predictions. Labels nobody predicted for, labels dated before their prediction, duplicate
labels, empty labels and label values that are neither class are counted and shown, never fatal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import pandas as pd

from keel.data.schema import target_codes
from keel.monitoring.records import LabelReport
from keel.spec.monitoring import CsvLabels, LabelsSpec, SqlLabels
from keel.spec.reading import CsvReading

EXAMPLES = 5  # how many offending ids or values a report shows


class LabelsError(ValueError):
    """The label source cannot be read or lacks a column; the message names the source and the key."""


class LabelsNotFound(LabelsError):
    """The labels file does not exist (yet: before the first outcome is exported, or a wrong path)."""


def no_labels() -> pd.DataFrame:
    """`read_labels`' columns without a row."""
    return pd.DataFrame({"entity_id": pd.Series([], dtype=object), "label": pd.Series([], dtype="Int64"),
                         "label_value": pd.Series([], dtype=object),
                         "label_time": pd.Series([], dtype="datetime64[ns, UTC]"),
                         "label_by_day": pd.Series([], dtype=bool)})


def read_labels(spec: LabelsSpec, positive: Union[int, str] = 1, negative: Union[int, str] = 0) -> pd.DataFrame:
    """Columns entity_id (str), label (nullable Int64: 1 = the spec's positive class, 0 = its negative
    class, <NA> = empty or another value), label_value (the text as read; None when empty), label_time
    (UTC; a day alone reads as its midnight) and label_by_day (the time named a day, not a time of day).
    Unusable rows are kept so that `join_labels` can count them."""
    source = spec.source
    if source is None:
        return no_labels()
    where = _describe(source)
    try:
        if isinstance(source, CsvLabels):
            raw = read_csv_as_text(source)
        else:
            import sqlalchemy as sa

            engine = sa.create_engine(source.url)
            with engine.connect() as connection:
                raw = pd.read_sql(sa.text(source.query), connection)
            engine.dispose()
    except FileNotFoundError:
        raise LabelsNotFound(f"monitoring.labels.source.path: no such file {source.path}") from None
    except Exception as error:  # a bad file or query: one readable message
        raise LabelsError(f"{where}: cannot be read ({type(error).__name__}: {error})") from None
    missing = [key for key, column in (("id_column", spec.id_column), ("label_column", spec.label_column),
                                       ("time_column", spec.time_column)) if column not in raw.columns]
    if missing:
        from keel.data.sources import columns_found_note

        columns = [getattr(spec, key) for key in missing]
        raise LabelsError(f"{where}: no column for monitoring.labels.{missing[0]} "
                          f"({getattr(spec, missing[0])!r}); "
                          + columns_found_note(raw.columns, columns, "monitoring.labels.source"))
    ids = raw[spec.id_column]
    values = _label_text(raw[spec.label_column])
    times = raw[spec.time_column]
    return pd.DataFrame({"entity_id": ids.where(ids.isna(), ids.astype(str)),
                         "label": label_codes(_normalised(values, spec, positive, negative), positive, negative),
                         "label_value": values,
                         "label_time": _times(times, spec.time_format),
                         "label_by_day": _dated_by_day(times, spec.time_format).to_numpy()})


def _normalised(values: pd.Series, spec: LabelsSpec, positive, negative) -> pd.Series:
    """The label text compared with the classes: the declared `strip_suffix`, then `label_map`; a CSV's
    `decimal` mark is read as a point when the classes are numbers. Nothing else is changed."""
    present = values.notna()
    text = values.copy()
    if spec.strip_suffix:
        text[present] = [value.removesuffix(spec.strip_suffix) for value in text[present]]
    if spec.label_map:
        text[present] = [spec.label_map.get(value, value) for value in text[present]]
    decimal = getattr(spec.source, "decimal", ".")
    numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in (positive, negative))
    if decimal != "." and numeric:
        text[present] = [value.replace(decimal, ".") for value in text[present]]
    return text


def read_csv_as_text(source: CsvReading) -> pd.DataFrame:
    """A CSV file (labels, groups) with every column as text: inferred types turn "007" into 7 and, with
    one empty cell, "1" into 1.0. Only empty cells and the declared `na_values` are missing (an id "NA"
    is an id). Arrow's reader (1M rows in ~0.2 s; pandas' C parser ~0.7 s); pandas' reader for a file
    with `comment` lines, which Arrow cannot skip."""
    path = Path(source.path)
    if not path.is_file():
        raise FileNotFoundError(path)
    if source.comment is not None:
        from keel.data.sources import read_csv_arguments

        arguments = {**read_csv_arguments(source), "na_values": ["", *source.na_values], "keep_default_na": False}
        return pd.read_csv(path, dtype=str, **arguments)
    return _read_with_arrow(source)


def _read_with_arrow(source: CsvReading) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as arrow_csv

    from keel.data.sources import first_records

    if source.names is not None:
        names = list(source.names)
    else:  # the header line, split as the options say, so that every column can be read as text
        records = first_records(source, 1)
        names = records[0] if records else []
    table = arrow_csv.read_csv(
        source.path,
        read_options=arrow_csv.ReadOptions(encoding=source.encoding, skip_rows=source.skiprows,
                                           column_names=names, skip_rows_after_names=1 if source.header else 0),
        parse_options=arrow_csv.ParseOptions(delimiter=source.sep),
        convert_options=arrow_csv.ConvertOptions(column_types={name: pa.string() for name in names},
                                                 null_values=[""], strings_can_be_null=True))
    missing = [""] + list(source.na_values)
    columns = []
    for column in table.columns:
        if source.skipinitialspace:
            column = pc.utf8_ltrim(column, characters=" ")
        columns.append(pc.if_else(pc.is_in(column, value_set=pa.array(missing, pa.string())),
                                  pa.scalar(None, pa.string()), column))
    return pa.table(columns, names=table.column_names).to_pandas()


def _label_text(values: pd.Series) -> pd.Series:
    """Labels as stripped text, None where empty (a SQL driver may return numbers, NULL or NaN)."""
    present = values.notna()
    text = pd.Series(None, index=values.index, dtype=object)
    text[present] = values[present].astype(str).str.strip()
    return text.where(text != "", None)


def label_codes(values: pd.Series, positive: Union[int, str], negative: Union[int, str]) -> pd.Series:
    """1 for the positive class, 0 for the negative one, <NA> for anything else (empty included):
    the training data's encoding (`keel.data.schema.target_codes`), so that a delayed label and the
    same outcome in the training data are the same class."""
    return target_codes(values, positive, negative)


def _times(values: pd.Series, time_format: Optional[str]) -> pd.Series:
    """UTC times: ISO 8601, or `time_format` when the spec declares one; whatever does not read so becomes
    NaT (reported as unreadable). Never guessed: "mixed" parsing read 03/12/2026 as 12 March and
    13/12/2026 as 13 December in one file."""
    return pd.to_datetime(values, utc=True, errors="coerce", format=time_format or "ISO8601")


def known_by(labels: pd.DataFrame) -> pd.Series:
    """When each label was known at the latest: its time, or for a time that names a day alone the end of
    that day (an outcome dated the day of its prediction is never taken as dated before it)."""
    if "label_by_day" not in labels.columns:
        return labels["label_time"]
    return labels["label_time"].where(~labels["label_by_day"].astype(bool), labels["label_time"] + END_OF_DAY)


END_OF_DAY = pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
NANOSECONDS_UTC = "datetime64[ns, UTC]"
TIME_OF_DAY_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%X", "%c", "%T", "%R", "%p", "%s", "%z")


def _dated_by_day(values: pd.Series, time_format: Optional[str]) -> pd.Series:
    """Which values name a day without a time of day: all of them under a declared format without a
    time directive; else ISO dates (YYYY-MM-DD) and dates read from SQL. Typed timestamps never."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.Series(False, index=values.index)
    if time_format is not None:
        return pd.Series(not any(d in time_format for d in TIME_OF_DAY_DIRECTIVES), index=values.index)
    return values.astype("string").str.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*").fillna(False).astype(bool)


def _describe(source: Union[CsvLabels, SqlLabels]) -> str:
    if isinstance(source, CsvLabels):
        return f"labels file {source.path}"
    from keel.data.sources import redacted_url

    return f"labels query on {redacted_url(source.url)}"


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame, new_since: Optional[datetime] = None,
                model_version: Optional[int] = None, known_since: Optional[datetime] = None,
                now: Optional[datetime] = None) -> Tuple[pd.DataFrame, LabelReport]:
    """Labelled predictions (each label joined to its prediction by `match_labels`) and a report.

    `predictions`: the log the labels may refer to (all versions; labels arrive late, so not just
    the judged window). Only ids absent from it count as unknown. `model_version`: keep the labels
    of that version's predictions (the others are counted). `known_since`: keep the labels that
    became known from then on (the judged window's start). `now`: a label dated after it is not used
    (counted: a date mistyped, or an outcome not yet known). The report counts labels matched, for
    unknown ids, dated before every prediction of their entity (an earlier outcome), duplicates (later
    labels of a matched prediction; `conflicting`: predictions whose later labels name another class),
    empty labels, values that are neither class, unreadable and future times, labels of other versions
    and how many are dated after `new_since` (a day alone: from its start, so a label is new once)."""
    report: LabelReport = {"labels": int(len(labels)), "matched": 0, "unknown_ids": 0, "unknown_examples": [],
                           "before_prediction": 0, "duplicates": 0, "conflicting": 0, "unreadable_times": 0,
                           "future_times": 0, "missing_ids": 0,
                           "missing_labels": 0, "unknown_label_values": 0, "unknown_value_examples": [],
                           "other_versions": 0, "known_before_window": 0, "new_labelled_rows": 0}
    labelled = predictions.iloc[0:0].assign(label=pd.Series([], dtype=int),
                                            label_time=pd.Series([], dtype="datetime64[ns, UTC]"))
    if labels.empty:
        return labelled[list(predictions.columns) + ["label", "label_time"]], report
    # Ids are hashed once into shared integer keys: every later dedupe, lookup and merge is on integers
    # (on 1M string ids each hashing pass costs ~0.2-0.8 s).
    keys = pd.factorize(pd.concat([predictions["entity_id"], labels["entity_id"]], ignore_index=True))[0]
    predictions = predictions.assign(_key=keys[:len(predictions)], _row=np.arange(len(predictions)))
    labels, report = usable_labels(labels.assign(_key=keys[len(predictions):]), report, now)
    known = labels["_key"].isin(predictions["_key"])
    report["unknown_ids"] = int((~known).sum())
    report["unknown_examples"] = labels.loc[~known, "entity_id"].head(EXAMPLES).tolist()
    matched, early, later = match_labels(predictions, labels[known], "_key")
    report["before_prediction"] = early
    report["duplicates"] = int(len(later))
    first_label = matched.set_index("_row")["label"]
    report["conflicting"] = int(later["_row"].map(first_label).ne(later["label"]).groupby(later["_row"]).any().sum())
    joined = predictions.merge(matched[["_row", "label", "label_time"]], on="_row", how="inner")
    joined = joined.sort_values("_row", kind="stable").drop(columns=["_key", "_row"])
    if model_version is not None:
        mine = joined["model_version"] == model_version
        report["other_versions"] = int((~mine).sum())
        joined = joined[mine]
    since = pd.Timestamp(new_since) if new_since is not None else None
    report["new_labelled_rows"] = int((joined["label_time"] > since).sum()) if since is not None else int(len(joined))
    if known_since is not None:
        current = joined["label_time"] >= pd.Timestamp(known_since)
        report["known_before_window"] = int((~current).sum())
        joined = joined[current]
    joined = joined.assign(label=joined["label"].astype(int)).reset_index(drop=True)
    report["matched"] = int(len(joined))
    return joined, report


def match_labels(predictions: pd.DataFrame, labels: pd.DataFrame,
                 entity: str) -> Tuple[pd.DataFrame, int, pd.DataFrame]:
    """(each labelled prediction's `_row` with its label and label_time, how many labels were dated before
    every prediction of their entity, the later labels of matched predictions).

    A label belongs to the latest prediction of its entity made at or before the label was known
    (`known_by`), and a prediction takes the first label that belongs to it. So an entity scored again (a
    monthly portfolio, a returning customer) never takes an earlier outcome from an append-only table,
    an outcome known between two scorings belongs to the first, and a request retried before its outcome
    is judged once. `predictions`: `_row`, `entity`, `time`; `labels`: `entity`, label, label_time
    (and label_by_day)."""
    if labels.empty or predictions.empty:
        empty = labels.iloc[0:0].assign(_row=pd.Series([], dtype=np.int64))
        return empty, int(len(labels)) if predictions.empty else 0, empty
    # One resolution for both sides: merge_asof refuses to compare microseconds with nanoseconds.
    left = labels.assign(_known=known_by(labels).astype(NANOSECONDS_UTC)).sort_values("_known", kind="stable")
    right = predictions[["_row", entity, "time"]].astype({"time": NANOSECONDS_UTC}).sort_values("time", kind="stable")
    joined = pd.merge_asof(left, right, left_on="_known", right_on="time", by=entity, direction="backward",
                           allow_exact_matches=True)
    belongs = joined["_row"].notna()
    owned = joined[belongs].astype({"_row": np.int64}).sort_values(["_known", "label_time"], kind="stable")
    first = owned.duplicated("_row", keep="first")
    return owned[~first], int((~belongs).sum()), owned[first]


def usable_labels(labels: pd.DataFrame, report: LabelReport,
                   now: Optional[datetime] = None) -> Tuple[pd.DataFrame, LabelReport]:
    """Drop (and count) rows without an id, without a label, with a value that is neither class, with an
    unreadable time or (given `now`) a time after it."""
    no_id = labels["entity_id"].isna()
    report["missing_ids"] = int(no_id.sum())
    labels = labels[~no_id]
    if "label_value" in labels.columns:
        empty = labels["label_value"].isna()
        unknown = labels["label"].isna() & ~empty
        report["missing_labels"] = int(empty.sum())
        report["unknown_label_values"] = int(unknown.sum())
        report["unknown_value_examples"] = sorted(labels.loc[unknown, "label_value"].unique().tolist())[:EXAMPLES]
    labels = labels[labels["label"].notna()]
    report["unreadable_times"] = int(labels["label_time"].isna().sum())
    labels = labels.dropna(subset=["label_time"])
    if now is not None:
        future = labels["label_time"] > pd.Timestamp(now)
        report["future_times"] = int(future.sum())
        labels = labels[~future]
    return labels, report

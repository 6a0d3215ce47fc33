"""The dask engine's data work: read a source lazily as partitions, validate each partition with
keel's pandera schema, fingerprint the validated rows, split them by a hash, sample them.

Parquet (a file, a directory of partitions or a glob; hive folders such as `year=2024/` become
columns exactly as the local reader makes them) is read one row group per Dask partition, on the
workers. Any other source (generator, CSV, SQL) is read here as the local engine reads it, then cut
into partitions of `engine.partition_rows` rows.

Every result depends on the rows (and their order) only, never on how many workers there are or
how the rows are partitioned:
- the verdict and the report: row checks run per partition and are summed (examples in row order);
  the checks on the whole batch (unique ids, both target classes, any rows) run on the whole batch;
- the fingerprint: the local engine's own digest (column names and dtypes, then every row's hash in
  row order), fed partition by partition in order;
- the split: a seeded hash of the id column (of the whole row without one) decides each row's part;
- the samples: a second seeded hash picks the rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keel.data.schema import (CheckFailure, MAX_EXAMPLES, ValidationReport, failures_from, with_spec_dtypes,
                              build_schema, target_codes)
from keel.data.sources import (DataSourceError, columns_found_note, declared_columns, fragment_table, load_frame,
                               one_line, parquet_dataset, parquet_files)
from keel.engine.spec import DaskEngine
from keel.spec.data import DataSpec, FileSource, SplitSpec

PARTS = ("train", "validation", "test")
SAMPLE_SALT = 7919  # the sample's hash differs from the split's (same seed, another key)


# ------------------------------------------------------------------------------------------- reading

def parquet_pieces(source: FileSource, declared: Sequence[str] = ()):
    """(pyarrow dataset, its row-group fragments in file order): the local reader's dataset, cut. Every
    local file must be readable parquet and hold the `declared` columns the other files hold."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    text = str(source.path)
    if text.startswith("s3:/"):  # a Path collapses `s3://`
        uri = "s3://" + text[len("s3:/"):].lstrip("/")
        try:
            dataset = ds.dataset(uri, format="parquet", partitioning="hive")
        except (pa.ArrowException, OSError, ValueError) as error:
            raise DataSourceError(f"{uri}: cannot be read as parquet ({one_line(error)})") from None
    else:
        path = Path(source.path)
        files = parquet_files(path)
        if not files:
            raise DataSourceError(f"{path}: no parquet file there (no match, an empty directory or no such file)")
        try:
            dataset = parquet_dataset(path, files, declared)
        except DataSourceError:
            raise
        except (pa.ArrowException, OSError, ValueError) as error:
            raise DataSourceError(f"{path}: cannot be read as parquet ({one_line(error)})") from None
    try:
        pieces = [piece for fragment in dataset.get_fragments() for piece in fragment.split_by_row_group()]
    except (pa.ArrowException, OSError, ValueError) as error:
        raise DataSourceError(f"{source.path}: cannot be read as parquet ({one_line(error)})") from None
    if not pieces:
        raise DataSourceError(f"{source.path}: no parquet row group to read")
    return dataset, pieces


def _read_piece(piece, schema) -> pd.DataFrame:
    return fragment_table(piece, schema).to_pandas()


def read_partitions(data: DataSpec, engine: DaskEngine):
    """The source as a lazy Dask DataFrame (rows in the local engine's order)."""
    import dask
    import dask.dataframe as dd

    source = data.source
    with dask.config.set({"dataframe.convert-string": False}):  # the dtypes pandas gives locally
        if isinstance(source, FileSource) and source.kind == "parquet":
            dataset, pieces = parquet_pieces(source, declared_columns(data))
            meta = dataset.schema.empty_table().to_pandas()
            return dd.from_map(_read_piece, pieces, schema=dataset.schema, meta=meta,
                               enforce_metadata=False, divisions=None)
        frame = load_frame(data)
        return dd.from_pandas(frame, chunksize=engine.partition_rows, sort=False)


# -------------------------------------------------------------------------------------------- checking

def _partition_schema(data: DataSpec):
    """keel's schema without its checks on the whole batch, which no partition can answer alone."""
    import pandera.pandas as pa

    schema = build_schema(data)
    columns = dict(schema.columns)
    target = data.target.column
    columns[target] = pa.Column(checks=[columns[target].checks[0]], nullable=False)
    if data.id_column:
        columns[data.id_column] = pa.Column(nullable=False)
    return pa.DataFrameSchema(columns, checks=[], strict=False)


@dataclass
class PartitionVerdict:
    """What one partition contributes: its rows, its failures, the counts of each target class, the
    hashes of its ids (for duplicates across partitions) and, if it passed, its row hashes."""

    rows: int
    failures: List[CheckFailure]
    target_counts: Dict[int, int]
    id_hashes: Optional[np.ndarray]
    header: Optional[str]
    row_hashes: Optional[bytes]


def _header(frame: pd.DataFrame) -> str:
    return "".join(f"{name}:{dtype}\n" for name, dtype in frame.dtypes.items())


def validate_partition(frame: pd.DataFrame, data: DataSpec) -> Tuple[pd.DataFrame, List[CheckFailure]]:
    """One partition in the spec's dtypes, and its failures of the row checks: what
    keel.data.schema.validate_frame does, with the partition's schema (as pandera's own Dask support
    does, a `map_partitions` of the schema; keel's adds the whole-batch checks and the report)."""
    import pandera.errors

    try:
        validated = _partition_schema(data).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        failures = failures_from(error, len(frame))
        missing = [f.column for f in failures if f.check == "the column is missing"]
        if missing:
            first = next(i for i, f in enumerate(failures) if f.check == "the column is missing")
            failures[first] = CheckFailure(missing[0], "the column is missing; "
                                           + columns_found_note(frame.columns, missing), 0, [])
        return frame, failures
    return with_spec_dtypes(validated, data), []


def inspect_partition(frame: pd.DataFrame, data: DataSpec) -> PartitionVerdict:
    validated, failures = validate_partition(frame, data)
    target = data.target
    counts: Dict[int, int] = {}
    if target.column in frame:
        codes = target_codes(frame[target.column], target.positive, target.negative).dropna()
        counts = {int(code): int(n) for code, n in codes.value_counts().items()}
    ids = None
    if data.id_column and data.id_column in frame:
        ids = pd.util.hash_pandas_object(frame[data.id_column].dropna(), index=False).to_numpy()
    if failures:
        return PartitionVerdict(len(frame), failures, counts, ids, None, None)
    hashes = pd.util.hash_pandas_object(validated, index=False, categorize=True).to_numpy().tobytes()
    return PartitionVerdict(len(frame), failures, counts, ids, _header(validated), hashes)


def _merge_failures(verdicts: List[PartitionVerdict]) -> List[CheckFailure]:
    merged: Dict[Tuple[str, str], CheckFailure] = {}
    for verdict in verdicts:
        for failure in verdict.failures:
            key = (failure.column, failure.check.split(" (")[0])
            if key not in merged:
                merged[key] = failure
                continue
            seen = merged[key]
            examples = list(dict.fromkeys(seen.examples + failure.examples))[:MAX_EXAMPLES]
            merged[key] = CheckFailure(seen.column, seen.check, seen.failing_rows + failure.failing_rows, examples)
    return list(merged.values())


def _batch_failures(verdicts: List[PartitionVerdict], data: DataSpec, ids: Optional[pd.Series]) -> List[CheckFailure]:
    """The checks on the whole batch, worded as the local engine's schema words them."""
    schema = build_schema(data)
    rows = sum(v.rows for v in verdicts)
    found: List[CheckFailure] = []
    if ids is not None:
        duplicated = ids[ids.duplicated(keep=False)]
        if len(duplicated):
            found.append(CheckFailure(data.id_column, "duplicate ids", int(len(duplicated)),
                                      [str(v) for v in pd.unique(duplicated)[:MAX_EXAMPLES]]))
    classes = {code for v in verdicts for code, n in v.target_counts.items() if n}
    if rows and len(classes) == 1:
        name = schema.columns[data.target.column].checks[1].name
        found.append(CheckFailure(data.target.column, name, rows, []))
    if rows == 0:
        found.append(CheckFailure("(whole batch)", schema.checks[0].name, 0, []))
    return found


@dataclass
class DaskValidation:
    report: ValidationReport
    fingerprint: Optional[str]  # None when the batch failed
    partitions: int


def validate_and_fingerprint(client, frame, data: DataSpec) -> DaskValidation:
    """Validate every partition on the workers and fingerprint the validated rows, in one pass.

    The partitions' row hashes are gathered one at a time, in order, into one SHA-256: the client
    holds 8 bytes per row of a single partition at most.
    """
    from dask import delayed

    parts = frame.to_delayed()
    futures = client.compute([delayed(inspect_partition)(part, data) for part in parts])
    digest = hashlib.sha256()
    verdicts: List[PartitionVerdict] = []
    duplicates_ids = []
    for future in futures:  # in partition order
        verdict = future.result()
        future.release()
        if not verdicts and verdict.header is not None:
            digest.update(verdict.header.encode())
        if verdict.row_hashes is not None and not any(v.failures for v in verdicts):
            digest.update(verdict.row_hashes)
        duplicates_ids.append(verdict.id_hashes)
        verdicts.append(PartitionVerdict(verdict.rows, verdict.failures, verdict.target_counts, None,
                                         verdict.header, None))
    ids = None
    if data.id_column and all(h is not None for h in duplicates_ids):
        ids = pd.Series(np.concatenate(duplicates_ids)) if duplicates_ids else pd.Series([], dtype="uint64")
    failures = _merge_failures(verdicts) + _batch_failures(verdicts, data, ids)
    failures = [_with_id_examples(client, frame, data, f) if f.check == "duplicate ids" else f for f in failures]
    columns = len(frame.columns)
    report = ValidationReport(sum(v.rows for v in verdicts), columns, failures)
    headers = {v.header for v in verdicts if v.header is not None}
    if len(headers) > 1:  # partitions that validate to different dtypes cannot make one frame
        report = ValidationReport(report.rows, columns, failures + [CheckFailure(
            "(whole batch)", "partitions disagree on column types (e.g. a column empty in one file)", 0, [])])
    return DaskValidation(report, None if report.failures else digest.hexdigest(), len(parts))


def _ids_with_hashes(part: pd.DataFrame, column: str, wanted: np.ndarray) -> pd.Series:
    ids = part[column].dropna()
    return ids[np.isin(pd.util.hash_pandas_object(ids, index=False).to_numpy(), wanted)]


def _with_id_examples(client, frame, data: DataSpec, failure: CheckFailure) -> CheckFailure:
    """Duplicates are found by the ids' hashes; the examples show the ids themselves (in row order)."""
    from dask import delayed

    wanted = np.array([int(h) for h in failure.examples], dtype=np.uint64)
    found = client.gather(client.compute([delayed(_ids_with_hashes)(part, data.id_column, wanted)
                                          for part in frame.to_delayed()]))
    values = pd.concat(found) if found else pd.Series([], dtype=object)
    return CheckFailure(failure.column, failure.check, failure.failing_rows,
                        [str(v) for v in pd.unique(values)[:MAX_EXAMPLES]])


def _cast(part: pd.DataFrame, data: DataSpec) -> pd.DataFrame:
    return validate_partition(part, data)[0]


def validated_partitions(frame, data: DataSpec) -> list:
    """The rows in the spec's dtypes, one delayed partition each (only meaningful after the batch
    passed). Plain delayed tasks of keel's own functions: nothing but data crosses to the workers."""
    from dask import delayed

    return [delayed(_cast)(part, data) for part in frame.to_delayed()]


# ------------------------------------------------------------------------------------- split and sample

def _seed_mix(seed: int, salt: int = 0) -> np.uint64:
    return np.uint64((seed * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9 + 1) % (1 << 64))


def unit_hash(part: pd.DataFrame, data: DataSpec, seed: int, salt: int = 0) -> np.ndarray:
    """A number in [0, 1) per row from a seeded hash of its id (of the whole row without an id)."""
    values = part[data.id_column] if data.id_column else part
    # pandas' hash key only reaches text; the seed is mixed into every value's hash instead.
    hashed = pd.util.hash_pandas_object(values, index=False, categorize=True).to_numpy()
    mixed = pd.util.hash_array(hashed ^ _seed_mix(seed, salt))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_parts(part: pd.DataFrame, data: DataSpec, split: SplitSpec,
                 time_cuts: Optional[Tuple[object, object]] = None) -> np.ndarray:
    """0 train, 1 validation, 2 test for each row of a partition."""
    if split.strategy == "time":
        times = part[data.time_column]
        return np.where(times < time_cuts[0], 0, np.where(times < time_cuts[1], 1, 2))
    u = unit_hash(part, data, split.seed)
    train_end = 1 - split.validation_fraction - split.test_fraction
    return np.where(u < train_end, 0, np.where(u < 1 - split.test_fraction, 1, 2))


def _column(part: pd.DataFrame, name: str) -> np.ndarray:
    return part[name].to_numpy()


def time_cuts(client, parts: list, data: DataSpec, split: SplitSpec) -> Tuple[object, object]:
    """The times where validation and test start, at the local engine's row positions (one column
    is gathered; rows on a cut time go to the later part)."""
    from dask import delayed

    columns = client.gather(client.compute([delayed(_column)(part, data.time_column) for part in parts]))
    times = np.sort(np.concatenate(columns))
    n = len(times)
    holdout = split.validation_fraction + split.test_fraction
    train_end = min(int(round(n * (1 - holdout))), n - 1)
    validation_end = min(int(round(n * (1 - split.test_fraction))), n - 1)
    return times[train_end], times[validation_end]


def _select(part: pd.DataFrame, data: DataSpec, split: SplitSpec, cuts, which: int) -> pd.DataFrame:
    return part[assign_parts(part, data, split, cuts) == which]


def split_partitions(client, validated: list, data: DataSpec, split: SplitSpec) -> Tuple[list, list, list]:
    """(train, validation, test), each a list of delayed partitions."""
    from dask import delayed

    cuts = time_cuts(client, validated, data, split) if split.strategy == "time" else None
    return tuple([delayed(_select)(part, data, split, cuts, which) for part in validated] for which in range(3))


def _pick(part: pd.DataFrame, data: DataSpec, seed: int, fraction: float) -> pd.DataFrame:
    return part if fraction >= 1.0 else part[unit_hash(part, data, seed, SAMPLE_SALT) < fraction]


def seeded_sample(client, parts: list, data: DataSpec, seed: int, rows: int, total: int) -> pd.DataFrame:
    """About `rows` rows (all of them when there are fewer), chosen by a seeded hash, in row order."""
    from dask import delayed

    fraction = min(1.0, rows / total) if total else 1.0
    picked = client.gather(client.compute([delayed(_pick)(part, data, seed, fraction) for part in parts]))
    return pd.concat(picked, ignore_index=True)


def count_rows(client, part_lists) -> List[int]:
    from dask import delayed

    counts = client.gather(client.compute([delayed(len)(part) for parts in part_lists for part in parts]))
    totals, start = [], 0
    for parts in part_lists:
        totals.append(int(sum(counts[start:start + len(parts)])))
        start += len(parts)
    return totals

"""Batch scoring on the dask engine: a partitioned Parquet input scored one row group (partition) per
task on the workers, with keel.batch's own per-chunk contract and scoring (`check_chunk`, the output
frame, the non-finite rule), and the batch's monitoring profiles made per partition and merged here.

What is written, and how it differs from the local engine's single file:
- the output is a folder of Parquet parts, `part-00000.parquet` ... one per input partition, in input
  order; each row keeps its input row number (`row`, counted over the whole input exactly as the local
  engine counts it), so the input order is recoverable and the columns are the local output's;
- the rejects are aggregated into one file beside it (`<name>.rejects.parquet`), written here from
  the partitions' rejects in input order, in the local engine's row groups: the same rows, so the same
  bytes and fingerprint as a local batch of the same input;
- the monitoring rows: each partition's whylogs profiles (per hour of scoring) come back here and
  are merged into the batch's profiles; its ids, scores and decisions are written by the worker as a
  part of the batch's `predictions.parquet` folder.
With the spec's decisions (principal reasons, a refer band) each partition gives its rows' reasons
and `refer` decisions as the local engine's chunks do (keel.batch.scoring.BatchReasons).
Both the output folder and the monitoring folder must be on storage the workers share with this
process (a local cluster shares this machine's disk; an existing cluster needs a shared filesystem).
Nothing is visible under its final name until every partition has succeeded.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence

import numpy as np
import pandas as pd

from keel.engine.dask_data import parquet_pieces
from keel.features.preprocessing import categories_unknown_to
from keel.files import publish_folder
from keel.spec.data import DataSpec, FileSource
from keel.spec.decisions import DecisionsSpec

PART_NAME = "part-{:05d}.parquet"


@dataclass
class PartitionScored:
    """What one partition sends back: counts, its rejects (few: rejected rows only), its monitoring
    profiles by hour of scoring (whylogs' binary form, tens of KiB), and when its rows were scored."""

    rows_read: int
    scored: int
    rejects: pd.DataFrame
    profiles: Dict[datetime, bytes] = field(default_factory=dict)
    first: Optional[datetime] = None
    last: Optional[datetime] = None
    without_mitigation: Dict[str, int] = field(default_factory=dict)  # keel.batch.scoring.BatchResult's


@dataclass(frozen=True)
class PartitionJob:
    """Everything a worker needs to score one partition (sent once per partition)."""

    data: DataSpec
    columns: List[str]
    attributes: List[str]
    checked: List[str]  # the decision attributes and those sent for fairness monitoring (never modelled)
    threshold: float
    model_version: int
    batch_id: str
    chunk_rows: int
    parts_folder: str
    predictions_folder: Optional[str]
    features: List[str]
    logged: List[str]  # attributes kept with each monitoring row (keel.monitoring.batch_traffic's columns)
    decisions: Optional[DecisionsSpec] = None  # declared reasons / refer band: given per row, as locally
    untrained: Dict[str, FrozenSet[str]] = field(default_factory=dict)  # categories the version was not fitted with
    background: Optional[pd.DataFrame] = None  # a linear version's reference rows for reasons (as score_batch's)


def piece_rows(piece) -> int:
    return sum(group.num_rows for group in piece.row_groups)


def score_partition(piece, schema, index: int, first_row: int, model, job: PartitionJob) -> PartitionScored:
    """Score one partition on a worker, chunk by chunk (memory: one chunk), as keel.batch.scoring
    scores a chunk; its output rows go to its own part file, published in the parts folder when done."""
    import pyarrow.parquet as pq

    from keel.batch.contract import check_chunk, empty_rejects
    from keel.batch.inputs import columns_to_read, fragment_schema, parquet_chunk
    from keel.batch.scoring import BatchReasons, output_frame, output_schema, TableFile, with_non_finite
    from keel.clock import utc_now
    from keel.evaluation.mitigation import add_rows_without_mitigation
    from keel.monitoring.batch_traffic import monitoring_rows, profile_chunk
    from keel.monitoring.profiles import serialize
    from keel.monitoring.windows import window_start

    data = job.data
    part = PART_NAME.format(index)
    # The batch made the parts folder; a partition still running after the batch failed and removed it
    # must not make it again (nothing of a failed batch is left behind).
    output = TableFile(Path(job.parts_folder) / part, job.batch_id, output_schema(data, job.decisions), "parquet",
                       make_folder=False)
    reasons = BatchReasons(model, data, job.decisions, job.background) if job.decisions is not None else None
    predictions = None
    result = PartitionScored(0, 0, empty_rejects())
    rejects: List[pd.DataFrame] = []
    profiles = {}
    try:
        own = fragment_schema(piece, schema)  # the file's own types, as the local engine reads it
        for batch in piece.to_batches(schema=own, columns=columns_to_read(own.names, data), batch_size=job.chunk_rows):
            if not batch.num_rows:
                continue
            chunk = parquet_chunk(batch, data)
            good, bad = check_chunk(chunk, data, first_row + result.rows_read, job.checked, job.untrained)
            result.rows_read += len(chunk)
            if len(good):
                scores = np.asarray(model.predict_proba(good[job.columns])[:, 1], dtype=np.float64)
                finite = np.isfinite(scores)
                if not finite.all():
                    bad = with_non_finite(bad, good[~finite], data)
                    good, scores = good[finite], scores[finite]
                add_rows_without_mitigation(result.without_mitigation, model, good)
                decisions = (scores >= job.threshold).astype(np.int8)
                frame = output_frame(good, scores, decisions, data, job.model_version, job.batch_id)
                if reasons is not None:
                    frame = reasons.add_to(frame, good[job.columns], scores, decisions)
                output.write(frame)
                if len(good) and job.predictions_folder is not None:
                    now = utc_now()
                    rows = good.assign(row=good.index.to_numpy(), score=scores, decision=decisions)
                    profile_chunk(profiles, rows, job.features, window_start(now, "hour"))
                    table = monitoring_rows(rows, job.batch_id, job.data.id_column, job.model_version,
                                            job.logged, now)
                    if predictions is None:
                        folder = Path(job.predictions_folder)
                        folder.mkdir(parents=True, exist_ok=True)
                        predictions = pq.ParquetWriter(str(folder / part), table.schema)
                    predictions.write_table(table)
                    result.first = result.first or now
                    result.last = now
                result.scored += len(good)
            if len(bad):
                rejects.append(bad)
        output.close()
        if predictions is not None:
            predictions.close()
        output.publish()
    except BaseException:
        output.discard()
        if predictions is not None:
            predictions.close()
        raise
    if rejects:
        result.rejects = pd.concat(rejects, ignore_index=True)
    result.profiles = {hour: serialize(profile) for hour, profile in profiles.items()}
    return result


def _remove_parts_folder(folder: Path) -> None:
    """A failed batch's parts folder, removed. A cancelled partition may still run on its worker (Dask does
    not stop a running task) and open its file in the folder while it is being removed; it cannot make the
    folder again, so removing once more gets what it wrote."""
    for _ in range(PARTS_FOLDER_REMOVALS):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.05)


@dataclass
class DaskBatch:
    """A partitioned batch scored and published: keel.batch.scoring.BatchResult's fields plus the
    partitions; `profiles` and `rows`/`first`/`last` are its monitoring evidence, merged."""

    result: dict
    partitions: int
    profiles: Dict[datetime, object]
    monitored_rows: int
    first: Optional[datetime]
    last: Optional[datetime]


PARTS_FOLDER_REMOVALS = 20  # attempts at removing a failed batch's parts folder while partitions still write
LOST_MODEL_RETRIES = 3  # scattering the model again after workers were lost mid-batch, at most


def score_partitioned(client, *, source: FileSource, data: DataSpec, model, threshold: float, model_version: int,
                      batch_id: str, input_fingerprint: str, output: Path, rejects: Path, chunk_rows: int,
                      predictions_folder: Optional[Path] = None, features: Sequence[str] = (),
                      decision_attributes: Sequence[str] = (), logged_attributes: Sequence[str] = (),
                      decisions: Optional[DecisionsSpec] = None, background: Optional[pd.DataFrame] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> DaskBatch:
    """Score every partition of the Parquet `source` on the cluster (`client`) and publish the output
    parts folder `output` and the aggregated `rejects` file (rejects first, the output last, as the local
    engine does). Raises what a partition raised (DataSourceError, MissingColumnsError,
    BatchScoringError); then nothing is published and the parts written so far are removed.
    `logged_attributes`: as keel.batch.scoring.score_batch's (checked, kept with the monitoring rows,
    never given to the model); `decisions`, `background`: as score_batch's (reasons, `refer` and
    `model_decision`)."""
    from keel.batch.inputs import fingerprint_input, scoring_columns
    from keel.batch.scoring import (BatchScoringError, model_columns, partial_path, rejects_schema, require_rows,
                                    TableFile)
    from keel.monitoring.batch_traffic import merge_hour
    from keel.monitoring.profiles import deserialize

    if chunk_rows < 1:
        raise BatchScoringError(f"chunk_rows must be at least 1, found {chunk_rows}")
    output, rejects = Path(output), Path(rejects)
    attributes = list(dict.fromkeys([*decision_attributes, *getattr(model, "decision_attributes_", ())]))
    columns = model_columns(model, data, attributes)
    dataset, pieces = parquet_pieces(source, scoring_columns(data))
    offsets = np.concatenate([[0], np.cumsum([piece_rows(p) for p in pieces])[:-1]]).astype(int)
    started = time.perf_counter()
    parts_folder = partial_path(output, batch_id)
    job = PartitionJob(data=data, columns=columns, attributes=attributes,
                       checked=list(dict.fromkeys([*attributes, *logged_attributes])), threshold=float(threshold),
                       model_version=int(model_version), batch_id=batch_id, chunk_rows=int(chunk_rows),
                       parts_folder=str(parts_folder),
                       predictions_folder=str(predictions_folder) if predictions_folder else None,
                       features=list(features), logged=list(logged_attributes), decisions=decisions,
                       untrained=categories_unknown_to(model, data), background=background)
    rejects_file = TableFile(rejects, batch_id, rejects_schema(), "parquet")
    futures = []
    try:
        shutil.rmtree(parts_folder, ignore_errors=True)
        parts_folder.mkdir(parents=True)
        def submit(first_index: int) -> list:
            """Partitions from `first_index` on, against the model scattered anew to the workers now."""
            [shared_model] = client.scatter([model], broadcast=True)
            return [client.submit(score_partition, pieces[i], dataset.schema, i, int(offsets[i]), shared_model, job,
                                  pure=False) for i in range(first_index, len(pieces))]

        futures = submit(0)
        lost = 0
        rows_read = scored = rejected = 0
        without_mitigation: Dict[str, int] = {}
        hours: Dict[datetime, object] = {}
        first = last = None
        for index in range(len(pieces)):  # in input order: the rejects file is written in row order
            while True:
                try:
                    part: PartitionScored = futures[index].result()
                    break
                except CancelledError as cancelled:
                    # A worker killed mid-batch can take the scattered model with it: the partitions still
                    # to come are cancelled ("lost dependencies"), and scored again against a fresh copy.
                    lost += 1
                    if lost > LOST_MODEL_RETRIES:
                        raise BatchScoringError(f"the Dask cluster lost the model {lost} times while scoring "
                                                f"({cancelled}); nothing was published") from None
                    for future in futures[index:]:
                        future.cancel()
                    futures[index:] = submit(index)
            futures[index].release()
            rejects_file.write(part.rejects)
            rows_read, scored, rejected = rows_read + part.rows_read, scored + part.scored, rejected + len(part.rejects)
            for why, rows in part.without_mitigation.items():
                without_mitigation[why] = without_mitigation.get(why, 0) + rows
            for hour, blob in part.profiles.items():
                merge_hour(hours, hour, deserialize(blob))
            first = min(filter(None, (first, part.first)), default=None)
            last = max(filter(None, (last, part.last)), default=None)
            if progress is not None:
                progress(rows_read, rejected)
        require_rows(rows_read, source)
        rejects_fingerprint = rejects_file.close()
        output_fingerprint = fingerprint_input(FileSource(kind="parquet", path=parts_folder))  # a part per partition
        rejects_file.publish()
        # A folder keel wrote there before (checked by the caller) is replaced.
        publish_folder(parts_folder, output, aside=output.with_name(f".{output.name}.replaced-{batch_id}"))
    except BaseException:
        for future in futures:
            future.cancel()
        rejects_file.discard()
        _remove_parts_folder(parts_folder)
        raise
    result = dict(batch_id=batch_id, model_version=int(model_version), input_fingerprint=input_fingerprint,
                  rows_read=rows_read, scored=scored, rejected=rejected, output_uri=str(output.resolve()),
                  output_fingerprint=output_fingerprint, rejects_uri=str(rejects.resolve()),
                  rejects_fingerprint=rejects_fingerprint, output_format="parquet", chunk_rows=int(chunk_rows),
                  seconds=round(time.perf_counter() - started, 3), rows_without_mitigation=without_mitigation,
                  mitigation_attribute=getattr(model, "attribute", None) if without_mitigation else None)
    return DaskBatch(result, len(pieces), hours, scored, first, last)

"""Score a batch: chunk by chunk through the payload contract and the registered model, the output
and rejects written beside their destinations under temporary names and published at the very end.

Memory is bounded by the chunk size, whatever the input's size: each chunk is read, checked, scored
and appended to the output before the next one is read. The output keeps the input order. A crash
midway leaves only `.<name>.partial-<batch_id>` files, never a file under the final name that looks
complete; the rejects are published first and the output last, so an output file means the batch
finished."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TypedDict

import numpy as np
import pandas as pd

from keel.batch.contract import check_chunk, empty_rejects
from keel.features.preprocessing import categories_unknown_to
from keel.batch.inputs import DataSource, iter_chunks
from keel.spec.data import DataSpec
from keel.spec.decisions import DecisionsSpec

OUTPUT_FORMATS = ("parquet", "csv")
ROW_COLUMN = "row"
# Rows per Parquet row group (and CSV write) of the output and rejects files.
ROW_GROUP_ROWS = 65_536
NON_FINITE_SCORE = "the model gave no finite score for this row"


class BatchResult(TypedDict):
    batch_id: str
    model_version: int
    input_fingerprint: str
    rows_read: int
    scored: int
    rejected: int
    output_uri: str
    output_fingerprint: str
    rejects_uri: str
    rejects_fingerprint: str
    output_format: str           # "parquet" | "csv"
    chunk_rows: int
    seconds: float
    # A mitigated version's rows scored without its mitigation (the base model's answer), by why
    # (keel.evaluation.mitigation.rows_without_mitigation); {} for other versions.
    rows_without_mitigation: Dict[str, int]
    mitigation_attribute: Optional[str]  # the attribute a mitigated version adjusts by; None for others


BATCH_ID_PREFIX = "batch-"  # every batch id keel gives (keel.lifecycle.batch.new_batch_id)


class BatchScoringError(ValueError):
    """The batch cannot be scored as asked (a model the spec does not describe, a bad argument)."""


def output_columns(data: DataSpec, decisions: Optional[DecisionsSpec] = None) -> List[str]:
    """The output's columns, in order: the input row number, the id column (when the spec has one),
    score, decision, model_version, batch_id; with the spec's `decisions`, also `reasons` (JSON text,
    unfavourable rows only) and, with a refer band, `model_decision` (the threshold's, while `decision`
    says `refer` for the rows a person decides)."""
    refers = decisions is not None and decisions.refer_band is not None
    return ([ROW_COLUMN] + ([data.id_column] if data.id_column else []) + ["score", "decision"]
            + (["model_decision"] if refers else []) + ["model_version", "batch_id"]
            + (["reasons"] if decisions is not None else []))


def output_schema(data: DataSpec, decisions: Optional[DecisionsSpec] = None):
    import pyarrow as pa

    refers = decisions is not None and decisions.refer_band is not None
    fields = [pa.field(ROW_COLUMN, pa.int64(), nullable=False)]
    if data.id_column:
        fields.append(pa.field(data.id_column, pa.string()))
    # With a refer band the decision is text: "0", "1" or "refer", so no reader takes a referral for a class.
    fields += [pa.field("score", pa.float64(), nullable=False),
               pa.field("decision", pa.string() if refers else pa.int8(), nullable=False)]
    if refers:
        fields.append(pa.field("model_decision", pa.int8(), nullable=False))
    fields += [pa.field("model_version", pa.int64(), nullable=False), pa.field("batch_id", pa.string(), nullable=False)]
    if decisions is not None:
        fields.append(pa.field("reasons", pa.string()))
    return pa.schema(fields)


def rejects_schema():
    import pyarrow as pa

    return pa.schema([pa.field("row", pa.int64(), nullable=False), pa.field("id", pa.string()),
                      pa.field("field", pa.string()), pa.field("problem", pa.string()), pa.field("found", pa.string())])


def partial_path(destination: Path, batch_id: str) -> Path:
    """Where a destination is written until the batch is published: hidden, beside it (same filesystem,
    so publication is a rename)."""
    return destination.with_name(f".{destination.name}.partial-{batch_id}")


class TableFile:
    """An Arrow table file written chunk by chunk to a temporary name, then published. Rows are
    written in groups of a fixed size whatever the input's chunks, so the file's bytes (and so its
    fingerprint) do not depend on the chunk size."""

    def __init__(self, destination: Path, batch_id: str, schema, output_format: str, make_folder: bool = True):
        """`make_folder`: create the destination's folder if missing (else its absence is an error)."""
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        self.destination = destination
        self.temporary = partial_path(destination, batch_id)
        self.schema = schema
        if make_folder:
            self.destination.parent.mkdir(parents=True, exist_ok=True)
        if output_format == "csv":
            self.writer = pcsv.CSVWriter(str(self.temporary), schema)
        else:
            self.writer = pq.ParquetWriter(str(self.temporary), schema, compression="snappy")
        self.pending: list = []
        self.pending_rows = 0
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        if not len(frame):
            return
        self.pending.append(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False, safe=True))
        self.pending_rows += len(frame)
        self.rows += len(frame)
        if self.pending_rows >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        whole = len(table) if final else len(table) - len(table) % ROW_GROUP_ROWS
        for start in range(0, whole, ROW_GROUP_ROWS):
            self.writer.write_table(table.slice(start, min(ROW_GROUP_ROWS, whole - start)))
        rest = table.slice(whole)
        self.pending = [rest] if len(rest) else []
        self.pending_rows = len(rest)

    def close(self) -> str:
        """Finish the file, make it durable; its "sha256:<hex>"."""
        self._flush(final=True)
        self.writer.close()
        digest = hashlib.sha256()
        with open(self.temporary, "rb+") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
            os.fsync(handle.fileno())
        return f"sha256:{digest.hexdigest()}"

    def publish(self) -> None:
        os.replace(self.temporary, self.destination)
        sync_folder(self.destination.parent)

    def discard(self) -> None:
        try:
            self.writer.close()
        except Exception:  # already closed, or broken by the failure being handled
            pass
        if self.temporary.exists():
            self.temporary.unlink()


def sync_folder(folder: Path) -> None:
    from keel.files import sync_folder as sync  # the one folder fsync keel.files.write_atomically uses

    sync(folder)


def model_columns(model, data: DataSpec, decision_attributes: Sequence[str]) -> List[str]:
    columns = [str(c) for c in getattr(model, "feature_names_in_", data.model_features)]
    known = set(data.model_features) | set(decision_attributes)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise BatchScoringError(
            f"the model reads column(s) {', '.join(map(repr, unknown))} that the spec's data section does not "
            "declare as model features (or, for a mitigated version, as the sensitive attribute it decides "
            "with): score with the spec the version was trained with")
    return columns


def score_batch(*, source: DataSource, data: DataSpec, model, threshold: float, model_version: int,
                batch_id: str, input_fingerprint: str, output: Path, rejects: Path,
                output_format: str = "parquet", chunk_rows: int = 100_000,
                decision_attributes: Sequence[str] = (), decisions: Optional[DecisionsSpec] = None,
                logged_attributes: Sequence[str] = (), background: Optional[pd.DataFrame] = None,
                on_chunk: Optional[Callable[[pd.DataFrame], None]] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> BatchResult:
    """Score every row of `source` with `model` (the registered version's fitted pipeline) and decide
    at `threshold` as the service does (`decision = score >= threshold`). A mitigated version that
    decides with a sensitive attribute reads it from the input column of that name (its
    `decision_attributes_`; a row without it is decided as a group the version cannot judge, as online).

    Writes `output` (row, the id column when the spec has one, score, decision, model_version,
    batch_id; input order) and `rejects` (row, id, field, problem, found), each published only at the
    end. `on_chunk(frame)` gets each chunk's scored rows (model features, decision attributes, id,
    score, decision, indexed by input row); `progress(rows_read, rows_rejected)` is called after each
    chunk. Raises DataSourceError (unreadable input, MissingColumnsError) or BatchScoringError; then
    nothing is published and the temporary files are removed.

    `logged_attributes` (monitoring.fairness.groups_from: request): sensitive attributes the input
    may carry beside the features, checked against the spec's groups (a row with an undeclared group is
    rejected, as the service answers 422), given to `on_chunk`, never to the model.

    With the spec's `decisions`, rows scored inside `decisions.refer_band` get the decision `refer`,
    and each unfavourable decision and each referral (for a person who declines it) its principal
    reasons (keel.serving.reasons), computed per chunk for those rows only; `on_chunk` still gets the threshold's decision (what monitoring profiles).
    `background`: the version's background rows (its input columns), the reference a linear model's
    reasons are measured from, as the service's; without them a linear model's rows get no reasons."""
    from keel.evaluation.mitigation import add_rows_without_mitigation

    if output_format not in OUTPUT_FORMATS:
        raise BatchScoringError(f"output format {output_format!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    if chunk_rows < 1:
        raise BatchScoringError(f"chunk_rows must be at least 1, found {chunk_rows}")
    if not batch_id or any(c in batch_id for c in "/\\\0") or batch_id.strip(".") == "":
        raise BatchScoringError(f"batch id {batch_id!r}: expected a name usable in a file name (no slashes)")
    output, rejects = Path(output), Path(rejects)
    if output.resolve() == rejects.resolve():
        raise BatchScoringError(f"{output}: the output and the rejects must be two different files")
    attributes = list(dict.fromkeys([*decision_attributes, *getattr(model, "decision_attributes_", ())]))
    columns = model_columns(model, data, attributes)
    # Attributes sent for fairness monitoring are checked as optional fields (as the service's payload)
    # and handed to `on_chunk`; the model reads `columns` only.
    checked = list(dict.fromkeys([*attributes, *logged_attributes]))
    untrained = categories_unknown_to(model, data)
    started = time.perf_counter()
    scored_file = TableFile(output, batch_id, output_schema(data, decisions), output_format)
    reasons = BatchReasons(model, data, decisions, background) if decisions is not None else None
    try:
        rejects_file = TableFile(rejects, batch_id, rejects_schema(), output_format)
    except BaseException:
        scored_file.discard()
        raise
    rows_read = scored = rejected = 0
    without_mitigation: Dict[str, int] = {}
    try:
        for chunk in iter_chunks(source, data, chunk_rows):
            good, bad = check_chunk(chunk, data, rows_read, checked, untrained)
            rows_read += len(chunk)
            del chunk
            if len(good):
                scores = np.asarray(model.predict_proba(good[columns])[:, 1], dtype=np.float64)
                finite = np.isfinite(scores)
                if not finite.all():
                    bad = with_non_finite(bad, good[~finite], data)
                    good, scores = good[finite], scores[finite]
                add_rows_without_mitigation(without_mitigation, model, good)
                chosen = (scores >= threshold).astype(np.int8)
                frame = output_frame(good, scores, chosen, data, model_version, batch_id)
                if reasons is not None:
                    frame = reasons.add_to(frame, good[columns], scores, chosen)
                scored_file.write(frame)
                if on_chunk is not None and len(good):
                    on_chunk(good.assign(row=good.index.to_numpy(), score=scores, decision=chosen))
                scored += len(good)
            rejects_file.write(bad)
            rejected += len(bad)
            if progress is not None:
                progress(rows_read, rejected)
        require_rows(rows_read, source)
        rejects_fingerprint = rejects_file.close()
        output_fingerprint = scored_file.close()
        rejects_file.publish()
        scored_file.publish()
    except BaseException:
        rejects_file.discard()
        scored_file.discard()
        raise
    return BatchResult(batch_id=batch_id, model_version=int(model_version), input_fingerprint=input_fingerprint,
                       rows_read=rows_read, scored=scored, rejected=rejected, output_uri=str(output.resolve()),
                       output_fingerprint=output_fingerprint, rejects_uri=str(rejects.resolve()),
                       rejects_fingerprint=rejects_fingerprint, output_format=output_format, chunk_rows=chunk_rows,
                       seconds=round(time.perf_counter() - started, 3), rows_without_mitigation=without_mitigation,
                       mitigation_attribute=getattr(model, "attribute", None) if without_mitigation else None)


def require_rows(rows_read: int, source) -> None:
    """Refuse an input with no rows: an empty export upstream would otherwise pass as a scored batch."""
    if rows_read == 0:
        where = getattr(source, "path", None) or getattr(source, "query", None) or "the input"
        raise BatchScoringError(f"{where}: the input has no rows; nothing was scored or published")


def output_frame(good: pd.DataFrame, scores: np.ndarray, decisions: np.ndarray, data: DataSpec,
                  model_version: int, batch_id: str) -> pd.DataFrame:
    columns = {ROW_COLUMN: good.index.to_numpy(dtype=np.int64)}
    if data.id_column:
        columns[data.id_column] = good[data.id_column].to_numpy(dtype=object)
    columns.update(score=scores, decision=decisions, model_version=np.full(len(good), int(model_version), np.int64),
                   batch_id=np.full(len(good), batch_id, dtype=object))
    return pd.DataFrame(columns)


class BatchReasons:
    """A chunk's referrals and principal reasons, for the spec's `decisions` (see score_batch)."""

    def __init__(self, model, data: DataSpec, decisions: DecisionsSpec, background: Optional[pd.DataFrame] = None):
        from keel.serving.reasons import unfavourable_decision

        self.model, self.data, self.decisions, self.background = model, data, decisions, background
        self.adverse = unfavourable_decision(data.target.favourable)
        self.giver = None
        self.built = False

    def _giver(self, sample: pd.DataFrame):
        """Built on the first chunk (its rows check the encoder against the pipeline); None for a model
        whose reasons cannot be given (its unfavourable rows then get no reasons, as online)."""
        if not self.built:
            from keel.serving.fast_path import compile_row_scorer
            from keel.serving.reasons import ReasonGiver

            from keel.evaluation.mitigation import reasons_model

            self.built = True
            model = reasons_model(self.model)  # a threshold_optimizer version: its base model's contributions
            if not getattr(model, "decision_attributes_", None):
                encoder = compile_row_scorer(model, sample)
                self.giver = ReasonGiver.for_pipeline(model, encoder, self.data, self.decisions,
                                                      background=self.background)
        return self.giver

    def add_to(self, frame: pd.DataFrame, inputs: pd.DataFrame, scores: np.ndarray, chosen: np.ndarray) -> pd.DataFrame:
        import json

        band = self.decisions.refer_band
        referred = (scores >= band[0]) & (scores < band[1]) if band is not None else np.zeros(len(scores), bool)
        text = np.full(len(frame), None, dtype=object)
        # A referred row's reasons are the ones a person who declines it gives (the decision says `refer`).
        adverse = (chosen == self.adverse) | referred if self.adverse is not None else np.zeros(len(scores), bool)
        giver = self._giver(inputs) if adverse.any() else None
        if giver is not None:
            text[adverse] = [json.dumps(r) for r in giver.for_frame(inputs[adverse])]
        if band is not None:
            frame.insert(frame.columns.get_loc("decision") + 1, "model_decision", chosen)
            frame["decision"] = np.where(referred, "refer", chosen.astype(str)).astype(object)
        frame["reasons"] = text
        return frame


def with_non_finite(rejects: pd.DataFrame, rows: pd.DataFrame, data: DataSpec) -> pd.DataFrame:
    """Rows the model scored NaN or infinite: rejected (the service answers such a request 503)."""
    extra = pd.DataFrame({"row": rows.index.to_numpy(dtype=np.int64),
                          "id": rows[data.id_column].to_numpy(dtype=object) if data.id_column
                          else np.full(len(rows), None, dtype=object),
                          "field": "score", "problem": NON_FINITE_SCORE, "found": None})
    if not len(rejects):
        return extra
    return pd.concat([rejects, extra], ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)


__all__ = ["BatchResult", "BatchScoringError", "empty_rejects", "output_columns", "partial_path", "score_batch"]

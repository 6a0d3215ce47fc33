"""The review queue: predictions referred to a person, and the decisions people made on them.

A score inside the spec's `decisions.refer_band` is answered `refer`: the model does not decide. The
service writes the referral into this table in the same transaction as the prediction itself (so a
referral is never acknowledged and lost), and batch scoring its referred rows once the batch is
published (keyed by batch id and input row); `run.py review decide` adds the person's decision, reason
and identity beside it. The prediction's own row (score, model decision) is never changed: what the
model said and what a person decided both stay on record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, List, Optional, Sequence, Tuple, TypedDict

import sqlalchemy as sa

from keel.serving.prediction_log import MAX_ENTITY_ID_LENGTH, MAX_REQUEST_ID_LENGTH, METADATA

MAX_REVIEWER_LENGTH = 160
REFER = "refer"

REVIEWS = sa.Table(
    "reviews", METADATA,
    sa.Column("request_id", sa.String(MAX_REQUEST_ID_LENGTH), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True),
    sa.Column("entity_id", sa.String(MAX_ENTITY_ID_LENGTH), index=True),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("model_decision", sa.Integer, nullable=False),  # what the threshold alone would have decided
    sa.Column("referred_at", sa.DateTime(timezone=True), index=True, nullable=False),
    sa.Column("human_decision", sa.Integer),  # 1 = the positive class, as `predictions.decision`
    sa.Column("reason", sa.Text),
    sa.Column("reviewer", sa.String(MAX_REVIEWER_LENGTH)),
    sa.Column("decided_at", sa.DateTime(timezone=True), index=True),
)


class Review(TypedDict):
    request_id: str
    row: int
    entity_id: Optional[str]
    model_version: int
    score: float
    model_decision: int
    referred_at: datetime
    human_decision: Optional[int]
    reason: Optional[str]
    reviewer: Optional[str]
    decided_at: Optional[datetime]


class ReviewError(ValueError):
    """A review decision that cannot be recorded (unknown referral, already decided, no reason)."""


def in_refer_band(score: float, band: Optional[Tuple[float, float]]) -> bool:
    return band is not None and band[0] <= score < band[1]


def referral_rows(prediction_rows: Sequence[dict], band: Optional[Tuple[float, float]],
                  unreferred_prefixes: Sequence[str] = ()) -> List[dict]:
    """The review rows of the logged predictions whose score is in the refer band: never shadow rows
    (nobody was answered by them) nor entities of `unreferred_prefixes` (monitoring.exclude_entity_prefixes:
    keel's own rollout probes, no person to decide for)."""
    prefixes = tuple(unreferred_prefixes)
    return [{"request_id": r["request_id"], "row": r["row"], "entity_id": r.get("entity_id"),
             "model_version": r["model_version"], "score": r["score"], "model_decision": r["decision"],
             "referred_at": r["time"]}
            for r in prediction_rows if not r.get("shadow") and in_refer_band(float(r["score"]), band)
            and not (prefixes and str(r.get("entity_id") or "").startswith(prefixes))]


def _engine(url: str):
    engine = sa.create_engine(url, future=True)
    METADATA.create_all(engine, tables=[REVIEWS])
    return engine


def pending_reviews(url: str, limit: int = 50) -> List[Review]:
    """Referrals nobody has decided yet, oldest first."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(REVIEWS).where(REVIEWS.c.decided_at.is_(None))
                                      .order_by(REVIEWS.c.referred_at, REVIEWS.c.request_id, REVIEWS.c.row)
                                      .limit(limit)).mappings().all()
    finally:
        engine.dispose()
    return [dict(r) for r in rows]  # type: ignore[misc]


def pending_count(url: str) -> int:
    """How many referrals nobody has decided yet."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(REVIEWS)
                                          .where(REVIEWS.c.decided_at.is_(None))).scalar_one())
    finally:
        engine.dispose()


def record_decision(url: str, request_id: str, row: int, human_decision: int, reason: str, reviewer: str,
                    now: datetime, audit: Callable[[Review], None] = lambda review: None) -> Review:
    """Record a person's decision on one referral; refused (ReviewError) for an unknown referral, one
    already decided (decisions are not overwritten), an empty reason or a decision that is not 0 or 1.
    `audit(review)` records it in the audit trail before the decision is committed: if it raises,
    nothing is committed and the decision can be made again."""
    if human_decision not in (0, 1):
        raise ReviewError(f"a decision is 1 (the positive class) or 0, not {human_decision!r}")
    if not reason or not reason.strip():
        raise ReviewError("--reason is required: say why, in words the person it concerns and an auditor can read")
    if len(reviewer) > MAX_REVIEWER_LENGTH:
        raise ReviewError(f"the reviewer's name is longer than {MAX_REVIEWER_LENGTH} characters")
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            key = (REVIEWS.c.request_id == request_id) & (REVIEWS.c.row == row)
            found = connection.execute(sa.select(REVIEWS).where(key)).mappings().first()
            if found is None:
                raise ReviewError(f"no referral {request_id}:{row} in the prediction log (run.py review list shows "
                                  "the pending ones)")
            if found["decided_at"] is not None:
                raise ReviewError(f"referral {request_id}:{row} was decided by {found['reviewer']} at "
                                  f"{found['decided_at']}; a decision is never overwritten")
            # Only an undecided row changes: a concurrent decision on it leaves this one refused.
            changed = connection.execute(sa.update(REVIEWS).where(key & REVIEWS.c.decided_at.is_(None)).values(
                human_decision=human_decision, reason=reason.strip(), reviewer=reviewer, decided_at=now)).rowcount
            if changed != 1:
                raise ReviewError(f"referral {request_id}:{row} was decided by someone else meanwhile")
            decided = connection.execute(sa.select(REVIEWS).where(key)).mappings().first()
            audit(dict(decided))  # type: ignore[arg-type]
    finally:
        engine.dispose()
    return dict(decided)  # type: ignore[return-value]


def review_rates(url: str, since: Optional[datetime], until: Optional[datetime],
                 model_version: Optional[int] = None) -> dict:
    """Per window (and version, when given): referrals, decisions made, and how often a person overrode the model's own decision
    (the threshold's) among those decided. Rates are None where nothing was referred or decided."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            query = sa.select(REVIEWS.c.model_decision, REVIEWS.c.human_decision)
            if since is not None:
                query = query.where(REVIEWS.c.referred_at >= since)
            if until is not None:
                query = query.where(REVIEWS.c.referred_at < until)
            if model_version is not None:
                query = query.where(REVIEWS.c.model_version == model_version)
            rows = connection.execute(query).all()
    finally:
        engine.dispose()
    decided = [(m, h) for m, h in rows if h is not None]
    overridden = sum(1 for m, h in decided if m != h)
    return {"referred": len(rows), "decided": len(decided), "overridden": overridden,
            "override_rate": round(overridden / len(decided), 4) if decided else None}


def decided_reviews(url: str) -> List[Review]:
    """Every referral a person has decided, in the order decided."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(REVIEWS).where(REVIEWS.c.decided_at.is_not(None))
                                      .order_by(REVIEWS.c.decided_at)).mappings().all()
    finally:
        engine.dispose()
    return [dict(r) for r in rows]  # type: ignore[misc]


def referred_rows(url: str, request_id: str) -> List[int]:
    """The rows of one request (a batch's: its input rows) that were referred, decided or not, in order."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return [int(row) for row in connection.execute(sa.select(REVIEWS.c.row).where(
                REVIEWS.c.request_id == request_id).order_by(REVIEWS.c.row)).scalars()]
    finally:
        engine.dispose()


def review_of(url: str, request_id: str, row: int) -> Optional[Review]:
    """The referral of one logged prediction and, once a person decided it, their decision; None when
    it was not referred."""
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.select(REVIEWS).where((REVIEWS.c.request_id == request_id)
                                                                & (REVIEWS.c.row == row))).mappings().first()
    finally:
        engine.dispose()
    return None if found is None else dict(found)  # type: ignore[return-value]


def queue_batch_referrals(url: str, output: str, output_format: str, batch_id: str, model_version: int,
                          id_column: Optional[str], now: datetime, superseded: Sequence[str] = (),
                          batch_rows: int = 65_536) -> int:
    """Put a published batch's referred rows (decision `refer` in its output) in the review queue, keyed
    by the batch id and the input row number; returns how many. Read back from the output in record
    batches, so memory stays bounded whatever the batch's size. Undecided referrals of `superseded`
    batches (the same input scored again after a kill before its record) are withdrawn: nobody is
    asked twice about one row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if output_format == "csv":
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(output, read_options=pcsv.ReadOptions(block_size=1 << 22),
                               convert_options=pcsv.ConvertOptions(column_types={"decision": pa.string()}))
        batches = iter(reader)
    else:
        import pyarrow.dataset as ds

        # A file, or the Dask engine's folder of parts.
        batches = ds.dataset(output, format="parquet").to_batches(batch_size=batch_rows)
    engine = _engine(url)
    queued = 0
    try:
        with engine.begin() as connection:
            if superseded:
                connection.execute(sa.delete(REVIEWS).where(REVIEWS.c.request_id.in_(list(superseded))
                                                            & REVIEWS.c.decided_at.is_(None)))
            for batch in batches:
                referred = batch.filter(pc.equal(batch.column("decision"), "refer")).to_pydict()
                if not referred.get("row"):
                    continue
                ids = referred[id_column] if id_column else [None] * len(referred["row"])
                connection.execute(REVIEWS.insert(), [
                    {"request_id": batch_id, "row": int(row), "entity_id": None if entity is None else str(entity),
                     "model_version": int(model_version), "score": float(score), "model_decision": int(decision),
                     "referred_at": now}
                    for row, entity, score, decision in zip(referred["row"], ids, referred["score"],
                                                            referred["model_decision"])])
                queued += len(referred["row"])
    finally:
        engine.dispose()
    return queued

"""Lineage: prediction -> model version -> training run -> data (fingerprint, source, stored version)
-> spec hash -> git commit, from the prediction log, the version's metadata and the audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import List, Optional

from keel import registration as keys
from keel.clock import as_utc
from keel.evaluation.record import RUNNING
from keel.governance.audit import EVALUATED
from keel.governance.timeline import describe_split, parse_time, served_at
from keel.provenance import source_text
from keel.serving.prediction_log import readable_log
from keel.serving.reviews import REFER


def find_prediction(log_url: str, request_id: str) -> List[dict]:
    """The logged rows of one request (a batch request has several), shadow rows included."""
    import sqlalchemy as sa

    from keel.serving.prediction_log import PREDICTIONS, PredictionLog

    try:
        if not readable_log(log_url):
            raise LookupError(f"there is no prediction log at {log_url} (nothing has been deployed with this spec)")
        log = PredictionLog(log_url)
        query = sa.select(PREDICTIONS).where(PREDICTIONS.c.request_id == request_id).order_by(PREDICTIONS.c.row)
        with log.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
    except sa.exc.SQLAlchemyError as error:  # includes a URL make_url cannot parse and an unknown dialect
        raise LookupError(f"the prediction log cannot be read ({type(error).__name__}: {error})") from None
    except ImportError as error:  # e.g. postgresql:// without psycopg2 installed in this environment
        raise LookupError(f"the prediction log cannot be read: its database driver is not installed "
                          f"here ({error})") from None
    import json

    for row in rows:
        row["inputs"] = json.loads(row["inputs"])
        row["time"] = as_utc(row["time"])  # SQLite returns naive datetimes; the log writes UTC
    return rows


def queued_review(log_url: str, request_id: str, row: int) -> Optional[dict]:
    """The review-queue entry of one answered row (a batch's: its batch id and input row), with the
    person's decision once made; None when nothing was queued. LookupError when the queue cannot be read."""
    import sqlalchemy as sa

    from keel.serving.reviews import review_of

    try:
        if not readable_log(log_url):
            return None  # no queue, so nothing was queued
        return review_of(log_url, request_id, row)
    except sa.exc.SQLAlchemyError as error:
        raise LookupError(f"the review queue cannot be read ({type(error).__name__}: {error})") from None


def logged_rows(log_url: str, request_id: str, row_number: Optional[int] = None,
                answered_only: bool = False) -> List[dict]:
    """The rows of one request, narrowed to `row_number` and (with `answered_only`) to the answers the
    caller received, not shadow predictions. LookupError says which is missing."""
    rows = [r for r in find_prediction(log_url, request_id) if not (answered_only and r["shadow"])]
    kind = "answered prediction" if answered_only else "prediction"
    if not rows:
        from keel.batch.scoring import BATCH_ID_PREFIX

        batch = (f"; batch {request_id}'s rows are in its output, not the log: python run.py lineage --batch "
                 f"{request_id} --row ROW" if request_id.startswith(BATCH_ID_PREFIX) else "")
        raise LookupError(f"no {kind} with request id {request_id!r} in {log_url}{batch}")
    if row_number is not None:
        rows = [r for r in rows if r["row"] == row_number]
        if not rows:
            raise LookupError(f"request {request_id} has no {'answered ' if answered_only else ''}row {row_number}")
    return rows


def version_lineage(model: str, version: int, metadata: dict, records: List[dict],
                    data_version_uri: Optional[str], data_version_content: Optional[str]) -> List[tuple]:
    """(link, value) pairs from the version to the code, each from recorded evidence. `metadata`: the
    version's, once its registration completed (`keel.registry.registered_metadata`).
    `data_version_content`: None when no file is stored at `data_version_uri`, else what
    `keel.governance.data_versions.verify_data_version` found."""
    events = [r for r in records if r.get("version") == version and r.get("model") == model]
    approvals = [f"{r['details'].get('by', r['actor'])} at {r['time']}: {r['details'].get('reason', '')}"
                 for r in events if r["event"] == "approved"]
    stages = [f"{r['details']['stage']} at {r['time']}" for r in events if r["event"] == "stage_changed"]
    evaluation = metadata.get(keys.EVALUATION) or {}
    dirty = (f" (dirty: {', '.join(metadata.get(keys.GIT_CHANGED_FILES) or [])})" if metadata.get(keys.GIT_DIRTY)
             else "")
    return [
        ("model version", f"{model} v{version} ({metadata.get(keys.MODEL_FAMILY)}, "
                          f"model SHA-256 {metadata.get(keys.MODEL_SHA256)})"),
        ("evaluation (latest)", f"{evaluation.get('decision', 'not evaluated')} (run {evaluation.get('run_name', '-')})"),
        ("approvals", "; ".join(approvals) or "none recorded"),
        ("stage history", "; ".join(stages) or "none recorded"),
        ("training run", f"{metadata.get(keys.RUN_NAME)} (id {metadata.get(keys.RUN_ID)})"),
        ("data fingerprint", metadata.get(keys.DATA_FINGERPRINT)),
        ("data source", metadata.get(keys.DATA_SOURCE)),
        ("data version", f"{data_version_uri} ("
         + ("NOT stored" if data_version_content is None else f"stored, content {data_version_content}") + ")"
         if data_version_uri else "-"),
        ("rows", metadata.get(keys.ROWS)),
        ("spec SHA-256", metadata.get(keys.SPEC_SHA256)),
        ("seed", metadata.get(keys.SEED)),
        ("git commit", f"{metadata.get(keys.GIT_COMMIT)}{dirty}"),
        ("source SHA-256", source_text(metadata)),
        ("dependency lock SHA-256", metadata.get(keys.LOCK_SHA256)),
        ("python / platform", f"{metadata.get(keys.PYTHON_VERSION)} / {metadata.get(keys.PLATFORM)}"),
    ]


def prediction_lineage(row: dict, records: List[dict], review: Optional[dict] = None, target=None,
                       version_records: Optional[List[dict]] = None) -> List[tuple]:
    """The prediction's own facts, cross-checked against the routing and the evaluation the audit trail
    says were in force. `review`: the row's referral (keel.serving.reviews.review_of), None when it was
    not referred; `target`: the spec's data.target, naming a human decision favourable or not;
    `version_records`: the audit trail of the row's model where it is not `records`' model."""
    at: datetime = row["time"]
    routing = served_at(records, at)
    if routing is None:
        consistent = "no routing change recorded before this time"
    else:
        versions = {a["version"] for a in routing["arms"]} | ({routing["shadow"]["version"]} if routing["shadow"] else set())
        consistent = (f"{describe_split(routing['arms'], routing['shadow'])} since {routing['since']} "
                      f"(audit record {routing['seq']}): " + ("consistent" if row["model_version"] in versions
                                                              else "INCONSISTENT with the logged version"))
    # The log keeps the threshold's decision; a referred row was answered `refer`, which the review queue records.
    decision = (f"decision {row['decision']}" if review is None
                else f"decision {REFER} (the threshold's decision {row['decision']})")
    return [
        ("prediction", f"request {row['request_id']} row {row['row']}, entity {row['entity_id']}, at {at.isoformat()}"),
        ("answer", f"score {row['score']:.6f}, {decision}, {row['latency_ms']:.3f} ms"
                   + (" (shadow: logged, not returned)" if row["shadow"] else "")),
        *referral_links(review, target=target),
        *reason_links(row.get("reasons")),
        ("served by", f"{row['model_name']} v{row['model_version']} on arm {row['arm']}"),
        ("routing then (audit trail)", consistent),
        ("evaluation then (audit trail)", evaluation_then(records if version_records is None else version_records,
                                                          row["model_name"], int(row["model_version"]), at)),
    ]


def evaluation_then(records: List[dict], model: str, version: int, at: datetime) -> str:
    """The evaluation of `version` that held at `at`: the last one recorded at or before it (finished or
    failed), and how often it was evaluated since. A later re-evaluation, under other gates or a changed
    spec, does not change what held when the prediction was made; the version's metadata keeps only
    the latest."""
    evaluations = [r for r in records if r.get("event") == EVALUATED and r.get("model") == model
                   and r.get("version") == version and (r.get("details") or {}).get("status") != RUNNING]
    before = [r for r in evaluations if parse_time(r["time"]) <= at]
    since = [r for r in evaluations if parse_time(r["time"]) > at]
    text = _evaluation_text(before[-1]) if before else "none recorded before this time"
    if since:
        text += f"; evaluated {len(since)} time(s) since, latest: {_evaluation_text(since[-1])}"
    return text


def _evaluation_text(record: dict) -> str:
    details = record.get("details") or {}
    return (f"{details.get('decision', '-')} (run {details.get('run_name') or '-'}, recorded {record['time']}, "
            f"audit record {record.get('seq')})")


def referral_links(review: Optional[dict], referred: bool = False, target=None) -> List[tuple]:
    """The referral of a row answered `refer` and the person's decision on it (who, when, why), if any.
    `referred`: the row says it was referred though `review` is None (its queue entry is not found)."""
    if review is None:
        return [("referral", "answered refer, but the review queue holds no referral of it")] if referred else []
    return [("referral", f"referred to a person (score in decisions.refer_band) at {_utc(review['referred_at'])}"),
            ("human decision", human_decision_text(review, target))]


def human_decision_favourable(review: dict, target=None) -> Optional[bool]:
    """Whether a person's decision on a referral is the favourable one; None while it is pending or
    when `target` (the spec's data.target) does not declare which class is favourable."""
    if review["decided_at"] is None or target is None or target.favourable is None:
        return None
    return (review["human_decision"] == 1) == (target.favourable == "positive")


def human_decision_text(review: dict, target=None) -> str:
    """A referral's human decision in words, as `lineage` and `explain` both show it: pending, or the
    class decided (favourable or not, when `target`, the spec's data.target, declares which is), by whom,
    when, against the threshold's decision, and why."""
    if review["decided_at"] is None:
        return "pending (python run.py review list)"
    decided = f"class {review['human_decision']}"
    favourable = human_decision_favourable(review, target)
    if favourable is not None:
        decided = f"{'favourable' if favourable else 'unfavourable'} ({decided})"
    agrees = "agrees with" if review["human_decision"] == review["model_decision"] else "overrides"
    return (f"{decided} by {review['reviewer']} at {_utc(review['decided_at'])}, {agrees} the threshold's decision "
            f"{review['model_decision']}: {review['reason']}")


def _utc(moment) -> str:
    return as_utc(moment).isoformat() if isinstance(moment, datetime) else str(moment)  # SQLite's are naive UTC


def reason_links(reasons) -> List[tuple]:
    """The principal reasons given with an answer (JSON text as the log and batch outputs store them);
    none when it gave none."""
    if isinstance(reasons, str):
        reasons = json.loads(reasons) if reasons.strip() else None
    if not isinstance(reasons, list) or not reasons:  # None, or NaN from a Parquet output's empty cell
        return []
    from keel.serving.reasons import reason_text

    return [("principal reasons", "; ".join(reason_text(i, r) for i, r in enumerate(reasons, 1)))]


def batch_lineage(record: dict, output_check: str) -> List[tuple]:
    """(link, value) pairs of one batch (a keel.lifecycle.batch.BatchRecord from the audit trail):
    what it read, with which version and spec, what it wrote; `output_check` says whether the output
    file is still the one recorded."""
    rescored = f"; scores again the input of {record['rescored_from']}" if record.get("rescored_from") else ""
    return [
        ("batch", f"{record['batch_id']} by {record['actor']}, {record['started_at']} to {record['finished_at']}"
                  f"{rescored}"),
        ("run", f"{record.get('run_name')} (id {record.get('run_id')})"),
        ("input", f"{record['source']} ({record['input_fingerprint']})"),
        ("rows", f"{record['rows_read']} read, {record['scored']} scored, {record['rejected']} rejected "
                 f"({record['reject_fraction']:.2%}; limit {record['max_reject_fraction']:.2%}"
                 f"{', OVER THE LIMIT' if record['over_reject_limit'] else ''})"),
        ("output", f"{record['output_uri']} ({record['output_fingerprint']}): {output_check}"),
        ("rejects", f"{record['rejects_uri']} ({record['rejects_fingerprint']})"),
        ("scored by", f"{record['model']} v{record['model_version']} under spec SHA-256 {record['spec_sha256']}"),
        *([("mitigation", batch_mitigation(record))] if record.get("rows_without_mitigation") else []),
    ]


def batch_mitigation(record: dict) -> str:
    """How many of a batch's scored rows its mitigated version answered without the mitigation, and why."""
    from keel.evaluation.mitigation import describe_rows_without_mitigation

    return describe_rows_without_mitigation(record["rows_without_mitigation"], record["scored"],
                                            record["mitigation_attribute"])


def batch_row_lineage(row: dict, record: dict, id_column: Optional[str],
                      review: Optional[dict] = None, target=None) -> List[tuple]:
    """One output row of a batch, read back from its output file, cross-checked against the record.
    With a refer band, `decision` is text ("0", "1" or "refer") and `model_decision` the threshold's;
    `review`: the row's referral in the review queue (keyed by batch id and input row), if any;
    `target`: as prediction_lineage's."""
    consistent = (int(row["model_version"]) == int(record["model_version"]) and row["batch_id"] == record["batch_id"])
    name = f"{id_column} {row[id_column]}, " if id_column else ""
    decision = str(row["decision"])
    referred = decision == REFER
    if referred:
        decision += f" (the threshold's decision {row['model_decision']})"
    return [
        ("batch row", f"{name}input row {row['row']} of batch {record['batch_id']}"),
        ("answer", f"score {float(row['score']):.6f}, decision {decision}"),
        *referral_links(review, referred, target),
        *reason_links(row.get("reasons")),
        ("scored by", f"v{row['model_version']} (batch {row['batch_id']}): "
                      + ("consistent with the batch record" if consistent else "INCONSISTENT with the batch record")),
    ]


def batch_rows_heading(row_id: str, id_column: Optional[str], rows: List[dict], batch_id: str,
                       shown: int) -> List[str]:
    """What `lineage --batch ID --row ROW` says before the rows it shows: an id the batch scored more
    than once matches every such row, all shown (up to `shown`), never silently the first."""
    if not id_column or len(rows) < 2:
        return []
    numbers = ", ".join(str(r["row"]) for r in rows[:shown]) + (", ..." if len(rows) > shown else "")
    return [f"{id_column} {row_id} is not unique in batch {batch_id}: {len(rows)} scored rows have it "
            f"(input rows {numbers}); {'each is' if len(rows) <= shown else f'the first {shown} are'} shown"]

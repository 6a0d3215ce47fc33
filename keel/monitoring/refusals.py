"""Scoring requests the service refused for their records' content (422; keel.serving.prediction_log.REFUSALS)
in the judged window: how many, against the requests answered, and what was refused most. No prediction
is logged for a refused request, so a category the spec gained after the served version was trained, or
one it never declared, is invisible to drift and fairness; it shows here."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import List, Optional, Sequence, TypedDict

from keel.monitoring.windows import WINDOWS, window_start

MOST_REFUSED_SHOWN = 10


class RefusedValue(TypedDict):
    field: str      # records[i].name becomes name: the same problem in every record is one entry
    problem: str
    found: Optional[str]
    requests: int


class RefusalReport(TypedDict):
    start: str
    end: str
    refused_requests: int
    answered_requests: int
    refusal_rate: Optional[float]   # refused / (refused + answered); None when there were neither
    most_refused: List[RefusedValue]


def _field_name(field: str) -> str:
    """'records[3].region' -> 'region': where in a request it was does not matter to what was refused."""
    return field.split("].", 1)[1] if field.startswith("records[") and "]." in field else field


def summarize_refusals(refusals: Sequence[dict], answered_requests: int, start: datetime,
                       end: datetime) -> RefusalReport:
    """`refusals`: logged rows (their `errors` as JSON text). Each (field, problem, value) is counted once
    per request that had it, most frequent first."""
    counts: Counter = Counter()
    for row in refusals:
        errors = json.loads(row["errors"])
        counts.update({(_field_name(e["field"]), e["problem"], e["found"]) for e in errors})
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0][0], item[0][1], str(item[0][2])))
    total = len(refusals) + answered_requests
    return {"start": start.isoformat(), "end": end.isoformat(), "refused_requests": len(refusals),
            "answered_requests": answered_requests,
            "refusal_rate": round(len(refusals) / total, 4) if total else None,
            "most_refused": [{"field": field, "problem": problem, "found": found, "requests": n}
                             for (field, problem, found), n in ranked[:MOST_REFUSED_SHOWN]]}


def refusal_span(window: dict, window_kind: str, now: datetime) -> tuple:
    """The judged window's [start, end); without one (no prediction answered at all, e.g. every request
    refused), the current hour, day or week."""
    if window.get("start") is not None:
        return datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    start = window_start(now, window_kind)
    return start, start + WINDOWS[window_kind]


def window_refusals(log_url: str, start: datetime, end: datetime,
                    exclude_entity_prefixes: Sequence[str] = ()) -> Optional[RefusalReport]:
    """The refusals logged in [start, end) against the requests answered then (shadow rows and rollout
    probes left out); None when the log keeps no refusals (written before keel logged them, or none yet)."""
    import sqlalchemy as sa

    from keel.serving.prediction_log import PREDICTIONS, REFUSALS

    engine = sa.create_engine(log_url, future=True)
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(REFUSALS.name):
            return None
        refused = sa.select(REFUSALS.c.errors).where((REFUSALS.c.time >= start) & (REFUSALS.c.time < end))
        answered = (sa.select(sa.func.count(sa.distinct(PREDICTIONS.c.request_id)))
                    .where(PREDICTIONS.c.shadow.is_(False) & (PREDICTIONS.c.time >= start) & (PREDICTIONS.c.time < end)))
        for prefix in exclude_entity_prefixes:
            answered = answered.where(sa.not_(PREDICTIONS.c.entity_id.startswith(prefix, autoescape=True)))
        with engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(refused)]
            count = int(connection.execute(answered).scalar_one()) if inspector.has_table(PREDICTIONS.name) else 0
    finally:
        engine.dispose()
    return summarize_refusals(rows, count, start, end)


def refusal_lines(report: Optional[RefusalReport]) -> List[str]:
    """The CLI's lines: nothing when no request was refused."""
    if not report or not report["refused_requests"]:
        return []
    lines = [f"refused:        {report['refused_requests']} request(s) for their records' content "
             f"({report['refusal_rate']:.1%} of {report['refused_requests'] + report['answered_requests']}); "
             "no prediction is logged for them, so drift and fairness above do not see them"]
    lines += [f"  {item['requests']:>6}  {item['field']} = {item['found']!r}: {item['problem']}"
              for item in report["most_refused"]]
    return lines

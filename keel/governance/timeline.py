"""Questions answered from the audit trail alone: which version (and arm split) served at a moment,
which version was in production, what happened to a version."""

from __future__ import annotations

from datetime import datetime
from typing import List, Optional

from keel.clock import as_utc


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC. Raises ValueError with the text."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-26T17:05:00Z") from None
    return as_utc(moment) if moment.tzinfo is None else moment


def effective_time(record: dict) -> datetime:
    """When the event took effect: the routing file's write time if recorded, else the record's time."""
    return parse_time(record["details"].get("effective_at") or record["time"])


def routing_records(records: List[dict]) -> List[dict]:
    return [r for r in records if isinstance(r.get("details"), dict) and r["details"].get("routing")]


def served_at(records: List[dict], at: datetime) -> Optional[dict]:
    """The routing in force at `at` (the last routing change at or before it), or None if none yet.

    {"arms": [{name, version, weight}], "shadow": ..., "since": ISO time, "event", "seq", "production"}"""
    current = None
    for record in routing_records(records):
        if effective_time(record) <= at:
            current = record
    if current is None:
        return None
    routing = current["details"]["routing"]
    return {"arms": routing["arms"], "shadow": routing.get("shadow"), "strategy": routing.get("strategy"),
            "step": routing.get("step"), "since": effective_time(current).isoformat(), "event": current["event"],
            "seq": current["seq"], "production": production_at(records, at)}


def production_at(records: List[dict], at: datetime) -> Optional[int]:
    """The version in the `production` stage at `at`, from the stage-change records."""
    production = None
    for record in records:
        details = record.get("details") or {}
        if record.get("event") == "stage_changed" and details.get("stage") == "production" \
                and effective_time(record) <= at:
            production = record["version"]
    return production


def describe_split(arms: List[dict], shadow: Optional[dict] = None) -> str:
    text = " / ".join(f"v{a['version']} {a['weight']:.0%} ({a['name']})" for a in arms) or "nothing served"
    return text + (f"; shadow v{shadow['version']} (mirrored, never answers)" if shadow else "")

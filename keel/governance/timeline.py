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


# --- human oversight: who trained, validated, approved, refused, broke the glass --------------------

def identity_source(record: dict) -> str:
    """How far a record's actor is vouched for: by a ZenML server, by this host's OS account, or not at
    all (a name given with --by or $KEEL_ACTOR before roles)."""
    identity = (record.get("details") or {}).get("identity")
    if isinstance(identity, dict) and identity.get("authority"):
        how = "authenticated" if identity.get("authenticated") else "NOT authenticated"
        return f"{identity.get('kind')}, {how}, by {identity['authority']}"
    actor = str(record.get("actor", ""))
    if actor.startswith("zenml:"):
        return "ZenML account"
    if actor.startswith("os:"):
        return "OS account, NOT authenticated"
    return "a name as given (--by, $KEEL_ACTOR), not verified"


def describe_oversight(record: dict) -> Optional[str]:
    """One line for an approval, a refusal or a break-glass record; None for other events."""
    details, event = record.get("details") or {}, record.get("event")
    if event == "approved":
        by, actor = details.get("by"), record.get("actor")
        who = by if by in (None, actor) else f"{actor} ({by})"
        bound = (f" on evaluation run {str(details['evaluation_run'])[:8]}, gates {str(details.get('gates_digest'))[:12]}"
                 if details.get("evaluation_run") else "")
        return f"by {who}{bound}: {details.get('reason')}"
    if event == "refused":
        return f"{details.get('command')} by {record.get('actor')}: {str(details.get('reason', '')).removeprefix('keel: ')}"
    if event == "break_glass":
        replacing = f" replacing v{details['replacing']}" if details.get("replacing") is not None else ""
        return (f"BREAK-GLASS {details.get('command')} by {record.get('actor')}{replacing}: {details.get('reason')} "
                f"(approvals then: {details.get('approvals')})")
    return None


def oversight(records: List[dict], version: int) -> dict:
    """{"trained", "validated", "approved", "refused", "break_glass"}: the version's records of each, as
    (time, actor, identity source, what) rows, oldest first."""
    mine = [r for r in records if r.get("version") == version]

    def rows(event: str, what) -> List[tuple]:
        return [(r["time"], r["actor"], identity_source(r), what(r)) for r in mine if r.get("event") == event]

    return {
        "trained": rows("training_run_registered", lambda r: f"training run {r.get('run_id')}"),
        "validated": [row for row, r in zip(rows("evaluated", lambda r: f"evaluation run {r.get('run_id')}: "
                                                                        f"{r['details'].get('decision')}"),
                                             [r for r in mine if r.get("event") == "evaluated"])
                      if r["details"].get("status") != "running"],
        "approved": rows("approved", describe_oversight),
        "refused": rows("refused", describe_oversight),
        "break_glass": rows("break_glass", describe_oversight),
    }

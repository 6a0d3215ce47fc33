"""`run.py audit verify | log | who-served`: the audit trail of one model."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, format_table, say

TAMPERED = 1
INTERRUPTED = 3  # the trail is intact; a `train` was killed while registering a version (train again)


def _store(model: str):
    from keel.governance.audit import audit_location, audit_store

    return audit_location(model), audit_store(model)


def verify(model: str, expect_head: Optional[str] = None, log_url: Optional[str] = None) -> int:
    """The chain, then (with `expect_head`, a head hash kept from an earlier verify) that the log still
    holds that record, then the registry cross-check and (with the prediction log at `log_url`) the
    people's decisions on referrals against the trail."""
    from keel.governance.audit import verify as verify_chain

    location, store = _store(model)
    result = verify_chain(store)
    if not result.ok:
        return fail(f"audit log {location}: TAMPERED. First bad record: {result.problem}\n"
                    f"({result.records} record(s) before it verify)", TAMPERED)
    say(f"audit log {location}: {result.records} record(s), hash chain intact")
    say(f"head hash: {result.head_hash} (keep it elsewhere to detect a rewrite of the whole log)")
    if expect_head is not None:
        kept = expect_head.strip().lower()
        if not result.holds(kept):
            return fail(f"audit log {location}: REWRITTEN. The kept head hash {kept} is not in the "
                        "chain: records up to it were replaced or removed since it was taken", TAMPERED)
        say(f"kept head hash {kept[:16]}... is in the chain: the log has only grown since")
    code = cross_check(model, store)
    if code == TAMPERED or log_url is None:
        return code
    return reviews_check(model, store, log_url) or code


def reviews_check(model: str, store, log_url: str) -> int:
    """The prediction log's decided referrals against the trail's review_decided records (the log's table
    is not tamper-evident: an edited decision would otherwise be shown by `explain` as the person's)."""
    from keel.governance.audit import read_records
    from keel.serving.prediction_log import readable_log
    from keel.lifecycle.review import trail_disagreements
    from keel.serving.reviews import decided_reviews

    if not readable_log(log_url):
        return 0
    problems = trail_disagreements(decided_reviews(log_url), read_records(store))
    if problems:
        return fail(f"review cross-check of {model}: the people's decisions in the prediction log and the audit "
                    "trail disagree (the log edited, or a record deleted):\n  " + "\n  ".join(problems), TAMPERED)
    say("review cross-check: every decision on a referral in the prediction log is the audit trail's")
    return 0


def cross_check(model: str, store) -> int:
    """The registry against the trail: catches a deleted last record, which the chain alone cannot.
    A registration a killed `train` left unfinished is reported as INTERRUPTED (exit 3), not as a
    missing record; a missing record still fails (exit 1) whatever else is found."""
    from keel.governance.audit import interrupted_registrations, missing_from_trail, read_records
    from keel.registry import list_model_versions

    records, versions = read_records(store), list_model_versions(model)
    missing, interrupted = missing_from_trail(records, versions), interrupted_registrations(records, versions)
    if interrupted:
        fail(f"audit log of {model}: INTERRUPTED registration(s), from a killed `train` (not tampering; no "
             "command uses such a version; train again):\n  " + "\n  ".join(interrupted), INTERRUPTED)
    if missing:
        return fail("registry cross-check: events the registry knows of are missing from the trail "
                    "(deleted, or from before keel kept a trail):\n  " + "\n  ".join(missing), TAMPERED)
    say("registry cross-check: every registration, evaluation and approval of the registry is in the trail"
        + (", but for the interrupted registrations" if interrupted else ""))
    return INTERRUPTED if interrupted else 0


def show_log(model: str, event: Optional[str]) -> int:
    from keel.governance.audit import read_records, verify as verify_chain

    location, store = _store(model)
    check = verify_chain(store)  # first: a file edited out of shape is left out of the table, not hidden
    records = [r for r in read_records(store) if event is None or r.get("event") == event]
    if records:
        rows = [(r["seq"], r["time"][:23], r["event"], f"v{r['version']}" if r["version"] is not None else "-",
                 r["actor"], (r["run_id"] or "-")[:8], _summary(r)) for r in records]
        say(format_table(["seq", "time (UTC)", "event", "version", "actor", "run", "details"], rows))
    else:
        say(f"audit log {location}: no records" + (f" of event {event}" if event else ""))
    if not check.ok:
        return fail(f"\nchain: TAMPERED at {check.problem}; records not shaped like a record are not listed", 1)
    say("\nchain: intact")
    return 0


def _summary(record: dict) -> str:
    from keel.governance.timeline import describe_split

    details = record.get("details") or {}
    if details.get("routing"):
        routing = details["routing"]
        return f"{routing.get('strategy')} {routing.get('step')}: {describe_split(routing['arms'], routing.get('shadow'))}"
    if record["event"] == "evaluated":
        failed = details.get("failed") or []
        return f"{details.get('decision')}; {len(details.get('gates', []))} gates" + (f", failed: {'; '.join(failed)}" if failed else "")
    from keel.governance.timeline import describe_oversight

    if describe_oversight(record) is not None:  # approved, refused, break_glass
        return describe_oversight(record)
    if record["event"] == "stage_changed":
        return f"-> {details.get('stage')}" + (f" (replaced v{details['replaced']})" if details.get("replaced") else "")
    if record["event"] == "registration_started":
        return "registration started (a training_run_registered record completes it)"
    if record["event"] == "training_run_registered":
        from keel.provenance import describe_code

        return (f"{details.get('model_family')}, data {str(details.get('data_fingerprint'))[:12]}, "
                f"{describe_code(details, short=True)}")
    if record["event"] == "data_validated":
        return "passed" if details.get("passed") else "FAILED: " + (str(details.get("summary", "")).splitlines() or [""])[0]
    if record["event"] == "deployment_outcome":
        return f"{details.get('outcome')}, serving v{details.get('serving')}"
    text = ", ".join(f"{k}={v}" for k, v in details.items())
    return text if len(text) <= 80 else text[:77] + "..."


def who_served(model: str, at_text: str) -> int:
    from keel.governance.audit import TamperedTrail, verified_trail
    from keel.governance.timeline import describe_split, parse_time, served_at

    try:
        at = parse_time(at_text)
    except ValueError as error:
        return fail(f"audit who-served --at: {error}", 2)
    try:
        records, _ = verified_trail(model, "its answer")
    except TamperedTrail as error:
        return fail(str(error), 1)
    found = served_at(records, at)
    if found is None:
        say(f"{model} at {at.isoformat()}: nothing was being served (no routing recorded before then)")
        return 0
    say(f"{model} at {at.isoformat()}: {describe_split(found['arms'], found['shadow'])}")
    say(f"  in force since {found['since']} ({found['event']}, {found['strategy']} {found['step']}; audit record {found['seq']})")
    say(f"  production stage then: {'v' + str(found['production']) if found['production'] is not None else 'none'}")
    return 0

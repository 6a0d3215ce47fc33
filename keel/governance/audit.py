"""The audit trail: an append-only, hash-chained log of lifecycle events, one immutable record each.

Each record holds its sequence number, UTC time, actor, event, model and version, run id, evidence
artifact ids, details, the previous record's hash and its own hash (SHA-256 of its canonical JSON
without the `hash` key). A record is stored as its canonical JSON under `0000000001.json`, ...;
`verify` finds an edited byte, a deleted, reordered or inserted record and names the first bad one.
The chain proves the log has not been changed piecewise; anchor the head hash elsewhere (it is
printed by `audit verify`) to catch someone rewriting the whole log.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, List, Optional

from keel.clock import as_utc, utc_now
from keel.governance.store import (AuditStore, RecordExists, active_artifact_store_filesystem, active_artifact_store_root,
                                   store_at)

GENESIS = "0" * 64
AUDIT_FOLDER = "keel-audit"
ROOT_ENV = "KEEL_AUDIT_ROOT"      # overrides <artifact store>/keel-audit, e.g. a dedicated WORM bucket
ACTOR_ENV = "KEEL_ACTOR"          # who acts, when a command has no --by (e.g. a CI job's identity)
FIELDS = ("seq", "time", "actor", "event", "model", "version", "run_id", "evidence", "details",
          "prev_hash", "hash")
MAX_ATTEMPTS = 50

# Event names (the retraining trigger is recorded by monitoring through `record_event`).
DATA_VALIDATED = "data_validated"
REGISTRATION_STARTED = "registration_started"  # a version was created; its registration follows
TRAINING_REGISTERED = "training_run_registered"  # ... and is complete up to its completion mark
EVALUATED = "evaluated"
APPROVED = "approved"
DEPLOYMENT_STEP = "deployment_step"
ROUTING_CHANGED = "routing_changed"
ROLLBACK = "rollback"
DEPLOYMENT_OUTCOME = "deployment_outcome"
STAGE_CHANGED = "stage_changed"
RETRAINING_TRIGGERED = "retraining_triggered"
REFUSED = "refused"  # a command refused for want of a role, or an approval refused by maker-checker
BREAK_GLASS = "break_glass"  # an operator's emergency rollback past the approval rules


class AuditError(RuntimeError):
    """The audit log cannot be appended to (damaged, or unreachable)."""


def canonical(value: object) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8; floats as Python writes them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=str).encode("utf-8")


def json_safe(value):
    """`value` as plain JSON: NaN and infinities (a fairness ratio with no judgeable group, say) as
    the strings "NaN", "Infinity", "-Infinity"; tuples as lists; anything else unknown as its text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item") and callable(value.item):  # a NumPy number
        return json_safe(value.item())
    return json_safe(json.loads(json.dumps(value, default=str)))


def record_hash(record: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def record_name(seq: int) -> str:
    return f"{seq:010d}.json"




def resolve_actor(explicit: Optional[str] = None) -> str:
    """`--by` when given, else the identity the command established (keel.governance.identity: with
    governance.roles, or on a ZenML server), else $KEEL_ACTOR, else the active ZenML user, else the OS user."""
    if explicit and explicit.strip():
        return explicit.strip()
    from keel.governance.identity import established

    if established() is not None:
        return established().actor
    if os.environ.get(ACTOR_ENV, "").strip():
        return os.environ[ACTOR_ENV].strip()
    try:
        from zenml.client import Client

        return f"zenml:{Client().active_user.name}"
    except Exception:  # no ZenML store reachable: the OS account still answers for the act
        return f"os:{getpass.getuser()}"


def build_record(seq: int, prev_hash: str, *, event: str, model: str, version: Optional[int],
                 run_id: Optional[str], evidence: Iterable[object], details: Optional[dict], actor: str,
                 time: datetime) -> dict:
    record = {"seq": seq, "time": as_utc(time).isoformat(), "actor": actor, "event": event,
              "model": model, "version": None if version is None else int(version),
              "run_id": None if run_id is None else str(run_id),
              "evidence": [str(e) for e in evidence], "details": json_safe(details or {}),
              "prev_hash": prev_hash}
    record["hash"] = record_hash(record)
    return record


def _head(store: AuditStore) -> tuple[int, str]:
    names = store.names()
    if not names:
        return 0, GENESIS
    try:
        last = json.loads(store.read(names[-1]))
        return int(last["seq"]), str(last["hash"])
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"the audit log at {store.location} is damaged at {names[-1]}; "
                         "run `python run.py audit verify`") from None


def append(store: AuditStore, *, event: str, model: str, version: Optional[int] = None,
           run_id: Optional[str] = None, evidence: Iterable[object] = (), details: Optional[dict] = None,
           actor: Optional[str] = None, time: Optional[datetime] = None) -> dict:
    """Append one record at the head of the chain; a concurrent writer makes us retry one further."""
    evidence, actor = list(evidence), resolve_actor(actor)
    for _ in range(MAX_ATTEMPTS):
        seq, prev_hash = _head(store)
        record = build_record(seq + 1, prev_hash, event=event, model=model, version=version, run_id=run_id,
                              evidence=evidence, details=details, actor=actor, time=time or utc_now())
        try:
            store.create(record_name(record["seq"]), canonical(record))
            return record
        except RecordExists:
            continue
    raise AuditError(f"could not append to the audit log at {store.location} after {MAX_ATTEMPTS} attempts")


@dataclass
class Verification:
    ok: bool
    records: int
    head_hash: str
    problem: Optional[str] = None
    bad_record: Optional[str] = None
    hashes: List[str] = field(default_factory=list)  # of the records that verified, in order

    def holds(self, head_hash: str) -> bool:
        """A head hash kept from an earlier `audit verify` is still in the verified chain: the log has
        only grown since. A rewritten log (even a consistently re-hashed one) has lost it."""
        return head_hash.strip().lower() in self.hashes


def verify(store: AuditStore) -> Verification:
    """Walk the chain from the first record; stop at the first one that is not what it claims."""
    names = store.names()
    previous, previous_name, hashes = GENESIS, "the start of the log", []
    for index, name in enumerate(names, start=1):
        def bad(problem: str, which: str = name) -> Verification:
            return Verification(False, index - 1, previous, f"{which}: {problem}", which, hashes)

        expected = record_name(index)
        raw = store.read(name)
        try:
            record = json.loads(raw)
        except ValueError:
            return bad("not valid JSON (edited)")
        if not is_record(record):
            return bad("not an audit record (fields missing, added or of the wrong type)")
        if record_hash(record) != record["hash"]:
            return bad(f"its content does not match its hash (edited; event {record.get('event')!r})")
        if canonical(record) != raw:
            return bad("its bytes differ from the canonical form its hash was computed on (edited)")
        if name != expected:
            if name.endswith(".json") and name[:-5].isdigit() and int(name[:-5]) > index:
                return bad(f"missing (deleted): after {previous_name} comes {name}", expected)
            return bad(f"unexpected record name (inserted); expected {expected}")
        if record["seq"] != index:
            return bad(f"holds record number {record['seq']}, not {index} (reordered or moved)")
        if record["prev_hash"] != previous:
            return bad(f"its previous-record hash does not match {previous_name} "
                       "(a record before it was replaced, reordered, inserted or deleted)")
        previous, previous_name = record["hash"], name
        hashes.append(previous)
    return Verification(True, len(names), previous, hashes=hashes)


# The type each field of a record has; a value of another type was not written by keel.
FIELD_TYPES = {"seq": int, "time": str, "actor": str, "event": str, "model": str, "version": (int, type(None)),
               "run_id": (str, type(None)), "evidence": list, "details": dict, "prev_hash": str, "hash": str}


def is_record(value: object) -> bool:
    """`value` has the shape of an audit record: exactly its fields, each of its type. (Whether it is
    untouched is `verify`'s question; this only keeps readers from failing on an edited file.)"""
    return (isinstance(value, dict) and set(value) == set(FIELDS)
            and all(isinstance(value[k], t) and not (t is int and isinstance(value[k], bool))
                    for k, t in FIELD_TYPES.items()))


def read_records(store: AuditStore) -> List[dict]:
    """Every file that is shaped like a record, in sequence order; anything else (unparsable, or edited
    into another shape) is left out. Use `verify` to know the records are untouched and complete."""
    records = []
    for name in store.names():
        try:
            record = json.loads(store.read(name))
        except ValueError:
            continue
        if is_record(record):
            records.append(record)
    return records


class InvalidModelName(ValueError):
    """A model name that is not a spec's problem name (and might name a folder outside the audit root)."""


def check_model_name(model: str) -> str:
    """`model` if it matches the spec's `problem.name` pattern, so it can only name a folder under the
    audit root (`--model ../../x` cannot); otherwise InvalidModelName saying what is allowed."""
    import re

    from keel.spec.problem import ProblemSpec

    pattern = next(m.pattern for m in ProblemSpec.model_fields["name"].metadata if getattr(m, "pattern", None))
    if not isinstance(model, str) or not re.fullmatch(pattern, model):
        raise InvalidModelName(f"{model!r} is not a model name: a letter, then up to 63 letters, digits, "
                               f"'_' or '-' (the pattern of problem.name: {pattern})")
    return model


def audit_location(model: str) -> str:
    check_model_name(model)
    root = os.environ.get(ROOT_ENV) or f"{active_artifact_store_root().rstrip('/')}/{AUDIT_FOLDER}"
    return f"{root.rstrip('/')}/{model}"


def audit_store(model: str) -> AuditStore:
    """The model's audit log: under the active stack's artifact store, so every stack has one."""
    location = audit_location(model)
    return store_at(location, active_artifact_store_filesystem() if "://" in location else None)


def record_event(event: str, model: str, version: Optional[int] = None, run_id: Optional[object] = None,
                 evidence: Iterable[object] = (), details: Optional[dict] = None, actor: Optional[str] = None,
                 store: Optional[AuditStore] = None) -> dict:
    """Append a lifecycle event to `model`'s audit log (the active stack's, unless `store` is given).

    For example, monitoring records a retraining trigger with
    `record_event(RETRAINING_TRIGGERED, "credit_risk", version=3, details={"reason": "PSI 0.31 > 0.25"})`.
    """
    return append(store or audit_store(model), event=event, model=model, version=version,
                  run_id=None if run_id is None else str(run_id), evidence=evidence, details=details, actor=actor)


class TamperedTrail(AuditError):
    """The audit trail fails verification, so nothing drawn from it would be evidence."""


def verified_trail(model: str, use: str = "anything drawn from it") -> tuple:
    """(the model's audit records, the verification) only once the hash chain verifies: the one guard
    before lineage, explanations or documents are drawn from the trail. TamperedTrail otherwise."""
    store = audit_store(model)
    check = verify(store)
    if not check.ok:
        raise TamperedTrail(f"audit log {audit_location(model)} is TAMPERED ({check.problem}); {use} cannot be "
                            "trusted. Investigate with: python run.py audit verify")
    return read_records(store), check


def missing_from_trail(records: List[dict], versions: List[dict]) -> List[str]:
    """What the model registry says happened but the trail does not record: a deleted record (even the
    last one, which the chain alone cannot show), or a version made before keel kept a trail.

    Each version's registration must be in the trail, and its latest evaluation, approval and
    deployment in the registry must equal the latest such record in the trail. `versions`: [{number,
    metadata, complete}]; a version whose registration never completed is `interrupted_registrations`'
    to report, not a missing record."""
    latest = _latest_records(records)
    missing = []
    for version in versions:
        if not version.get("complete", True):
            continue
        number, metadata = int(version["number"]), version["metadata"]
        if (TRAINING_REGISTERED, number) not in latest:
            missing.append(f"v{number}: registered in the registry, no {TRAINING_REGISTERED} record in the trail")
        for event, key in ((EVALUATED, "evaluation"), (APPROVED, "approval"), (DEPLOYMENT_OUTCOME, "deployment")):
            if not metadata.get(key):
                continue
            record = latest.get((event, number))
            if record is None:
                missing.append(f"v{number}: the registry records its {key}, the trail has no {event} record")
            elif not _within(record["details"], metadata[key]):
                missing.append(f"v{number}: the registry's latest {key} differs from the trail's latest {event} "
                               f"record ({record_name(record['seq'])}): a later record is missing")
    return missing


def _latest_records(records: List[dict]) -> dict:
    """{(event, version): its latest record}. ZenML merges a metadata key's dicts, so the latest record
    must be within the merge."""
    return {(record.get("event"), record.get("version")): record for record in records}


def interrupted_registrations(records: List[dict], versions: List[dict]) -> List[str]:
    """The versions whose registration never completed (`versions` as `missing_from_trail` takes them),
    each with what the trail recorded of it: a killed `train`, not an edited trail."""
    latest = _latest_records(records)
    found = []
    for version in versions:
        if version.get("complete", True):
            continue
        number = int(version["number"])
        started, registered = latest.get((REGISTRATION_STARTED, number)), latest.get((TRAINING_REGISTERED, number))
        if registered is not None:
            trail = (f"the trail records it registered ({record_name(registered['seq'])}), the registry never "
                     "marked it complete")
        elif started is not None:
            trail = f"{REGISTRATION_STARTED} at {started['time']} ({record_name(started['seq'])}), nothing after it"
        else:
            trail = f"killed before its {REGISTRATION_STARTED} record"
        found.append(f"v{number}: registration interrupted, never completed; {trail}")
    return found


def _within(recorded, merged) -> bool:
    """Every key of `recorded` has the same value in `merged` (recursively for dicts)."""
    if isinstance(recorded, dict) and isinstance(merged, dict):
        return all(key in merged and _within(value, merged[key]) for key, value in recorded.items())
    return canonical(json_safe(recorded)) == canonical(json_safe(merged))

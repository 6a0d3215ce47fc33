"""What one evaluation records on its model version and in the audit trail, and how the gates it
applied compare with the version's earlier evaluations.

Every record has the same keys (but the threshold, below): ZenML merges the dicts logged under one
metadata key, so a key that only some records had would linger into later ones.

(No `from __future__ import annotations` here: under it Python 3.11's TypedDict counts `NotRequired`
keys as required.)
"""

from typing import Dict, List, NotRequired, Optional, TypedDict

from keel.evaluation.gates import Decision, GateHistoryEntry
from keel.spec.data import DataSpec
from keel.spec.evaluation import EvaluationSpec

RUNNING, FINISHED, FAILED = "running", "finished", "failed"


class AppliedGate(TypedDict):
    """A gate of the spec as an evaluation applied it."""

    key: str
    min: Optional[float]
    max: Optional[float]


class RecordedGate(TypedDict):
    gate: str
    metric: str
    value: Optional[float]
    passed: bool


class EvaluationRecord(TypedDict):
    """The evaluation as stored on the model version (metadata `evaluation`) and in the audit trail
    (the `evaluated` event's details). `status` is RUNNING, FINISHED or FAILED; `decision` as in
    `keel.evaluation.gates.Decision`. Only a finished run records `threshold` and `threshold_rule`.

    A record stored by an older keel may lack keys added since (`advisory`, `missing`,
    `applied_gates`, `blocking`, `gate_changes`, `calibration`, ...): readers of stored records use `.get` for those."""

    decision: str
    status: str
    passed: bool
    complete: bool
    deployable: bool
    advisory: bool
    failed: List[str]
    missing: List[str]
    failed_step: Optional[str]
    gates: List[RecordedGate]
    applied_gates: List[AppliedGate]
    blocking: bool
    gate_changes: List[str]
    spec_sha256: str
    spec_differs_from_training: bool
    run_id: Optional[str]
    run_name: Optional[str]
    calibration: str  # evaluation.calibration.method of the scores judged
    threshold: NotRequired[float]
    threshold_rule: NotRequired[Optional[str]]
    contract: NotRequired[dict]  # release_contract of the spec it judged under (absent before it was recorded)
    evidence_minimums: NotRequired[Dict[str, int]]  # a finished run's `evidence_minimums(spec.data)`


class StagedEvaluation(EvaluationRecord):
    """The record with the stage the version has after it was recorded (the evaluation_record
    artifact; the stage itself is not part of what is stored)."""

    stage: Optional[str]


def applied_gates(evaluation: EvaluationSpec) -> List[AppliedGate]:
    """The spec's gates as plain records: what this evaluation judged against."""
    return [{"key": g.key, "min": g.min, "max": g.max} for g in evaluation.gates]


def evidence_minimums(data: DataSpec) -> Dict[str, int]:
    """The least evidence a group or a test split is judged on (keel.evaluation.fairness.group_rule)."""
    return {"data.min_group_size": data.min_group_size, "data.min_group_outcomes": data.min_group_outcomes}


def gate_changes(previous: Optional[EvaluationRecord], gates: List[AppliedGate], blocking: bool,
                 spec_sha256: str, minimums: Optional[Dict[str, int]] = None,
                 roles_declared: Optional[bool] = None) -> List[str]:
    """How this evaluation's gates differ from the version's previous evaluation: loosened or removed
    gates (a pass they alone made possible must be visible), added or tightened ones, a lowered or raised
    least evidence (`evidence_minimums`: a group judged on fewer rows), governance.roles dropped
    (`roles_declared`: approvals stop being maker-checker), a changed spec."""
    if not previous or previous.get("applied_gates") is None:
        return []
    changes = []
    if (previous.get("contract") or {}).get("roles_declared") and roles_declared is False:
        changes.append("LOOSENED: governance.roles removed (approvals are no longer maker-checker: anyone may "
                       "approve and release)")
    for key, old in (previous.get("evidence_minimums") or {}).items():
        new = (minimums or {}).get(key)
        if new is not None and new < old:
            changes.append(f"LOOSENED: {key} {old} -> {new} (groups and test splits judged on less evidence)")
        elif new is not None and new > old:
            changes.append(f"tightened: {key} -> {new}")
    before = {g["key"]: g for g in previous["applied_gates"]}
    now = {g["key"]: g for g in gates}
    for key, old in before.items():
        new = now.get(key)
        if new is None:
            changes.append(f"LOOSENED: gate {key} removed")
            continue
        if old["min"] is not None and (new["min"] is None or new["min"] < old["min"]):
            changes.append(f"LOOSENED: {key} min {old['min']:g} -> {'none' if new['min'] is None else format(new['min'], 'g')}")
        if old["max"] is not None and (new["max"] is None or new["max"] > old["max"]):
            changes.append(f"LOOSENED: {key} max {old['max']:g} -> {'none' if new['max'] is None else format(new['max'], 'g')}")
        if new["min"] is not None and (old["min"] is None or new["min"] > old["min"]):
            changes.append(f"tightened: {key} min -> {new['min']:g}")
        if new["max"] is not None and (old["max"] is None or new["max"] < old["max"]):
            changes.append(f"tightened: {key} max -> {new['max']:g}")
    changes += [f"added: gate {key}" for key in now if key not in before]
    if previous.get("blocking", True) and not blocking:
        changes.append("LOOSENED: gates made advisory (evaluation.blocking: false)")
    if previous.get("spec_sha256") and previous["spec_sha256"] != spec_sha256:
        changes.append(f"spec changed since the previous evaluation ({previous['spec_sha256'][:12]} -> "
                       f"{spec_sha256[:12]})")
    return changes


def loosened(changes: List[str]) -> bool:
    return any(change.startswith("LOOSENED") for change in changes)


def previous_evaluation(records: List[dict], version: int) -> Optional[EvaluationRecord]:
    """The latest finished evaluation of `version` in the audit trail (its details), if any."""
    finished = [r["details"] for r in records if r.get("event") == "evaluated" and r.get("version") == version
                and (r.get("details") or {}).get("status") == FINISHED]
    return finished[-1] if finished else None


def evaluation_record(decision: Decision, *, status: str, run_id, run_name: Optional[str], spec_sha256: str,
                      evaluation: EvaluationSpec, training_spec_sha256: Optional[str] = None,
                      threshold: Optional[float] = None, threshold_rule: Optional[str] = None,
                      changes: Optional[List[str]] = None, minimums: Optional[Dict[str, int]] = None,
                      contract: Optional[dict] = None) -> EvaluationRecord:
    """The full record of one evaluation (running, finished or failed)."""
    record: EvaluationRecord = {
        "decision": decision["decision"], "status": status, "passed": bool(decision["passed"]),
        "complete": bool(decision["complete"]), "deployable": bool(decision["deployable"]),
        "advisory": bool(decision.get("advisory")), "failed": list(decision["failed"]),
        "missing": list(decision.get("missing") or []), "failed_step": decision.get("failed_step"),
        "gates": [{"gate": g["gate"], "metric": g["metric"], "value": g["value"], "passed": g["passed"]}
                  for g in decision["gates"]],
        "applied_gates": applied_gates(evaluation), "blocking": evaluation.blocking,
        "gate_changes": list(changes or []), "spec_sha256": spec_sha256,
        "spec_differs_from_training": bool(training_spec_sha256) and training_spec_sha256 != spec_sha256,
        "run_id": None if run_id is None else str(run_id), "run_name": run_name,
        "calibration": evaluation.calibration.method}
    # Only a finished run chose a threshold; an unfinished one leaves the last chosen in place
    # (the production version keeps serving at it while its re-evaluation is incomplete).
    if threshold is not None:
        record["threshold"] = threshold
        record["threshold_rule"] = threshold_rule
    if minimums is not None:
        record["evidence_minimums"] = dict(minimums)
    if contract is not None:
        record["contract"] = dict(contract)
    return record


def release_contract(spec) -> dict:
    """What a version is released under beside its gates: what its scores mean (the target's classes and
    the favourable one, keel.spec.data.target_mapping), the input contract (features with their types,
    ranges and categories; sensitive attributes), the decisions (reasons, refer band) and who may approve
    and release it (governance roles and approvals, deployment.approval); all but the target as SHA-256s.
    Recorded with each evaluation: `deploy` and batch scoring refuse a spec that changed any of it."""
    import hashlib
    import json

    from keel.spec.data import target_mapping

    def sha256(value) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()

    data = spec.data.model_dump(mode="json")
    governance = spec.governance.model_dump(mode="json")
    return {"target": target_mapping(spec.data.target), "roles_declared": spec.governance.roles is not None,
            "inputs": sha256({"features": data["features"], "sensitive_attributes": data["sensitive_attributes"]}),
            "decisions": sha256(spec.decisions.model_dump(mode="json")),
            "release": sha256({"roles": governance["roles"], "required_approvals": governance["required_approvals"],
                               "approval_valid_days": governance["approval_valid_days"],
                               "approval": spec.deployment.approval.model_dump(mode="json")})}


CONTRACT_PARTS = {"inputs": "the input contract (data.features, data.sensitive_attributes)",
                  "decisions": "the decisions section (reasons, refer band)",
                  "release": "who may approve and release it (governance roles and approvals, deployment.approval)"}


# The spec's keys each part of the release contract is drawn from (the target is compared by contract_changes).
CONTRACT_KEYS = {"inputs": ("data.features", "data.sensitive_attributes"), "decisions": ("decisions",),
                 "release": ("governance.roles", "governance.required_approvals", "governance.approval_valid_days",
                             "deployment.approval")}


def contract_key_changes(evaluated_under, spec, limit: int = 6) -> List[str]:
    """Each key of the release contract whose value differs between the spec an evaluation ran under
    and `spec`, as "key: then -> now" (at most `limit`, then how many more)."""
    from keel.governance.reproduce import flat
    from keel.reports.values import format_value

    then, now = evaluated_under.model_dump(mode="json"), spec.model_dump(mode="json")
    changes = []
    for path in (key for keys in CONTRACT_KEYS.values() for key in keys):
        before, after = flat(_at(then, path), path), flat(_at(now, path), path)
        changes += [f"{key}: {format_value(before.get(key, '(absent)'))} -> {format_value(after.get(key, '(absent)'))}"
                    for key in sorted(set(before) | set(after)) if before.get(key, "(absent)") != after.get(key, "(absent)")]
    return changes[:limit] + ([f"{len(changes) - limit} more"] if len(changes) > limit else [])


def _at(tree: dict, path: str):
    for part in path.split("."):
        tree = (tree or {}).get(part) if isinstance(tree, dict) else None
    return tree


def contract_changes(recorded: Optional[dict], spec) -> List[str]:
    """What of release_contract(spec) differs from a recorded one, in words; [] when nothing does or
    nothing was recorded (evaluations from before it was)."""
    from keel.spec.data import target_change

    if not recorded:
        return []
    now = release_contract(spec)
    target = target_change(recorded.get("target"), spec.data.target)
    return ([f"the target ({target})"] if target else []) + [
        words for part, words in CONTRACT_PARTS.items() if recorded.get(part) != now[part]]


def gate_history(records: List[dict], version: int) -> List[GateHistoryEntry]:
    """Each finished or failed evaluation of `version` in the audit trail, oldest first: when, which
    run, the decision, the gates it applied and how they changed."""
    history: List[GateHistoryEntry] = []
    for record in records:
        details = record.get("details") or {}
        if record.get("event") != "evaluated" or record.get("version") != version or details.get("status") == RUNNING:
            continue
        gates = details.get("applied_gates")
        history.append({"time": record.get("time"), "run_name": details.get("run_name"),
                        "decision": details.get("decision"),
                        "gates": "; ".join(describe_gate(g) for g in gates) if gates is not None else "(not recorded)",
                        "changes": "; ".join(details.get("gate_changes") or []) or "-"})
    return history


def describe_gate(gate: AppliedGate) -> str:
    bounds = [f">= {gate['min']:g}" if gate["min"] is not None else "", f"<= {gate['max']:g}" if gate["max"] is not None else ""]
    return f"{gate['key']} {' '.join(b for b in bounds if b)}"

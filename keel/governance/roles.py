"""Who may do what, and when a version counts as approved: the pure rules, no ZenML.

Roles come from the spec (`governance.roles`). A role entry is a name (`alice`: the ZenML account or the
OS account of that name) or a qualified one (`zenml:alice`, `os:alice`: that source only).

Maker-checker: an approval counts only when its approver holds the approver role under the roles in
force (an approval recorded without roles, or by a name, never does), neither trained the version nor
ran the evaluation it approves, names that evaluation's run and the digest of its gate results, and has not
expired; a version is approved when `required_approvals` distinct approvers' approvals count. A later
evaluation voids every approval of the one before (its run id and digest differ).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

DEVELOPER, VALIDATOR, APPROVER, OPERATOR = "developer", "validator", "approver", "operator"
ROLES = (DEVELOPER, VALIDATOR, APPROVER, OPERATOR)

# The roles each command accepts (any one of them).
COMMAND_ROLES: Dict[str, Tuple[str, ...]] = {
    "train": (DEVELOPER, VALIDATOR),
    "evaluate": (DEVELOPER, VALIDATOR),
    "mitigate": (DEVELOPER,),
    "approve": (APPROVER,),
    "deploy": (OPERATOR,),
    "rollback": (OPERATOR,),
    "review": (OPERATOR,),  # decisions on a monitoring review
    "score": (OPERATOR, DEVELOPER),
}


def holds(entry: str, actor: str) -> bool:
    """Role entry `entry` names the identity `actor` ("<source>:<name>"; a bare name is no identity)."""
    if ":" in entry:
        return entry == actor
    return ":" in actor and actor.split(":", 1)[1] == entry


def roles_of(roles: Dict[str, Sequence[str]], actor: str) -> List[str]:
    return [role for role in ROLES if any(holds(entry, actor) for entry in roles.get(role, ()))]


def refusal(roles: Dict[str, Sequence[str]], command: str, actor: str, authenticated: bool = True) -> Optional[str]:
    """None when `actor` may run `command`, else the one message: the role needed and who holds it."""
    needed = COMMAND_ROLES[command]
    if set(needed) & set(roles_of(roles, actor)):
        return None
    holders = "; ".join(f"{role}: {', '.join(roles.get(role, ())) or 'nobody'}" for role in needed)
    how = "" if authenticated else " (an unauthenticated OS account)"
    return (f"keel: {command} refused: it needs the role {' or '.join(needed)}, which {actor}{how} does not hold "
            f"(governance.roles: {holders})")


def gate_digest(evaluation: dict) -> str:
    """SHA-256 of what an approver approves: the evaluation's run, decision, threshold and every gate
    with its value and outcome (canonical JSON, so equal results give equal digests)."""
    from keel.governance.audit import canonical, json_safe

    evidence = {key: evaluation.get(key) for key in ("run_id", "decision", "deployable", "threshold", "gates",
                                                    "applied_gates", "blocking", "failed", "missing")}
    return hashlib.sha256(canonical(json_safe(evidence))).hexdigest()


@dataclass
class ApprovalStatus:
    version: int
    required: int
    evaluation_run: Optional[str]
    counted: List[dict] = field(default_factory=list)  # approval details that count, one per approver
    void: List[Tuple[dict, str]] = field(default_factory=list)  # (approval details, why it does not count)

    @property
    def approved(self) -> bool:
        return len(self.counted) >= self.required

    @property
    def approvers(self) -> List[str]:
        return [a["actor"] for a in self.counted]

    def summary(self) -> str:
        text = (f"v{self.version}: {len(self.counted)} of {self.required} approval(s) count"
                f"{' (' + ', '.join(self.approvers) + ')' if self.counted else ''}")
        if self.void:
            text += "; not counted: " + "; ".join(f"{a.get('actor')} at {a.get('at')}: {why}" for a, why in self.void)
        return text


def approval_status(version: int, evaluation: Optional[dict], approvals: Iterable[dict], makers: Iterable[str],
                    required: int, valid_days: Optional[int], now: datetime, *,
                    roles: Dict[str, Sequence[str]]) -> ApprovalStatus:
    """Which approvals of `version` count against its latest `evaluation` (registry record).

    `approvals`: the details of its `approved` audit records, oldest first (each with `actor`, `at`,
    `evaluation_run`, `gates_digest`); `makers`: the actors who trained it or ran that evaluation;
    `roles`: governance.roles in force, whose approvers alone count."""
    run = (evaluation or {}).get("run_id")
    status = ApprovalStatus(version, required, run)
    digest = gate_digest(evaluation) if evaluation else None
    makers = set(makers)
    seen = set()
    for approval in approvals:
        why = _why_void(approval, run, digest, makers, valid_days, now, roles)
        if why is None and approval.get("actor") in seen:
            why = "the same approver approved already (approvals count per distinct approver)"
        if why is None:
            seen.add(approval["actor"])
            status.counted.append(approval)
        else:
            status.void.append((approval, why))
    return status


def _why_void(approval: dict, run: Optional[str], digest: Optional[str], makers: set, valid_days: Optional[int],
              now: datetime, roles: Dict[str, Sequence[str]]) -> Optional[str]:
    if not approval.get("actor") or not approval.get("evaluation_run"):
        return "it names no authenticated approver or no evaluation (recorded before maker-checker)"
    if (approval.get("identity") or {}).get("actor") != approval["actor"]:
        # Approved under a spec without roles (or with roles switched off by --set): --by or $KEEL_ACTOR.
        return (f"{approval['actor']} is a name as given, not an identity keel established (recorded without "
                "governance.roles in force)")
    if APPROVER not in roles_of(roles, approval["actor"]):
        return f"{approval['actor']} does not hold the approver role in governance.roles"
    if run is None:
        return "the version has no evaluation"
    if approval["evaluation_run"] != run or approval.get("gates_digest") != digest:
        return (f"void: it approved evaluation run {approval['evaluation_run']}, the version was evaluated again "
                f"since (run {run})")
    if approval["actor"] in makers:
        return "its approver trained the version or ran its evaluation (maker-checker)"
    if valid_days is not None:
        try:
            at = datetime.fromisoformat(approval["at"])
        except (KeyError, TypeError, ValueError):
            return "it has no valid approval time"
        if now >= at + timedelta(days=valid_days):
            return f"expired: approvals are valid {valid_days} day(s) (governance.approval_valid_days)"
    return None


def approval_refusal(actor: str, makers: Dict[str, Sequence[str]]) -> Optional[str]:
    """Why `actor` may not approve (maker-checker), or None. `makers`: {"trained": [...], "evaluated": [...]}."""
    did = [what for what, who in makers.items() if actor in who]
    if not did:
        return None
    return (f"maker-checker: {actor} {' and '.join(did)} this version, so another approver must approve it "
            "(the one who builds or validates a model is not the one who approves it)")


def trail_makers(records: List[dict], version: int, evaluation_run: Optional[str]) -> Dict[str, List[str]]:
    """{"trained": actors who registered `version`, "evaluated": actors of its evaluation `evaluation_run`},
    from the audit records."""
    mine = [r for r in records if r.get("version") == version]
    trained = {r["actor"] for r in mine if r.get("event") in ("registration_started", "training_run_registered")}
    evaluated = {r["actor"] for r in mine if r.get("event") == "evaluated" and evaluation_run is not None
                 and r.get("run_id") == str(evaluation_run)}
    return {"trained": sorted(trained), "evaluated": sorted(evaluated)}


def trail_approvals(records: List[dict], version: int) -> List[dict]:
    """The details of `version`'s `approved` records, oldest first, each with its record's actor."""
    return [{**r["details"], "actor": r["actor"]} for r in records
            if r.get("event") == "approved" and r.get("version") == version]

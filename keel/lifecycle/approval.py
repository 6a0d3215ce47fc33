"""Approving a model version for production: who approved it, why, when, and which evaluation, recorded
on the version and in the audit trail. Only a version whose latest evaluation is deployable can be
approved (an approval of a rejected or unevaluated version would be a signature on nothing).

With `governance.roles` declared, approvals are maker-checker (keel.governance.roles): the approver is
an identity (keel.governance.identity) that neither trained the version nor ran the evaluation it
approves; each approval names that evaluation's run and the digest of its gate results, so evaluating
the version again voids it; `deploy` and `rollback` refuse a version that is not approved now (fewer
distinct approvers than `required_approvals`, void or expired approvals) unless an operator breaks
the glass. Refusals are recorded in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from keel.governance.identity import Identity
from keel.governance.roles import ApprovalStatus
from keel.spec.governance import GovernanceSpec


@dataclass(frozen=True)
class ApprovalResult:
    model: str
    version: Optional[int] = None  # the version approved (resolved when none was given)
    approval: Optional[dict] = None  # as recorded: {"by", "reason", "at", "evaluation_run", "gates_digest", ...}
    error: Optional[str] = None  # why nothing was recorded
    status: Optional[ApprovalStatus] = None  # with roles: where the version stands after this approval


def enforced(governance: Optional[GovernanceSpec]) -> bool:
    return governance is not None and governance.roles is not None


def approve_version(model: str, version: Optional[int], by: Optional[str], reason: str,
                    governance: Optional[GovernanceSpec] = None, identity: Optional[Identity] = None) -> ApprovalResult:
    """Record an approval of `version` (None: the latest) with `reason`, or say why it is refused.

    `identity`: who approves (the command's resolved identity; `by` is then its display name). Without
    it, `by` names the approver, as before roles. With `governance.roles`, maker-checker applies."""
    from keel.deployment.deploy import NotDeployable, check_deployable
    from keel.governance.audit import TamperedTrail, verified_trail
    from keel.governance.roles import approval_refusal, gate_digest
    from keel.registry import evaluation_outcome, record_approval, resolve_version

    by = (by or "").strip() or (identity.name if identity else "")
    if not by or not reason.strip():
        return ApprovalResult(model, version, error="keel: an approval names who approves (by) and why (reason)")
    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return ApprovalResult(model, error=f"keel: {error}")
    evaluation = evaluation_outcome(model, version)
    try:
        check_deployable(version, evaluation)
    except NotDeployable as error:
        return ApprovalResult(model, version, error=f"keel: {model} {error}; it cannot be approved for production")
    evidence = {"evaluation_run": evaluation.get("run_id"), "gates_digest": gate_digest(evaluation)}
    if identity is not None:
        evidence["identity"] = identity.record()
    if not enforced(governance):
        return ApprovalResult(model, version, record_approval(model, version, by, reason, evidence,
                                                              identity.actor if identity else None))
    if identity is None:
        return ApprovalResult(model, version, error="keel: with governance.roles an approval needs the approver's "
                                                    "identity")
    try:
        records, _ = verified_trail(model, "an approval drawn from it")
    except TamperedTrail as error:
        return ApprovalResult(model, version, error=f"keel: {error}")
    makers = makers_of(records, version, evaluation)
    refused = approval_refusal(identity.actor, makers)
    if refused is None and identity.actor in version_status(governance, model, version, records).approvers:
        refused = f"{identity.actor} approved this evaluation of v{version} already; another approver must add theirs"
    if refused is not None:
        message = f"keel: approve refused: {model} v{version}: {refused}"
        record_refusal(model, version, "approve", identity, message)
        return ApprovalResult(model, version, error=message)
    evidence["required_approvals"] = governance.required_approvals
    approval = record_approval(model, version, by, reason, evidence, identity.actor)
    status = version_status(governance, model, version)
    return ApprovalResult(model, version, approval, status=status)


def makers_of(records: List[dict], version: int, evaluation: Optional[dict]) -> Dict[str, List[str]]:
    """Who trained `version` and who ran `evaluation` of it: the trail's actors, and on a ZenML server
    also the accounts the server recorded as running those pipeline runs (however the trail was written)."""
    from keel.governance.audit import REGISTRATION_STARTED, TRAINING_REGISTERED
    from keel.governance.roles import trail_makers

    run = (evaluation or {}).get("run_id")
    makers = trail_makers(records, version, run)
    training_runs = [r["run_id"] for r in records if r.get("version") == version
                     and r["event"] in (REGISTRATION_STARTED, TRAINING_REGISTERED)]
    return {"trained": sorted(set(makers["trained"]) | _run_accounts(training_runs)),
            "evaluated": sorted(set(makers["evaluated"]) | _run_accounts([run]))}


def _run_accounts(run_ids) -> set:
    from keel.governance.identity import ZENML, on_server

    if on_server() is None:  # a local store's runs all belong to its one "default" user: nobody in particular
        return set()
    from zenml.client import Client

    found = set()
    for run_id in {str(r) for r in run_ids if r}:
        try:
            user = Client().get_pipeline_run(run_id).user
        except KeyError:
            continue
        if user is not None:
            found.add(f"{ZENML}:{user.name}")
    return found


def version_status(governance: GovernanceSpec, model: str, version: int,
                   records: Optional[List[dict]] = None) -> ApprovalStatus:
    """Where `version`'s approvals stand now against its latest evaluation (TamperedTrail if the trail
    does not verify: nothing drawn from it would count)."""
    from keel.clock import utc_now
    from keel.governance.audit import verified_trail
    from keel.governance.roles import approval_status, trail_approvals
    from keel.registry import evaluation_outcome

    if records is None:
        records, _ = verified_trail(model, "the approvals drawn from it")
    evaluation = evaluation_outcome(model, version)
    makers = makers_of(records, version, evaluation)
    return approval_status(version, evaluation, trail_approvals(records, version),
                           makers["trained"] + makers["evaluated"], governance.required_approvals,
                           governance.approval_valid_days, utc_now(), roles=governance.roles or {})


def release_refusal(governance: Optional[GovernanceSpec], model: str, version: int, command: str,
                    identity: Optional[Identity]) -> Optional[str]:
    """With roles: why `command` (deploy, rollback) may not put `version` into production now, recorded
    in the trail; None when its approvals count. Fails closed: an unreadable or tampered trail refuses."""
    from keel.governance.audit import TamperedTrail

    if not enforced(governance):
        return None
    try:
        status = version_status(governance, model, version)
    except TamperedTrail as error:
        message = f"keel: {command} refused: {error}"
    else:
        if status.approved:
            return None
        from keel.deployment.deploy import NotDeployable, check_deployable
        from keel.registry import evaluation_outcome

        try:  # the check `approve` makes: where it refuses, no approval can be given
            check_deployable(version, evaluation_outcome(model, version))
        except NotDeployable as error:
            message = (f"keel: {command} refused: {model} {status.summary()}, and none can be given: {error}; it "
                       "cannot be approved for production")
        else:
            message = (f"keel: {command} refused: {model} {status.summary()}. Approve it with "
                       f"`python run.py approve --model {model} --version {version} --reason TEXT` "
                       f"({governance.required_approvals} distinct approver(s), neither its trainer nor its evaluator)")
        if command == "rollback":
            message += "; in an emergency an operator may `rollback --break-glass --reason TEXT`"
    record_refusal(model, version, command, identity, message)
    return message


def record_refusal(model: str, version: Optional[int], command: str, identity: Optional[Identity],
                   message: str) -> None:
    from keel.governance.audit import REFUSED, record_event

    record_event(REFUSED, model, version, actor=identity.actor if identity else None,
                 details={"command": command, "reason": message,
                          "identity": identity.record() if identity else None})


def rollback_target(model: str) -> Optional[int]:
    """The version `rollback` would restore: the one the production version replaced, if any."""
    from keel.registration import DEPLOYMENT
    from keel.registry import get_model_version_metadata, production_version

    current = production_version(model)
    if current is None:
        return None
    return (get_model_version_metadata(model, current).get(DEPLOYMENT) or {}).get("archived")


def record_break_glass(model: str, version: Optional[int], identity: Optional[Identity], reason: str,
                       status: Optional[ApprovalStatus], actor: Optional[str] = None) -> dict:
    """An operator's emergency rollback past the approval rules: recorded before it acts, with the reason
    and where the restored version's approvals stood."""
    from keel.governance.audit import BREAK_GLASS, record_event
    from keel.registry import production_version

    return record_event(BREAK_GLASS, model, version, actor=identity.actor if identity else actor,
                        details={"reason": reason, "command": "rollback", "replacing": production_version(model),
                                 "approvals": status.summary() if status else "not checked (no governance.roles)",
                                 "identity": identity.record() if identity else None})


def approval_in_force(governance: GovernanceSpec, model: str, version: int, approval: Optional[dict]) -> Optional[dict]:
    """The version's recorded approval as the rollout may use it: with roles, only while its approvals
    count now (void, expired, too few or an unverifiable trail: None, so the challenger never takes all
    the traffic, whichever command started the rollout); without roles, as recorded."""
    from keel.governance.audit import TamperedTrail

    if not enforced(governance) or not approval:
        return approval
    try:
        return approval if version_status(governance, model, version).approved else None
    except TamperedTrail:
        return None


@dataclass(frozen=True)
class ReleaseClearance:
    """Whether a command may put a version into production now. `version`: the one it releases (for
    deploy resolved only under roles; for rollback the one it would restore, or None); `refusal`: why
    not (recorded in the trail); `broke_glass`: an operator's emergency rollback, recorded before it acts."""

    version: Optional[int] = None
    refusal: Optional[str] = None
    broke_glass: bool = False


def deploy_clearance(governance: Optional[GovernanceSpec], model: str, version: Optional[int],
                     identity: Optional[Identity]) -> ReleaseClearance:
    """With roles only a version whose approvals count now is deployed (`version` None: the latest,
    resolved here); without roles every version is cleared and left as given."""
    from keel.registry import resolve_version

    if not enforced(governance):
        return ReleaseClearance(version)
    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return ReleaseClearance(version, refusal=f"keel: {error}")
    return ReleaseClearance(version, refusal=release_refusal(governance, model, version, "deploy", identity))


def rollback_clearance(governance: Optional[GovernanceSpec], model: str, identity: Optional[Identity],
                       actor: Optional[str] = None, break_glass: Optional[str] = None,
                       spec=None) -> ReleaseClearance:
    """The version a rollback restores must be deployable as `deploy` would judge it under `spec` (its
    latest evaluation complete and passed, under this spec's gates and contract) and, with roles,
    approved now; unless an operator breaks the glass (`break_glass`: the reason), which is recorded
    with where its approvals stood. Nothing to restore is no refusal and breaks no glass: the rollback
    itself says so."""
    from keel.governance.audit import TamperedTrail

    roles = enforced(governance)
    target = rollback_target(model)
    if target is None:
        return ReleaseClearance()
    if break_glass:
        status = None
        if roles:
            try:
                status = version_status(governance, model, target)
            except TamperedTrail:  # a tampered trail does not stop an emergency rollback
                status = None
        record_break_glass(model, target, identity, break_glass, status, actor)
        return ReleaseClearance(target, broke_glass=True)
    undeployable = undeployable_refusal(model, target, spec)
    if undeployable is not None:
        record_refusal(model, target, "rollback", identity, undeployable)
        return ReleaseClearance(target, refusal=undeployable)
    return ReleaseClearance(target, refusal=release_refusal(governance, model, target, "rollback", identity)
                            if roles else None)


def undeployable_refusal(model: str, version: int, spec=None) -> Optional[str]:
    """Why a rollback may not restore `version` (None if it may): a version evaluated since it served (a
    rejection against the production version, a failed or unfinished run) is no longer deployable, and
    `deploy`, `approve` and batch scoring already refuse it."""
    from keel.deployment.deploy import NotDeployable, check_deployable
    from keel.registry import evaluation_outcome

    try:
        check_deployable(version, evaluation_outcome(model, version), spec)
    except NotDeployable as why:
        return (f"keel: rollback refused: {why}; in an emergency an operator may "
                "`rollback --break-glass --reason TEXT`")
    return None

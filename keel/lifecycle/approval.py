"""Approving a model version for production: who approved it, why, and when, recorded on the version
and in the audit trail. Only a version whose latest evaluation is deployable can be approved (an
approval of a rejected or unevaluated version would be a signature on nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class ApprovalResult:
    model: str
    version: Optional[int] = None  # the version approved (resolved when none was given)
    approval: Optional[dict] = None  # as recorded: {"by", "reason", "at"}
    error: Optional[str] = None  # why nothing was recorded


def approve_version(model: str, version: Optional[int], by: str, reason: str) -> ApprovalResult:
    """Record `by`'s approval of `version` (None: the latest) with `reason`, or say why it is refused."""
    from keel.deployment.deploy import NotDeployable, check_deployable
    from keel.registry import evaluation_outcome, record_approval, resolve_version

    if not by.strip() or not reason.strip():
        return ApprovalResult(model, version, error="keel: an approval names who approves (by) and why (reason)")
    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return ApprovalResult(model, error=f"keel: {error}")
    try:
        check_deployable(version, evaluation_outcome(model, version))
    except NotDeployable as error:
        return ApprovalResult(model, version, error=f"keel: {model} {error}; it cannot be approved for production")
    return ApprovalResult(model, version, record_approval(model, version, by, reason))

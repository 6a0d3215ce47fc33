"""A person's decision on a referred prediction: recorded in the audit trail and beside the model's in the
prediction log (never overwritten), both or neither."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

REVIEW_DECIDED = "review_decided"  # audit event: a person decided a referred prediction
DECISIONS = ("favourable", "unfavourable")


def decided_class(decision: str, spec) -> int:
    """The class a favourable/unfavourable decision predicts (1 = the positive class); ValueError when
    the spec does not say which decision benefits the person."""
    favourable = spec.data.target.favourable
    if favourable is None:
        raise ValueError("data.target.favourable is not declared: say which decision benefits the person before "
                         "people decide referrals")
    positive_is_favourable = favourable == "positive"
    return int((decision == "favourable") == positive_is_favourable)


@dataclass
class ReviewResult:
    """The review as recorded (the model's score and decision beside the person's); or `error`."""

    review: Optional[dict] = None
    overrides_model: bool = False
    error: Optional[str] = None


def decide_referral(spec, request_id: str, row: int, decision: str, reason: str, reviewer: str) -> ReviewResult:
    """Record `reviewer`'s `decision` (favourable or unfavourable) with `reason` on the referral
    `request_id`:`row`, then audit it (ValueError when the decision cannot be mapped to a class)."""
    from keel.clock import utc_now
    from keel.deployment.deploy import prediction_log_url
    from keel.governance.audit import AuditError, record_event
    from keel.serving.reviews import ReviewError, record_decision

    human = decided_class(decision, spec)

    def audit(review: dict) -> None:
        record_event(REVIEW_DECIDED, spec.problem.name, review["model_version"], details={
            "request_id": request_id, "row": row, "decision": decision, "class": human,
            "model_decision": review["model_decision"], "score": review["score"], "reason": review["reason"],
            "overrides_model": human != review["model_decision"]}, actor=reviewer)

    try:
        review = record_decision(prediction_log_url(spec), request_id, row, human, reason, reviewer, utc_now(), audit)
    except ReviewError as error:
        return ReviewResult(error=str(error))
    except (OSError, AuditError) as error:  # the trail refused it: the decision was not committed either
        return ReviewResult(error=f"keel: the decision could not be recorded in the audit trail ({error}); nothing "
                                  "was recorded: decide again once the trail can be written")
    return ReviewResult(review, human != review["model_decision"])

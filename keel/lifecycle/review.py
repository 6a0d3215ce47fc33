"""A person's decision on a referred prediction: recorded in the audit trail and beside the model's in the
prediction log (never overwritten), both or neither."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

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


def referral_row(spec, request_id: str) -> int:
    """The row meant by a referral named without one: the request's only referral (row 0 when it has
    none, whose refusal then names it). ValueError when it has several: deciding row 0 of a batch or a
    multi-record request would record the person's decision for someone else. LookupError when the
    queue cannot be read."""
    import sqlalchemy as sa

    from keel.deployment.deploy import prediction_log_url
    from keel.serving.prediction_log import readable_log
    from keel.serving.reviews import referred_rows

    url = prediction_log_url(spec)
    try:
        rows = referred_rows(url, request_id) if readable_log(url) else []
    except sa.exc.SQLAlchemyError as error:
        raise LookupError(f"the review queue cannot be read ({type(error).__name__}: {error})") from None
    if len(rows) > 1:
        shown = ", ".join(f"{request_id}:{row}" for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise ValueError(f"request {request_id} has {len(rows)} referrals ({shown}): name the row, as "
                         "`review list` shows it")
    return rows[0] if rows else 0


def decide_referral(spec, request_id: str, row: int, decision: str, reason: str, reviewer: str) -> ReviewResult:
    """Record `reviewer`'s `decision` (favourable or unfavourable) with `reason` on the referral
    `request_id`:`row`, then audit it (ValueError when the decision cannot be mapped to a class)."""
    from keel.clock import utc_now
    from keel.deployment.deploy import prediction_log_url
    from keel.governance.audit import AuditError, record_event
    from keel.serving.reviews import ReviewError, record_decision

    human = decided_class(decision, spec)

    def audit(review: dict) -> None:
        from keel.registry import version_target_change

        other_target = version_target_change(spec, int(review["model_version"]))
        if other_target:  # refused before anything is committed or audited
            raise ReviewError(f"referral {request_id}:{row} was made by {spec.problem.name} v{review['model_version']}, "
                              f"trained with another target than this spec declares ({other_target}): "
                              f"'{decision}' would be recorded as the wrong class; decide it under the spec that "
                              "version was trained with")
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


def trail_disagreements(reviews: Iterable[dict], records: List[dict], every_review: bool = True) -> List[str]:
    """Where the prediction log's decided referrals (`reviews`: keel.serving.reviews rows) and the audit
    trail's REVIEW_DECIDED records disagree: a decision the trail never recorded, one recorded otherwise
    (class, reason or reviewer), or (when `reviews` are `every_review` the log holds) one the trail records
    and the log no longer holds. The log's table is not tamper-evident; the trail is, so the trail is the
    record a person's decision is checked against."""
    audited = {(r["details"]["request_id"], int(r["details"]["row"])): r for r in records
               if r.get("event") == REVIEW_DECIDED and isinstance(r.get("details"), dict)}
    problems, seen = [], set()
    for review in reviews:
        if review.get("decided_at") is None:
            continue
        key = (review["request_id"], int(review["row"]))
        seen.add(key)
        record = audited.get(key)
        name = f"referral {key[0]}:{key[1]}"
        if record is None:
            problems.append(f"{name}: decided in the prediction log by {review['reviewer']}, no {REVIEW_DECIDED} "
                            "record in the audit trail")
            continue
        given = {"class": review["human_decision"], "reason": review["reason"], "reviewer": review["reviewer"]}
        recorded = {"class": record["details"].get("class"), "reason": record["details"].get("reason"),
                    "reviewer": record.get("actor")}
        changed = [key_ for key_ in given if given[key_] != recorded[key_]]
        if changed:
            problems.append(f"{name}: the prediction log's {', '.join(changed)} differ from the audit trail's record "
                            f"(seq {record['seq']}: {', '.join(f'{k} {recorded[k]!r}' for k in changed)})")
    problems += [f"referral {k[0]}:{k[1]}: the audit trail records a decision (seq {r['seq']}) the prediction log "
                 "no longer holds" for k, r in audited.items() if every_review and k not in seen]
    return problems

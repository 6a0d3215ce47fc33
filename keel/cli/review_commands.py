"""`run.py review list` and `run.py review decide`: the people's side of referred decisions
(registered by keel.cli.main; the queue itself is keel.serving.reviews)."""

from __future__ import annotations

import argparse

from keel.cli.options import spec_options

REVIEW_DECIDED = "review_decided"  # audit event: a person decided a referred prediction
DECISIONS = ("favourable", "unfavourable")


def register(commands) -> None:
    review = commands.add_parser("review", help="predictions referred to a person (decisions.refer_band): list "
                                                "them, record a person's decision")
    actions = review.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="referrals nobody has decided yet, oldest first")
    spec_options(listing)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.set_defaults(handler=_list)
    decide = actions.add_parser("decide", help="record a person's decision on one referral (never overwritten; "
                                               "the model's score stays as logged)")
    spec_options(decide)
    decide.add_argument("referral", metavar="REQUEST_ID[:ROW]", help="as `review list` shows it (row 0 if omitted)")
    decide.add_argument("--decision", required=True, choices=DECISIONS,
                        help="the decision for the person: the favourable one (data.target.favourable) or not")
    decide.add_argument("--reason", required=True, help="why, in words the applicant and an auditor can read")
    decide.add_argument("--by", default=None, help="display name of who decides (checked against your identity)")
    decide.set_defaults(handler=_decide)


def _referral(text: str) -> tuple:
    request_id, _, row = text.rpartition(":") if ":" in text else (text, "", "0")
    if not request_id or not row.isdigit():
        raise ValueError(f"{text!r} is not REQUEST_ID or REQUEST_ID:ROW (a row number)")
    return request_id, int(row)


def _class_of(decision: str, spec) -> int:
    """The class a favourable/unfavourable decision predicts (1 = the positive class)."""
    favourable = spec.data.target.favourable
    if favourable is None:
        raise ValueError("data.target.favourable is not declared: say which decision benefits the person before "
                         "people decide referrals")
    positive_is_favourable = favourable == "positive"
    return int((decision == "favourable") == positive_is_favourable)


def _list(args: argparse.Namespace, spec) -> int:
    from keel.cli.console import fail, format_table, say
    from keel.deployment.deploy import prediction_log_url
    from keel.serving.reviews import pending_reviews

    if args.limit < 1:
        return fail("--limit must be at least 1", 2)
    pending = pending_reviews(prediction_log_url(spec), args.limit)
    if not pending:
        say("no referral waits for a decision")
        return 0
    say(format_table(["referral", "entity", "version", "score", "referred at"],
                     [(f"{r['request_id']}:{r['row']}", r["entity_id"] or "-", f"v{r['model_version']}",
                       f"{r['score']:.4f}", str(r["referred_at"])) for r in pending]))
    say(f"\ndecide one: python run.py review decide REQUEST_ID:ROW --decision {'|'.join(DECISIONS)} --reason TEXT")
    return 0


def _decide(args: argparse.Namespace, spec) -> int:
    from keel.cli.authorize import authorize
    from keel.cli.console import fail, say
    from keel.clock import utc_now
    from keel.deployment.deploy import prediction_log_url
    from keel.governance.audit import record_event, resolve_actor
    from keel.serving.reviews import ReviewError, record_decision

    try:
        request_id, row = _referral(args.referral)
        human = _class_of(args.decision, spec)
    except ValueError as error:
        return fail(str(error), 2)
    authorization = authorize(spec, "review", args.by)
    if authorization.refused:
        return authorization.exit_code
    reviewer = authorization.actor or resolve_actor(args.by)
    try:
        review = record_decision(prediction_log_url(spec), request_id, row, human, args.reason, reviewer, utc_now())
    except ReviewError as error:
        return fail(str(error), 1)
    record_event(REVIEW_DECIDED, spec.problem.name, review["model_version"], details={
        "request_id": request_id, "row": row, "decision": args.decision, "class": human,
        "model_decision": review["model_decision"], "score": review["score"], "reason": review["reason"],
        "overrides_model": human != review["model_decision"]}, actor=reviewer)
    say(f"recorded: {request_id}:{row} {args.decision} by {reviewer} (model: score {review['score']:.4f}, "
        f"{'overridden' if human != review['model_decision'] else 'same as the threshold decision'})")
    return 0

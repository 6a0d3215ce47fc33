"""`run.py review list` and `run.py review decide`: the people's side of referred decisions
(registered by keel.cli.main; the queue itself is keel.serving.reviews)."""

from __future__ import annotations

import argparse

from keel.cli.options import spec_options
from keel.lifecycle.review import DECISIONS


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
    decide.add_argument("referral", metavar="REQUEST_ID[:ROW]",
                        help="as `review list` shows it (ROW may be left out when the request has one referral)")
    decide.add_argument("--decision", required=True, choices=DECISIONS,
                        help="the decision for the person: the favourable one (data.target.favourable) or not")
    decide.add_argument("--reason", required=True, help="why, in words the person it concerns and an auditor can read")
    decide.add_argument("--by", default=None, help="display name of who decides (checked against your identity)")
    decide.set_defaults(handler=_decide)


def _referral(text: str) -> tuple:
    """(request id, row), the row None where it is left out."""
    request_id, _, row = text.rpartition(":") if ":" in text else (text, "", None)
    if not request_id or (row is not None and not row.isdigit()):
        raise ValueError(f"{text!r} is not REQUEST_ID or REQUEST_ID:ROW (a row number)")
    return request_id, None if row is None else int(row)


def _list(args: argparse.Namespace, spec) -> int:
    from keel.cli.console import fail, format_table, say
    from keel.deployment.deploy import prediction_log_url
    from keel.serving.reviews import pending_count, pending_reviews

    if args.limit < 1:
        return fail("--limit must be at least 1", 2)
    url = prediction_log_url(spec)
    pending = pending_reviews(url, args.limit)
    if not pending:
        say("no referral waits for a decision")
        return 0
    say(format_table(["referral", "entity", "version", "score", "referred at"],
                     [(f"{r['request_id']}:{r['row']}", r["entity_id"] or "-", f"v{r['model_version']}",
                       f"{r['score']:.4f}", str(r["referred_at"])) for r in pending]))
    total = pending_count(url) if len(pending) == args.limit else len(pending)
    if total > len(pending):
        say(f"\nthe oldest {len(pending)} of {total} pending referrals (--limit {total} lists them all)")
    say(f"\ndecide one: python run.py review decide REQUEST_ID:ROW --decision {'|'.join(DECISIONS)} --reason TEXT")
    return 0


def _decide(args: argparse.Namespace, spec) -> int:
    from keel.cli.authorize import authorize
    from keel.cli.console import fail, say
    from keel.governance.audit import resolve_actor
    from keel.lifecycle.review import decide_referral, decided_class, referral_row

    try:
        request_id, row = _referral(args.referral)
        decided_class(args.decision, spec)  # a spec that cannot map the decision is refused before anything
        if row is None:
            row = referral_row(spec, request_id)
    except ValueError as error:
        return fail(str(error), 2)
    except LookupError as error:
        return fail(f"keel: {error}", 1)
    authorization = authorize(spec, "review", args.by)
    if authorization.refused:
        return authorization.exit_code
    reviewer = authorization.actor or resolve_actor(args.by)
    result = decide_referral(spec, request_id, row, args.decision, args.reason, reviewer)
    if result.error is not None:
        return fail(result.error, 1)
    say(f"recorded: {request_id}:{row} {args.decision} by {reviewer} (model: score {result.review['score']:.4f}, "
        f"{'overridden' if result.overrides_model else 'same as the threshold decision'})")
    return 0

"""Commands of the model lifecycle: train, runs, evaluate, mitigate, deploy, serve, rollback, approve, check,
score, validate, and the main job. Each handler imports its work lazily, so `--help` stays instant."""

from __future__ import annotations

import argparse

from keel.cli.console import fail
from keel.cli.options import spec_options


def register(commands) -> None:
    train = commands.add_parser("train", help="run the training pipeline and register a model version")
    spec_options(train)
    train.add_argument("--no-cache", action="store_true", help="recompute every step")
    train.set_defaults(handler=_train)

    runs = commands.add_parser("runs", help="list training runs with metrics, parameters and data")
    spec_options(runs)
    runs.add_argument("--where", action="append", default=[], metavar="COND",
                      help="filter, e.g. 'roc_auc>0.85', 'test.f1>=0.4', 'model_family=lightgbm' "
                           "(repeatable; all must hold)")
    runs.set_defaults(handler=_runs)

    evaluate = commands.add_parser("evaluate", help="evaluate a model version: seven dimensions, gates, model card")
    spec_options(evaluate)
    evaluate.add_argument("--model-version", type=int, default=None, metavar="N",
                          help="version number (default: the latest)")
    evaluate.add_argument("--no-cache", action="store_true", help="recompute every step")
    evaluate.set_defaults(handler=_evaluate)

    mitigate = commands.add_parser("mitigate", help="fit the spec's fairness mitigation on a version and register "
                                                    "the mitigated model as a new version")
    spec_options(mitigate)
    mitigate.add_argument("--model-version", type=int, default=None, metavar="N",
                          help="the version to mitigate (default: the latest)")
    mitigate.add_argument("--no-cache", action="store_true", help="recompute every step")
    mitigate.set_defaults(handler=_mitigate)

    deploy = commands.add_parser("deploy", help="roll a version that passed evaluation out to the local service")
    spec_options(deploy)
    deploy.add_argument("--model-version", type=int, default=None, metavar="N", help="default: the latest")
    deploy.add_argument("--strategy", choices=["all-at-once", "blue-green", "canary", "ab", "shadow"],
                        default=None, help="override the spec's rollout strategy")
    deploy.add_argument("--by", default=None, metavar="WHO",
                        help="who deploys, for the audit trail (default: $KEEL_ACTOR, else the ZenML user)")
    deploy.set_defaults(handler=_deploy)

    serve = commands.add_parser("serve", help="serve the production version in the foreground")
    spec_options(serve)
    serve.add_argument("--port", type=int, default=None, help="default: deployment.port of the spec")
    serve.set_defaults(handler=_serve)

    rollback = commands.add_parser("rollback", help="route all traffic back to the previous production version")
    spec_options(rollback)
    rollback.add_argument("--by", default=None, metavar="WHO",
                          help="who rolls back, for the audit trail (default: $KEEL_ACTOR, else the ZenML user; "
                               "with governance.roles or a ZenML server a display name for your own identity)")
    rollback.add_argument("--break-glass", action="store_true",
                          help="emergency: an operator restores the previous version even when its approvals do not "
                               "count (needs --reason; recorded as a break-glass event)")
    rollback.add_argument("--reason", default=None, metavar="TEXT", help="why the glass is broken (with --break-glass)")
    rollback.set_defaults(handler=_rollback)

    approve = commands.add_parser("approve", help="record who approved a version for production, and why")
    spec_options(approve)
    approve.add_argument("--model", required=True)
    approve.add_argument("--version", type=int, required=True)
    approve.add_argument("--by", default=None, metavar="WHO",
                         help="who approves (with governance.roles or a ZenML server: a display name for your own "
                              "identity, which is what counts)")
    approve.add_argument("--reason", required=True, help="why (a reason or a ticket)")
    approve.set_defaults(handler=_approve)

    check = commands.add_parser("check", help="model tests for CI: spec, data sample, train, every gate "
                                              "(no ZenML; exit 3 if a blocking gate fails)")
    spec_options(check)
    check.add_argument("--sample", type=int, default=5000, metavar="N", help="rows to sample (default 5000)")
    check.set_defaults(handler=_check)

    score = commands.add_parser("score", help="score a file, Parquet directory or SQL query in batch with the "
                                              "production version (exit 3 above batch.max_reject_fraction)")
    spec_options(score)
    score.add_argument("--input", required=True, metavar="SOURCE",
                       help="a CSV or Parquet file, a directory or glob of Parquet files, or an SQLAlchemy URL "
                            "(with --query)")
    score.add_argument("--output", required=True, metavar="DEST", help="the scored file (rejects beside it)")
    score.add_argument("--model-version", type=int, default=None, metavar="N", help="default: the production version")
    score.add_argument("--format", choices=["parquet", "csv"], default=None,
                       help="of the output (default: its suffix, else the spec's batch.output_format)")
    score.add_argument("--query", default=None, metavar="SQL", help="the rows to score, for an SQLAlchemy URL input")
    score.add_argument("--new-batch", action="store_true",
                       help="score again an input already scored by this version under this spec (a new batch id)")
    score.set_defaults(handler=_score)

    validate = commands.add_parser("validate", help="validate a spec and exit (no ZenML involved)")
    spec_options(validate)
    validate.set_defaults(handler=_validate)


def _score(args: argparse.Namespace, spec) -> int:
    from keel.cli.score import score

    return score(spec, args.input, args.output, args.model_version, args.format, args.query, args.new_batch)


def _validate(args: argparse.Namespace, spec) -> int:
    print(f"{args.config}: valid spec for problem '{spec.problem.name}'")
    return 0


def _runs(args: argparse.Namespace, spec) -> int:
    from keel.cli.runs import list_runs

    return list_runs(spec, args.where)


def _check(args: argparse.Namespace, spec) -> int:
    from keel.cli.check import check

    if args.sample < 100:
        return fail("check: --sample must be at least 100 rows", 2)
    return check(spec, args.sample)


def _train(args: argparse.Namespace, spec) -> int:
    from keel.cli.train import train

    return train(spec, args.config, no_cache=args.no_cache)


def _evaluate(args: argparse.Namespace, spec) -> int:
    from keel.cli.evaluate import evaluate

    return evaluate(spec, args.model_version, no_cache=args.no_cache)


def _mitigate(args: argparse.Namespace, spec) -> int:
    from keel.cli.mitigate import mitigate

    return mitigate(spec, args.model_version, no_cache=args.no_cache)


def _deploy(args: argparse.Namespace, spec) -> int:
    from keel.cli.deploy import deploy

    if args.by is not None and not args.by.strip():
        return fail("deploy: --by must not be empty", 2)
    return deploy(spec, args.model_version, args.strategy, args.by)


def _serve(args: argparse.Namespace, spec) -> int:
    from keel.cli.deploy import serve

    return serve(spec, args.port)


def _rollback(args: argparse.Namespace, spec) -> int:
    from keel.cli.deploy import rollback

    if args.by is not None and not args.by.strip():
        return fail("rollback: --by must not be empty", 2)
    if args.break_glass != (args.reason is not None) or (args.reason is not None and not args.reason.strip()):
        return fail("rollback: --break-glass and --reason TEXT go together (the reason is recorded)", 2)
    return rollback(spec, args.by, args.reason if args.break_glass else None)


def _approve(args: argparse.Namespace, spec) -> int:
    from keel.cli.deploy import approve

    if (args.by is not None and not args.by.strip()) or not args.reason.strip():
        return fail("approve: --by and --reason must not be empty", 2)
    return approve(spec, args.model, args.version, args.by, args.reason)


def main_job(args: argparse.Namespace, spec) -> int:
    """The whole lifecycle on the default spec: train -> evaluate -> deploy -> simulated production
    traffic (the generator's drift knobs, delayed labels) -> monitor -> retrain -> evaluate against
    the champion -> roll out or reject, ending with a timeline of what happened and where the reports are."""
    from keel.cli.monitor import closed_loop

    return closed_loop(spec, args.config)

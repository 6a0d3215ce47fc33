"""The command line: parse, validate the spec, dispatch. ZenML is imported only by a command that
runs or reads pipelines, so `--help` and spec errors answer at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from keel.cli.console import fail
from keel.provenance import PROJECT_ROOT

DEFAULT_SPEC = PROJECT_ROOT / "configs" / "credit_risk.yaml"


def _spec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_SPEC,
                        help="problem spec (default: configs/credit_risk.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a spec key, e.g. --set data.source.rows=5000 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="keel: a declarative, governed ML lifecycle on ZenML. "
                    "With no command, runs the main job (train, evaluate, deploy on the default spec).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="run the training pipeline and register a model version")
    _spec_options(train)
    train.add_argument("--no-cache", action="store_true", help="recompute every step")

    runs = commands.add_parser("runs", help="list training runs with metrics, parameters and data")
    _spec_options(runs)
    runs.add_argument("--where", action="append", default=[], metavar="COND",
                      help="filter, e.g. 'roc_auc>0.85', 'test.f1>=0.4', 'model_family=lightgbm' "
                           "(repeatable; all must hold)")

    evaluate = commands.add_parser("evaluate", help="evaluate a model version: seven dimensions, gates, model card")
    _spec_options(evaluate)
    evaluate.add_argument("--model-version", type=int, default=None, metavar="N",
                          help="version number (default: the latest)")
    evaluate.add_argument("--no-cache", action="store_true", help="recompute every step")

    deploy = commands.add_parser("deploy", help="roll a version that passed evaluation out to the local service")
    _spec_options(deploy)
    deploy.add_argument("--model-version", type=int, default=None, metavar="N", help="default: the latest")
    deploy.add_argument("--strategy", choices=["all-at-once", "blue-green", "canary", "ab", "shadow"],
                        default=None, help="override the spec's rollout strategy")

    serve = commands.add_parser("serve", help="serve the production version in the foreground")
    _spec_options(serve)
    serve.add_argument("--port", type=int, default=None, help="default: deployment.port of the spec")

    rollback = commands.add_parser("rollback", help="route all traffic back to the previous production version")
    _spec_options(rollback)

    approve = commands.add_parser("approve", help="record who approved a version for production, and why")
    _spec_options(approve)
    approve.add_argument("--model", required=True)
    approve.add_argument("--version", type=int, required=True)
    approve.add_argument("--by", required=True, help="who approves")
    approve.add_argument("--reason", required=True, help="why (a reason or a ticket)")

    check = commands.add_parser("check", help="model tests for CI: spec, data sample, train, every gate "
                                              "(no ZenML; exit 3 if a blocking gate fails)")
    _spec_options(check)
    check.add_argument("--sample", type=int, default=5000, metavar="N", help="rows to sample (default 5000)")

    validate = commands.add_parser("validate", help="validate a spec and exit (no ZenML involved)")
    _spec_options(validate)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from keel.spec import SpecError, load_spec

    command = args.command or "main"
    config = getattr(args, "config", DEFAULT_SPEC)
    try:
        spec = load_spec(config, getattr(args, "overrides", []))
    except SpecError as error:
        return fail(str(error), 2)

    if command == "validate":
        print(f"{config}: valid spec for problem '{spec.problem.name}'")
        return 0
    if command == "runs":
        from keel.cli.runs import list_runs

        return list_runs(spec, args.where)

    if command == "check":
        from keel.cli.check import check

        if args.sample < 100:
            return fail("check: --sample must be at least 100 rows", 2)
        return check(spec, args.sample)
    if command == "evaluate":
        from keel.cli.evaluate import evaluate

        return evaluate(spec, args.model_version, no_cache=args.no_cache)
    if command in ("deploy", "serve", "rollback", "approve"):
        from keel.cli import deploy as deployment

        if command == "deploy":
            return deployment.deploy(spec, args.model_version, args.strategy)
        if command == "serve":
            return deployment.serve(spec, args.port)
        if command == "rollback":
            return deployment.rollback(spec)
        if not args.by.strip() or not args.reason.strip():
            return fail("approve: --by and --reason must not be empty", 2)
        return deployment.approve(spec, args.model, args.version, args.by, args.reason)

    from keel.cli.train import train

    no_cache = getattr(args, "no_cache", False)
    if command == "train":
        return train(spec, config, no_cache=no_cache)
    return main_job(spec, config)


def main_job(spec, config: Path) -> int:
    """The whole lifecycle on the default spec: train -> evaluate -> deploy (monitoring joins here)."""
    from keel.cli.deploy import deploy
    from keel.cli.evaluate import evaluate
    from keel.cli.train import train

    for phase in (lambda: train(spec, config), lambda: evaluate(spec, version=None),
                  lambda: deploy(spec, version=None, strategy=None)):
        code = phase()
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

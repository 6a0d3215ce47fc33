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
                    "With no command, runs the main job (train, then evaluate, on the default spec).",
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

    from keel.cli.train import train

    no_cache = getattr(args, "no_cache", False)
    if command == "train":
        return train(spec, config, no_cache=no_cache)
    return main_job(spec, config)


def main_job(spec, config: Path) -> int:
    """The whole lifecycle on the default spec: train -> evaluate (later phases join here)."""
    from keel.cli.evaluate import evaluate
    from keel.cli.train import train

    code = train(spec, config)
    if code != 0:
        return code
    return evaluate(spec, version=None)


if __name__ == "__main__":
    sys.exit(main())

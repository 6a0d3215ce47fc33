"""Options shared by every command that reads a spec, and what runs before any command."""

from __future__ import annotations

import argparse
from pathlib import Path

from keel.provenance import PROJECT_ROOT

DEFAULT_SPEC = PROJECT_ROOT / "configs" / "credit_risk.yaml"


def spec_options(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """`--config` and `--set`, accepted before or after the command name. Only the top-level parser
    holds defaults: a subparser's default would overwrite a value given before the command."""
    config_default = DEFAULT_SPEC if top_level else argparse.SUPPRESS
    overrides_default = [] if top_level else argparse.SUPPRESS
    parser.add_argument("--config", type=Path, default=config_default,
                        help="problem spec (default: configs/credit_risk.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=overrides_default,
                        metavar="KEY.PATH=VALUE",
                        help="override a spec key, e.g. --set data.source.rows=5000 (repeatable)")


def before_command(args: argparse.Namespace) -> None:
    """Runs after the spec validated and before the command's work (e.g. choosing a stack)."""

"""Options shared by every command that reads a spec, and what runs before any command."""

from __future__ import annotations

import argparse
from pathlib import Path

from keel.provenance import PROJECT_ROOT

DEFAULT_SPEC = PROJECT_ROOT / "configs" / "credit_risk.yaml"


def spec_options(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """`--config`, `--set` and `--stack`, accepted before or after the command name. Only the
    top-level parser holds defaults: a subparser's default would overwrite a value given before the
    command."""
    config_default = DEFAULT_SPEC if top_level else argparse.SUPPRESS
    overrides_default = [] if top_level else argparse.SUPPRESS
    stack_default = None if top_level else argparse.SUPPRESS
    parser.add_argument("--config", type=Path, default=config_default,
                        help="problem spec (default: configs/credit_risk.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=overrides_default,
                        metavar="KEY.PATH=VALUE",
                        help="override a spec key, e.g. --set data.source.rows=5000 (repeatable)")
    parser.add_argument("--stack", default=stack_default, metavar="NAME",
                        help="run on this ZenML stack: a file stacks/NAME.yaml or a path to a stack file "
                             "(applied before with `stack apply`; its extras and secrets are checked), or "
                             "a stack registered in the current store (default: the active stack)")


def before_command(args: argparse.Namespace) -> int:
    """Runs after the spec validated and before the command's work: activates `--stack NAME` (and
    connects to that stack's ZenML store). A stack that cannot be used ends the command here, before
    any pipeline starts: returns 2 for a bad stack file, 1 for a store that cannot be used, else 0."""
    name = getattr(args, "stack", None)
    if not name:
        return 0
    from keel.cli.console import fail, say
    from keel.stacks import StackFileError
    from keel.stacks.apply import StackApplyError, use_stack

    try:
        say(f"keel: running on {use_stack(name)}")
    except StackFileError as error:
        return fail(str(error), 2)
    except StackApplyError as error:
        return fail(str(error), 1)
    return 0

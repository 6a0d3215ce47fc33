"""The command line: parse, validate the spec, dispatch. Commands are registered by one module per
area; ZenML is imported only by a handler that runs or reads pipelines, so `--help` and spec errors
answer at once."""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import sys
from typing import List, Optional

from keel.cli.console import fail
from keel.cli.options import before_command, record_config, resolve_config, spec_options, verbose_option

# The cyclic garbage collector's thresholds for a command's process (CPython's defaults: 700, 10, 10).
# A command imports ZenML, pandas, scikit-learn and BentoML: ~300,000 objects, each young collection
# on the way promoting more of them, and every full collection scanning them all. Measured with
# benchmarks/cli_collector.py (medians, RESULTS.md): `train` 0.85x and `runs` 0.83x of their time with the defaults,
# the same peak memory on 200,000 rows.
COLLECTOR_THRESHOLDS = (5000, 20, 100)

# Each module has `register(commands)`; every parser it adds sets `handler(args, spec) -> exit code`
# and, for commands that need no problem spec (e.g. a stack file), `needs_spec=False`.
COMMAND_MODULES = (
    "keel.cli.lifecycle_commands",
    "keel.cli.monitoring_commands",
    "keel.cli.stack_commands",
    "keel.cli.governance_commands",
    "keel.cli.dashboard_commands",
    "keel.cli.spec_commands",
    "keel.cli.review_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="keel: a declarative, governed ML lifecycle on ZenML. "
                    "With no command, runs the main job (the whole lifecycle on the default spec).",
    )
    spec_options(parser, top_level=True)
    verbose_option(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    _add_to_every_command(parser, verbose_option)
    return parser


def _add_to_every_command(parser: argparse.ArgumentParser, add) -> None:
    """`add(subparser)` on every command and action below `parser` (e.g. `stack show`), so that a global
    option is accepted after the command name too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):  # aliases share a parser
                add(subparser)
                _add_to_every_command(subparser, add)


def read_installed_packages_once() -> None:
    """ZenML finds the package of each artifact's type and materializer through
    `importlib.metadata.packages_distributions()`, which re-reads every installed distribution's
    metadata on each call (0.2 s here; a training run makes 9 calls). Nothing is installed while a
    command runs, so the process reads them once."""
    if not hasattr(importlib.metadata.packages_distributions, "cache_info"):
        importlib.metadata.packages_distributions = functools.cache(importlib.metadata.packages_distributions)


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; Ctrl+C anywhere a command does not handle it itself (e.g. while ZenML loads, before a
    pipeline starts) ends it with one line and exit 130, not Python's traceback of every frame."""
    args = build_parser().parse_args(argv)
    try:
        return _run_command(args)
    except KeyboardInterrupt:
        from keel.lifecycle.retraining import INTERRUPTED_EXIT

        return fail(f"keel: {args.command or 'the main job'} interrupted (Ctrl+C)", INTERRUPTED_EXIT)


def _run_command(args: argparse.Namespace) -> int:
    read_installed_packages_once()
    from keel.cli.lifecycle_commands import main_job
    from keel.spec import SpecError, load_spec

    handler = getattr(args, "handler", main_job)
    spec = None
    if getattr(args, "needs_spec", True):
        unresolved = resolve_config(args)  # --config, else the project's spec, else the last one used here
        if unresolved:
            return unresolved
        try:
            spec = load_spec(args.config, args.overrides)
        except SpecError as error:
            return fail(str(error), 2)
        record_config(args)
    from keel.cli.zenml_log import zenml_errors_to_file

    from keel.governance.identity import establish

    try:
        with zenml_errors_to_file(args.command, args.verbose) as errors:
            code = before_command(args) or handler(args, spec)
    finally:
        establish(None)  # who acted is this command's: not the next one's when commands run in one process
    if errors is not None and errors.pointer():
        fail(errors.pointer())
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Options shared by every command that reads a spec, and what runs before any command."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from keel.files import write_atomically
from keel.provenance import PROJECT_ROOT

DEFAULT_SPEC = PROJECT_ROOT / "configs" / "credit_risk.yaml"  # the embedded demo: the main job's spec
PROJECT_SPECS = Path("configs")  # the project's specs, beside where commands run (configs/examples/ left out)
LAST_SPEC = Path(".keel") / "last_spec"  # the spec the last command here used (like .keel/deployments)
LAST_SPEC_ENV = "KEEL_LAST_SPEC"  # another place for that file (the tests keep theirs apart)


class SpecChoiceError(Exception):
    """No `--config`, and no single spec to take: several of the project's own, none used before."""


@dataclass(frozen=True)
class ChosenSpec:
    path: Path
    why: Optional[str] = None  # None: given with --config (or the main job's demo); else how it was found


def last_spec_file() -> Path:
    return Path(os.environ.get(LAST_SPEC_ENV) or LAST_SPEC)


def project_specs(folder: Path = PROJECT_SPECS) -> List[Path]:
    """The YAML specs directly in `folder`, except the embedded demo: configs/examples/ holds examples."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml")]
    return sorted(p for p in found if p.resolve() != DEFAULT_SPEC.resolve())


def read_last_spec() -> Optional[Path]:
    """The spec recorded by the last command run here (whether or not that file is still there)."""
    try:
        recorded = Path(last_spec_file().read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return recorded if str(recorded) != "." else None


def remember_spec(path: Path) -> None:
    """Record `path` as the last spec used here; a folder that cannot be written is no reason to fail."""
    target = last_spec_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, f"{Path(path).resolve()}\n")
    except OSError:
        pass


def choose_spec(given: Optional[Path], main_job: bool = False) -> ChosenSpec:
    """`--config` when given; the main job's default is the embedded demo. Otherwise the project's one spec
    in configs/ (the demo and configs/examples/ left out), else the last spec used here, else the demo when
    the project has no spec of its own. SpecChoiceError when it has several and none was used here yet."""
    if given is not None:
        return ChosenSpec(Path(given))
    if main_job:
        return ChosenSpec(DEFAULT_SPEC)
    specs = project_specs()
    if len(specs) == 1:
        return ChosenSpec(specs[0], f"the only spec in {PROJECT_SPECS}/ besides the demo and examples")
    last = read_last_spec()
    if last is not None and last.is_file():
        return ChosenSpec(last, f"the last spec used here, recorded in {last_spec_file()}")
    if last is not None:  # not the demo instead: a command would train or deploy another model than meant
        raise SpecChoiceError(f"the last spec used here, {last}, is gone (moved or deleted; recorded in "
                              f"{last_spec_file()}): choose one with --config PATH")
    if specs:
        raise SpecChoiceError(f"{len(specs)} specs in {PROJECT_SPECS}/ ({', '.join(p.name for p in specs)}) and none "
                              f"used here yet: choose one with --config PATH")
    return ChosenSpec(DEFAULT_SPEC, f"the embedded demo: no spec of your own in {PROJECT_SPECS}/ and none used here yet")


def given_path(text: str) -> Path:
    """A path argument; an empty one is refused (Path("") is ".", the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: give the file")
    return Path(text)


def spec_options(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """`--config`, `--set` and `--stack`, accepted before or after the command name. Only the
    top-level parser holds defaults: a subparser's default would overwrite a value given before the
    command."""
    overrides_default = [] if top_level else argparse.SUPPRESS
    stack_default = None if top_level else argparse.SUPPRESS
    config_default = None if top_level else argparse.SUPPRESS
    parser.add_argument("--config", type=given_path, default=config_default,
                        help="problem spec (default: the only spec in configs/ besides the demo and "
                             "configs/examples/, else the last spec used here, else the demo "
                             "configs/credit_risk.yaml; the main job: the demo)")
    parser.add_argument("--set", dest="overrides", action="append", default=overrides_default,
                        metavar="KEY.PATH=VALUE",
                        help="override a spec key, e.g. --set data.source.rows=5000, a gate by metric "
                             "evaluation.gates[roc_auc].min=0.8, a name holding dots in double quotes "
                             "'data.features.\"Sepal.Length\".min=0' (repeatable)")
    parser.add_argument("--stack", default=stack_default, metavar="NAME",
                        help="run on this ZenML stack: a file stacks/NAME.yaml or a path to a stack file "
                             "(applied before with `stack apply`; its extras and secrets are checked), or "
                             "a stack registered in the current store (default: the active stack)")


def verbose_option(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """`--verbose`, before or after the command name (only the top level holds the default, as above)."""
    parser.add_argument("--verbose", action="store_true", default=False if top_level else argparse.SUPPRESS,
                        help="show ZenML's error records, tracebacks included, on the terminal (by default "
                             "they go to a log file under .keel/logs/ whose path a failed command prints)")


def resolve_config(args: argparse.Namespace) -> int:
    """Sets `args.config` to the spec the command works on and says how it was found when it was not
    given; returns 2 (with the message) when there is no single one to take, else 0."""
    from keel.cli.console import fail

    try:
        chosen = choose_spec(getattr(args, "config", None), main_job=getattr(args, "handler", None) is None)
    except SpecChoiceError as error:
        return fail(f"keel: {error}", 2)
    args.config = chosen.path
    if chosen.why:  # on stderr: what a command prints on stdout stays its own
        print(f"keel: spec {chosen.path} ({chosen.why}; --config PATH chooses another)", file=sys.stderr, flush=True)
    return 0


def record_config(args: argparse.Namespace) -> None:
    """After the spec validated: remember it as the last spec used here (not for `validate`, which
    only checks a file)."""
    if getattr(args, "command", None) != "validate":
        remember_spec(args.config)


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

"""Commands of the stack area: `stack apply FILE...`, `stack list`, `stack show NAME`. They need no
problem spec; ZenML is imported only by the handler that talks to a store."""

from __future__ import annotations

import argparse
from pathlib import Path

from keel.cli.console import fail, format_table, say


def register(commands) -> None:
    stack = commands.add_parser("stack", help="apply, list and show ZenML stacks defined in stacks/*.yaml")
    actions = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    apply = actions.add_parser("apply", help="register or update stacks from their files (idempotent) "
                                             "and activate the last one")
    apply.add_argument("files", nargs="+", type=Path, metavar="FILE", help="e.g. stacks/remote.yaml")
    apply.add_argument("--no-activate", action="store_true", help="register only; keep the active stack")
    apply.set_defaults(handler=_apply, needs_spec=False)

    listing = actions.add_parser("list", help="stack files in stacks/ and stacks registered in the current store")
    listing.set_defaults(handler=_list, needs_spec=False)

    show = actions.add_parser("show", help="a stack file as it resolves (environment substituted; "
                                           "secrets stay references)")
    show.add_argument("name", metavar="NAME", help="a file stacks/NAME.yaml, or a path")
    show.set_defaults(handler=_show, needs_spec=False)


def _apply(args: argparse.Namespace, spec) -> int:
    from keel.stacks import StackFileError
    from keel.stacks.apply import StackApplyError, apply_stack_file

    for position, path in enumerate(args.files):
        activate = not args.no_activate and position == len(args.files) - 1
        try:
            changes = apply_stack_file(path, activate=activate)
        except StackFileError as error:
            return fail(str(error), 2)
        except StackApplyError as error:
            return fail(str(error), 1)
        stack = changes[-1]
        say(f"{path}: stack '{stack.name}' {stack.action}" + (", active" if activate else ""))
        say(format_table(["component", "name", "flavor", "result", "changed keys"],
                         [(c.kind, c.name, c.flavor, c.action, ", ".join(c.keys) or "-") for c in changes]))
    return 0


def _list(args: argparse.Namespace, spec) -> int:
    from keel.stacks import StackFileError, load_stack_file
    from keel.stacks.load import STACKS_DIR
    from keel.stacks.redaction import redact_url_credentials

    rows = []
    for path in sorted(STACKS_DIR.glob("*.yaml")):
        try:
            stack_file = load_stack_file(path)
            rows.append((path.stem, stack_file.name,
                         redact_url_credentials(stack_file.server.url) if stack_file.server else "local store",
                         ", ".join(f"{kind}={c.flavor}" for kind, c in stack_file.components.items())))
        except StackFileError as error:
            rows.append((path.stem, "-", "-", f"invalid: {str(error).splitlines()[-1].strip()}"))
    say("Stack files (stacks/):")
    say(format_table(["file", "stack", "store", "components"], rows))

    from zenml.client import Client

    try:
        client = Client()
        active = client.active_stack_model.name
        stacks = client.list_stacks(size=100, hydrate=True).items
    except Exception as error:  # the current store (e.g. a server) cannot be read: say so, no traceback
        return fail(f"\nstack list: the current ZenML store cannot be read "
                    f"({type(error).__name__}: {redact_url_credentials(str(error))})")
    registered = [(("* " if stack.name == active else "  ") + stack.name,
                   ", ".join(f"{kind.value}={components[0].name}"
                             for kind, components in sorted(stack.components.items()) if components))
                  for stack in stacks]
    say(f"\nRegistered in the current store ({redact_url_credentials(client.zen_store.url)}; * = active):")
    say(format_table(["stack", "components"], registered))
    return 0


def _show(args: argparse.Namespace, spec) -> int:
    import yaml

    from keel.stacks import StackFileError, load_stack_file, stack_file_for
    from keel.stacks.extras import missing_extras
    from keel.stacks.models import redact_credentials

    path = stack_file_for(args.name)
    if path is None:
        return fail(f"stack show: no stack file for '{args.name}' (stacks/{args.name}.yaml or a path)", 2)
    try:
        stack_file = load_stack_file(path)
    except StackFileError as error:
        return fail(str(error), 2)
    say(f"# {path}")
    # A valid file holds no literal credential; redacting anyway (credential keys, and the user:password
    # of every URL, e.g. a server.url with credentials from ${ENV}) means no printout can ever show one.
    shown = redact_credentials(stack_file.model_dump(mode="json", exclude_none=True))
    say(yaml.safe_dump(shown, sort_keys=False).rstrip())
    for kind, flavor, extra, modules in missing_extras(stack_file):
        say(f"# not installed: {kind} ({flavor}) needs {', '.join(modules)}: pip install -e '.[{extra}]'")
    return 0

"""Commands of the dashboard area (registered by keel.cli.main)."""

from __future__ import annotations

import argparse

from keel.cli.console import fail

DEFAULT_PORT = 8237  # ZenML's own port for a local server


def register(commands) -> None:
    """Adds this area's subcommands to `commands` (argparse subparsers)."""
    dashboard = commands.add_parser(
        "dashboard", help="start the ZenML server and dashboard over keel's local store and print its URL")
    dashboard.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    dashboard.add_argument("--background", action="store_true",
                           help="leave it running and return (stop it with --stop)")
    dashboard.add_argument("--stop", action="store_true", help="stop a dashboard started with --background")
    dashboard.set_defaults(handler=_dashboard, needs_spec=False)


def _dashboard(args: argparse.Namespace, spec) -> int:
    from keel.cli.dashboard import dashboard, stop_background

    if args.stop:
        return stop_background()
    if not 1024 <= args.port <= 65535:
        return fail(f"dashboard: --port must be between 1024 and 65535; found {args.port}", 2)
    return dashboard(args.port, args.background)

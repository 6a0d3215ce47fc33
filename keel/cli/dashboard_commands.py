"""Commands of the dashboard area (registered by keel.cli.main)."""

from __future__ import annotations


def register(commands) -> None:
    """Adds this area's subcommands to `commands` (argparse subparsers)."""

"""Commands of the monitoring area (registered by keel.cli.main)."""

from __future__ import annotations

import argparse

from keel.cli.options import spec_options


def register(commands) -> None:
    """Adds this area's subcommands to `commands` (argparse subparsers)."""
    monitor = commands.add_parser(
        "monitor", help="profile production traffic, judge four kinds of drift, apply the retraining policy "
                        "(train -> evaluate -> deploy when it fires)")
    spec_options(monitor)
    monitor.add_argument("--watch", action="store_true",
                         help="repeat every monitoring.retraining.check_every_seconds (Ctrl+C stops)")
    monitor.add_argument("--schedule", action="store_true",
                         help="register a ZenML schedule where the active orchestrator can keep one "
                              "(else print a cron line)")
    monitor.add_argument("--no-retrain", action="store_true",
                         help="judge and record the decision (it counts for the cooldown), but do not retrain")
    monitor.add_argument("--traffic", choices=["online", "batch", "both"], default="both",
                         help="judge the served predictions, the batch-scored rows (`run.py score`) or both "
                              "(default both)")
    monitor.set_defaults(handler=_monitor)


def _monitor(args: argparse.Namespace, spec) -> int:
    from keel.cli.monitor import monitor

    return monitor(spec, args.config, watch=args.watch, schedule=args.schedule, retrain=not args.no_retrain,
                   traffic=args.traffic)

"""Run a ZenML pipeline from the CLI and turn a failure into one readable message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Outcome:
    run: Any
    error: Optional[BaseException]


def run_pipeline(pipeline, no_cache: bool = False, **parameters) -> Outcome:
    """Run `pipeline`; `no_cache` disables caching for the whole run (never enables it: a run-level
    `enable_cache: true` would override the side-effect steps' own `enable_cache=False`)."""
    configured = pipeline.with_options(enable_cache=False) if no_cache else pipeline
    try:
        run = configured(**parameters)
    except Exception as error:  # the step's own exception, re-raised by the local orchestrator
        return Outcome(_latest_run(pipeline.name), error)
    return Outcome(run, None)


def _latest_run(pipeline_name: str):
    from zenml.client import Client

    try:
        return Client().get_pipeline(pipeline_name).last_run
    except Exception:  # no run was created at all
        return None


def failed_step_message(outcome: Outcome) -> str:
    run = outcome.run
    failed = [name for name, step in (run.steps.items() if run else []) if str(step.status) == "failed"]
    where = f" at step {failed[0]} of run {run.name}" if failed else ""
    return f"keel: the pipeline failed{where}:\n{outcome.error}"

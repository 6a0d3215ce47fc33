"""Run a ZenML pipeline and turn a failure into one readable message (what failed, at which step)."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any, Optional


SOURCE_STAMP = "keel.provenance.source_stamp"


@dataclass
class Outcome:
    run: Any
    error: Optional[str] = None
    failed_step: Optional[str] = None


def run_pipeline(pipeline, no_cache: bool = False, **parameters) -> Outcome:
    """Run `pipeline` under a run name of its own (`own_run_name`), so that a failure is read from this
    run, never from another writer's that started meanwhile. `no_cache` disables caching for the whole
    run (never enables it: a run-level `enable_cache: true` would override the side-effect steps' own
    `enable_cache=False`)."""
    from zenml.config.cache_policy import CachePolicy

    from keel.lifecycle.interrupted_runs import recorded, report_interrupted_runs

    _installed_packages_listed_once()
    report_interrupted_runs()  # runs of killed keel processes are marked failed before a new one starts
    run_name = own_run_name(pipeline.name)
    # A cached step is reused only if keel's whole source is unchanged (keel.provenance.source_stamp).
    named = pipeline.with_options(run_name=run_name, cache_policy=CachePolicy(cache_func=SOURCE_STAMP))
    configured = recorded(named.with_options(enable_cache=False) if no_cache else named)
    with StepFailures() as failures:
        try:
            return Outcome(configured(**parameters))
        except Exception as error:  # the orchestrator reports "failed in step(s) X"; find the cause
            run = _run_named(run_name)
            failed = [(name, s) for name, s in (run.steps.items() if run else []) if str(s.status) == "failed"]
            if not failed:
                return Outcome(run, str(error))
            name, step = failed[0]
            info = step.exception_info
            return Outcome(run, exception_message(info.traceback) if info else failures.causes.get(name, str(error)),
                           name)


def _installed_packages_listed_once() -> None:
    """ZenML records the installed packages with each run by running `uv pip freeze` (else pip) in a new
    process, twice a run (as it compiles the pipeline and as it launches the steps; ~0.04 s each here). The
    packages a process imported cannot change under it, so it lists them once, as its first run does (a
    failure is not remembered: tried again)."""
    from zenml.environment import Environment

    if not hasattr(Environment.get_python_packages, "cache_info"):
        Environment.get_python_packages = staticmethod(functools.cache(Environment.get_python_packages))


class StepFailures(logging.Handler):
    """The cause of each step that fails in this process, as ZenML's step launcher logs it. A step that
    fails before its own code runs (an input artifact missing or unreadable) has no exception recorded on
    its step run: without this the command said only "failed due to failure in step(s) X"."""

    LOGGER = "zenml.orchestrators.step_launcher"
    FAILED = re.compile(r"Failed to run step `(?P<step>[^`]+)`: (?P<cause>.*)", re.DOTALL)

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.causes: dict = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = self.FAILED.match(record.getMessage())
        if found:
            self.causes.setdefault(found["step"], found["cause"])

    def __enter__(self) -> "StepFailures":
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


def own_run_name(pipeline_name: str) -> str:
    """ZenML's default run name (`<pipeline>-<date>-<time to the microsecond>`, UTC) with a random
    suffix: unique even when two processes start the same pipeline in the same microsecond."""
    import secrets

    from keel.clock import utc_now

    return f"{pipeline_name}-{utc_now():%Y_%m_%d-%H_%M_%S_%f}-{secrets.token_hex(3)}"


def exception_message(traceback: str) -> str:
    """The raised exception's own text, without the traceback or the exception's module path."""
    lines = traceback.rstrip().splitlines()
    start = max((i for i, line in enumerate(lines) if line and not line[0].isspace()
                 and not line.startswith("Traceback")), default=0)
    head, _, message = lines[start].partition(": ")
    return "\n".join([message or head, *lines[start + 1:]])


def _run_named(run_name: str):
    from zenml.client import Client

    try:
        return Client().get_pipeline_run(run_name, allow_name_prefix_match=False)
    except Exception:  # no run was created at all
        return None


def run_for_version(pipeline_path: str, spec, version, no_cache: bool = False, **parameters):
    """Resolve `version` (None: the latest), import the pipeline (`module:name`), run it for that version.

    Returns (version, outcome) or (None, error text) when there is no such version or the run failed."""
    from keel.registry import resolve_version

    try:
        version = resolve_version(spec.problem.name, version)
    except LookupError as error:
        return None, f"keel: {error}"
    import importlib

    module, _, name = pipeline_path.partition(":")
    pipeline = getattr(importlib.import_module(module), name)
    outcome = run_pipeline(pipeline, no_cache=no_cache, spec=spec, model_version=version, **parameters)
    if outcome.error is not None:
        return None, failed_step_message(outcome)
    return version, outcome


def failed_step_message(outcome: Outcome) -> str:
    where = f" at step {outcome.failed_step} of run {outcome.run.name}" if outcome.failed_step else ""
    return f"keel: the pipeline failed{where}:\n{outcome.error}"

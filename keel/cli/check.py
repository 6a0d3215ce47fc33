"""`run.py check`: model tests for a pull request, in one process and without ZenML: validate the
spec and a data sample, train on the sample, run every gate, exit non-zero on a blocking failure."""

from __future__ import annotations

import time

from keel.cli.console import fail, format_table, say
from keel.spec.models import Spec


def check(spec: Spec, sample: int) -> int:
    started = time.perf_counter()
    from keel.data.sources import DataSourceError
    from keel.lifecycle.check import check_sample, draw_sample

    try:
        raw = draw_sample(spec, sample)
    except DataSourceError as error:
        return fail(f"check: {error}", 1)
    say(f"check: spec valid; {len(raw)} sampled rows")
    from keel.data.split import SplitError

    try:
        result = check_sample(spec, raw)
    except SplitError as error:
        return fail(f"check: {error}", 1)
    if result.error is not None:
        return fail("check: " + result.error, result.exit_code)
    say(f"check: data valid; trained {result.model} "
        f"({spec.training.primary_metric} {result.validation_score:.4f} on validation)")
    if result.screening_findings:
        say("check: screening found (reported only: data.screening.blocking is false): "
            + "; ".join(result.screening_findings))
    from keel.evaluation.gates import describe_decision

    rows = [("data validation", "-", "pass")] + [
        (g["gate"], "-" if g["value"] is None else g["value"],
         "pass" if g["passed"] else ("no value" if not g["known"] else "FAIL" if spec.evaluation.blocking else "warn"))
        for g in result.decision["gates"]]
    say(format_table(["check", "value", "result"], rows))
    say(f"check: {describe_decision(result.decision)} in {time.perf_counter() - started:.0f} s")
    return result.exit_code

"""`run.py check`: model tests for a pull request, in one process and without ZenML: validate the
spec and a data sample, train on the sample, run every gate, exit non-zero on a blocking failure."""

from __future__ import annotations

import time

from keel.cli.console import fail, format_table, say
from keel.spec.models import Spec

from keel.cli.evaluate import EVALUATION_INCOMPLETE, GATES_FAILED


def check(spec: Spec, sample: int) -> int:
    started = time.perf_counter()
    from keel.data.sources import DataSourceError, load_frame
    from keel.evaluation.suite import evaluate_all
    from keel.training.in_process import train_in_process

    try:
        raw = load_frame(spec.data)
    except DataSourceError as error:
        return fail(f"check: {error}", 1)
    if len(raw) > sample:
        raw = raw.sample(sample, random_state=spec.split.seed).sort_index()
    say(f"check: spec valid; {len(raw)} sampled rows")
    trained = train_in_process(raw, spec)
    if not trained.validation_report.passed:
        return fail("check: " + trained.validation_report.summary(), 1)
    say(f"check: data valid; trained {trained.selected.name} "
        f"({spec.training.primary_metric} {trained.selected.validation_metrics[spec.training.primary_metric]:.4f} "
        "on validation)")
    reports = evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec)
    decision = reports["decision"]
    from keel.evaluation.gates import INCOMPLETE, describe_decision

    rows = [("data validation", "-", "pass")] + [
        (g["gate"], "-" if g["value"] is None else g["value"],
         "pass" if g["passed"] else ("no value" if not g["known"] else "FAIL" if spec.evaluation.blocking else "warn"))
        for g in decision["gates"]]
    say(format_table(["check", "value", "result"], rows))
    say(f"check: {describe_decision(decision)} in {time.perf_counter() - started:.0f} s")
    if decision["decision"] == INCOMPLETE:
        return EVALUATION_INCOMPLETE
    if decision["failed"] and spec.evaluation.blocking:
        return GATES_FAILED
    return 0

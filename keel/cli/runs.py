"""`run.py runs`: experiment tracking a user can query, from the model versions' recorded metadata."""

from __future__ import annotations

from typing import List

from keel import registration as keys
from keel.cli.console import fail, format_metric, format_table, say
from keel.spec.models import Spec
from keel.tracking import QueryError, known_fields, matches, parse_where, unknown_fields
from keel.training.metrics import THRESHOLD_METRICS, metrics_threshold_text


def list_runs(spec: Spec, where: List[str]) -> int:
    try:
        conditions = [parse_where(text) for text in where]
    except QueryError as error:
        return fail(str(error), 2)
    from keel.lifecycle.interrupted_runs import report_interrupted_runs
    from keel.registration import interrupted_message
    from keel.registry import list_model_versions

    report_interrupted_runs()  # a training run of a killed process shows as failed, not running for good

    versions = list_model_versions(spec.problem.name)
    recorded = [v["metadata"] for v in versions if v.get("complete", True) and v["metadata"]]
    unknown = unknown_fields(recorded, conditions)
    if unknown:
        return fail(f"--where: no run of '{spec.problem.name}' records {', '.join(map(repr, unknown))}; the fields "
                    f"are: {', '.join(known_fields(recorded))}", 2)
    metric = spec.training.primary_metric
    rows = []
    for version in versions:
        record = version["metadata"]
        if not version.get("complete", True):  # never listed as a run: its record is partial
            fail(f"keel: {interrupted_message(spec.problem.name, version['number'], version['created'], record)}")
            continue
        if not record or not matches(record, conditions):
            continue
        rows.append((
            f"v{version['number']}", record.get(keys.RUN_NAME, "-"), record.get(keys.MODEL_FAMILY),
            record.get(keys.VALIDATION_METRICS, {}).get(metric), record.get(keys.TEST_METRICS, {}).get(metric),
            metrics_threshold_text(record), _evaluation_threshold(record),
            str(record.get(keys.DATA_FINGERPRINT, "-"))[:12],
            ", ".join(f"{k}={v}" for k, v in sorted(record.get(keys.HYPERPARAMETERS, {}).items())),
        ))
    if not rows:
        say(f"no training runs of '{spec.problem.name}'" + (" match " + " and ".join(where) if where else ""))
        return 0
    say(format_table(["version", "run", "model", f"val {metric}", f"test {metric}", "metrics at", "evaluated at",
                      "data", "parameters"], rows))
    say(f"val/test metrics were recorded at training: {', '.join(sorted(THRESHOLD_METRICS))} (also in --where) at the "
        "'metrics at' threshold; 'evaluated at' is the decision threshold the last evaluation judged at.")
    return 0


def _evaluation_threshold(record: dict) -> str:
    threshold = (record.get(keys.EVALUATION) or {}).get("threshold")
    return format_metric(None if threshold is None else float(threshold))

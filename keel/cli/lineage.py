"""`run.py lineage --prediction ID | --model-version N | --batch ID [--row ROW]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from keel.cli.console import fail, say
from keel.governance.audit import TamperedTrail  # noqa: F401  (what verified_records raises)
from keel.lifecycle.lineage import verified_records, version_links


def print_links(links) -> None:
    width = max(len(label) for label, _ in links)
    for label, value in links:
        say(f"  {label.ljust(width)}  {value}")


MAX_ROWS_SHOWN = 5  # a batch request logs one row per record


def lineage(spec, prediction: Optional[str], version: Optional[int], row_number: Optional[int] = None,
            batch: Optional[str] = None, row_id: Optional[str] = None) -> int:
    try:
        if batch is not None:
            return _batch_lineage(spec, batch, row_id)
        return _lineage(spec, prediction, version, row_number)
    except (LookupError, TamperedTrail) as error:
        return fail(f"keel: {error}", 1)


def _batch_lineage(spec, batch_id: str, row_id: Optional[str]) -> int:
    """A batch (and one of its rows, read back from its output) -> model version -> training run -> data -> commit."""
    from keel.deployment.deploy import prediction_log_url
    from keel.governance.lineage import batch_lineage, batch_row_lineage, batch_rows_heading, queued_review
    from keel.lifecycle.batch import batch_rows, completed_batches, file_fingerprint, find_batch
    from keel.serving.reviews import REFER

    model = spec.problem.name
    records = verified_records(model)
    record = find_batch(completed_batches(records), batch_id)
    version_link = version_links(model, int(record["model_version"]), records)  # before anything is printed
    rows = batch_rows(record, row_id, spec.data.id_column) if row_id is not None else []
    # Batch referrals are queued beside the prediction log, keyed by batch id and input row.
    reviews = [queued_review(prediction_log_url(spec), record["batch_id"], int(row["row"]))
               if str(row["decision"]) == REFER else None for row in rows[:MAX_ROWS_SHOWN]]
    if row_id is None:
        output = Path(record["output_uri"])
        check = ("gone" if not output.exists() else "unchanged" if file_fingerprint(output) == record["output_fingerprint"]
                 else "CHANGED since it was written")
    else:
        check = "unchanged (checked before reading the row)"
    say(f"batch {record['batch_id']}:")
    print_links(batch_lineage(record, check))
    for line in batch_rows_heading(row_id, spec.data.id_column, rows, record["batch_id"], MAX_ROWS_SHOWN):
        say(line)
    for row, review in zip(rows[:MAX_ROWS_SHOWN], reviews):
        say(f"input row {row['row']} of batch {record['batch_id']}:")
        print_links(batch_row_lineage(row, record, spec.data.id_column, review, spec.data.target))
    say(f"lineage of {model} v{record['model_version']}:")
    print_links(version_link)
    return 0


def _lineage(spec, prediction: Optional[str], version: Optional[int], row_number: Optional[int]) -> int:
    from keel.registry import resolve_version

    model = spec.problem.name
    if prediction is not None:
        from keel.deployment.deploy import prediction_log_url
        from keel.governance.lineage import logged_rows, prediction_lineage, queued_review

        log_url = prediction_log_url(spec)
        rows = logged_rows(log_url, prediction, row_number)
        # Each trail read and verified once: the spec's model's, and that of any other model the rows name.
        records = {name: verified_records(name) for name in dict.fromkeys([model, *(r["model_name"] for r in rows)])}
        # Every version named by the log must be in this registry before anything is printed.
        links = {(name, number): version_links(name, number, records[name])
                 for name, number in dict.fromkeys((r["model_name"], int(r["model_version"])) for r in rows)}
        shown = rows[:MAX_ROWS_SHOWN]
        reviews = [queued_review(log_url, row["request_id"], int(row["row"])) for row in shown]
        for row, review in zip(shown, reviews):
            say(f"prediction {row['request_id']} row {row['row']}:")
            # The routing is the spec's model's (its service); the evaluation is the serving version's own.
            print_links(prediction_lineage(row, records[model], review, spec.data.target, records[row["model_name"]]))
        if len(rows) > len(shown):
            say(f"  ... and {len(rows) - len(shown)} more row(s) of this request (pick one with --row N)")
        for (name, number), version_link in links.items():
            say(f"lineage of {name} v{number}:")
            print_links(version_link)
        return 0
    version = resolve_version(model, version)
    records = verified_records(model)
    say(f"lineage of {model} v{version}:")
    print_links(version_links(model, version, records))
    return 0

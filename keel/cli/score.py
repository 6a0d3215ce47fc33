"""`run.py score`: score a file, a directory of Parquet parts or an SQL query in batch with the production
(or a named) version, and print the counts, where the output and rejects are, the batch id and the run."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, say
from keel.spec.models import Spec


def score(spec: Spec, location: str, output: str, version: Optional[int], fmt: Optional[str], query: Optional[str],
          new_batch: bool) -> int:
    from keel.cli.authorize import authorize
    from keel.lifecycle.batch import score_job

    if (authorization := authorize(spec, "score", version=version)).refused:  # operator or developer
        return authorization.exit_code
    which = f"v{version}" if version is not None else "the production version"
    say(f"keel: scoring {location} with '{spec.problem.name}' {which} (loading ZenML takes a few seconds) ...")
    return print_batch(spec, score_job(spec, location, output, version, fmt, query, new_batch))


def print_batch(spec: Spec, result) -> int:
    """Print what a batch came to (a keel.lifecycle.batch.BatchJobResult); its exit code."""
    if result.error is not None:
        return fail(result.error, result.code)
    say()
    if result.skipped_for is not None:
        earlier = result.skipped_for
        say(f"keel: skipped: batch {earlier['batch_id']} (finished {earlier['finished_at']}, by {earlier['actor']}) "
            f"already scored this input ({_short(earlier['input_fingerprint'])}) with v{earlier['model_version']} "
            "under the same spec")
        say(f"output:         {earlier['output_uri']} (as recorded: {_short(earlier['output_fingerprint'])})")
        say(f"rejects:        {earlier['rejects_uri']} ({earlier['rejected']:,} rows)")
        say(f"run:            {result.run_name} (records the skip; score again under a new batch id: --new-batch)")
        return _over_limit(earlier) if earlier["over_reject_limit"] else 0
    record = result.record
    say(f"batch:          {record['batch_id']}" + (f" (scores again the input of {record['rescored_from']})"
                                                   if record.get("rescored_from") else ""))
    say(f"model version:  {spec.problem.name} v{record['model_version']}")
    say(f"input:          {record['source']} ({_short(record['input_fingerprint'])})")
    say(f"rows:           {record['rows_read']:,} read, {record['scored']:,} scored, {record['rejected']:,} rejected "
        f"({record['reject_fraction']:.2%}; limit {record['max_reject_fraction']:.2%}) in {record['seconds']:.1f} s")
    if record.get("rows_without_mitigation"):
        from keel.governance.lineage import batch_mitigation

        say(f"mitigation:     {batch_mitigation(record)}")
    say(f"output:         {record['output_uri']} ({record['output_format']}, {_short(record['output_fingerprint'])})")
    say(f"rejects:        {record['rejects_uri']} (each rejected row with its field and problem)")
    say(f"run:            {result.run_name} (id {result.run_id}); in the dashboard: python run.py dashboard, "
        "pipeline batch_inference; the batch record is the run's metadata and the audit trail's batch_scored event")
    say(f"lineage:        python run.py lineage --batch {record['batch_id']} [--row ID]")
    return _over_limit(record) if record["over_reject_limit"] else 0


def _over_limit(record) -> int:
    from keel.lifecycle.batch import OVER_REJECT_LIMIT

    return fail(f"keel: {record['rejected']:,} of {record['rows_read']:,} rows rejected ({record['reject_fraction']:.2%}), "
                f"above batch.max_reject_fraction {record['max_reject_fraction']:.2%}: the scored rows and the rejects "
                "are published, and the batch record marks the batch over the limit", OVER_REJECT_LIMIT)


def _short(fingerprint: str) -> str:
    return fingerprint[:19] + "..." if fingerprint and len(fingerprint) > 19 else str(fingerprint)

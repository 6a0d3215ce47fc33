from typing import Optional

from typing_extensions import Annotated
from zenml import get_step_context, log_metadata, step
from zenml.metadata.metadata_types import Uri

from keel.artifacts import Artifact
from keel.lifecycle.batch import record_batch
from keel.spec.models import Spec


@step(enable_cache=False)
def record_batch_step(batch_result: dict, spec: Spec, location: str, query: Optional[str]) -> Annotated[dict, Artifact.BATCH_RECORD]:
    """The batch record (who, what input, which version and spec, counts, outputs by path and SHA-256)
    into the audit trail, last, and onto this run's metadata; a skipped batch's run names the earlier one."""
    run = get_step_context().pipeline_run
    if batch_result["skipped_for"] is not None:
        earlier = batch_result["skipped_for"]
        log_metadata(metadata={"batch_skipped": {"same_as": earlier["batch_id"], "output": earlier["output_uri"]}},
                     run_id_name_or_prefix=run.id)
        return earlier
    record = record_batch(batch_result, spec=spec, location=location, query=query, run_id=str(run.id),
                          run_name=run.name)
    log_metadata(metadata={"batch_record": dict(record), "batch_output": Uri(record["output_uri"]),
                           "batch_rejects": Uri(record["rejects_uri"])}, run_id_name_or_prefix=run.id)
    return dict(record)

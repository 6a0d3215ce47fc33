from typing import Optional

from zenml import pipeline

from keel.artifacts import Artifact
from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.batch.decision_threshold import batch_threshold_step
from steps.batch.fingerprint_input import fingerprint_input_step
from steps.batch.record import record_batch_step
from steps.batch.score import score_batch_step


@pipeline(name="batch_inference")
def batch_inference_pipeline(spec: Spec, model_version: int, batch_id: str, location: str, query: Optional[str],
                             output: str, output_format: str, new_batch: bool = False,
                             engine: Optional[dict] = None) -> None:
    """The version's model and decision threshold -> input fingerprint -> score in chunks (on a dask
    engine, a Parquet input partition by partition; or skip a batch already scored) -> the batch record
    (audit trail, run metadata)."""
    version = version_artifacts(spec.problem.name, model_version, [Artifact.MODEL, Artifact.VALIDATION])
    threshold = batch_threshold_step(spec=spec, model_version=model_version)
    fingerprint = fingerprint_input_step(location=location, query=query, data=spec.data)
    result = score_batch_step(model=version[Artifact.MODEL], decision_threshold=threshold,
                              input_fingerprint=fingerprint, spec=spec, model_version=model_version,
                              batch_id=batch_id, location=location, query=query, output=output,
                              output_format=output_format, new_batch=new_batch, engine=engine or {},
                              validation=version[Artifact.VALIDATION])
    record_batch_step(batch_result=result, spec=spec, location=location, query=query)

from typing import Optional, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import get_step_context, save_artifact, step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.data.schema import validation_html
from keel.engine.spec import engine_from_dict
from keel.governance.events import record_validation
from keel.spec.data import DataSpec, SplitSpec
from steps.data.validate import DataValidationError


@step
def dask_prepare_step(data: DataSpec, split: SplitSpec, engine: dict, source_stamp: str,
                      model_name: Optional[str] = None) -> Tuple[
    Annotated[pd.DataFrame, Artifact.TRAIN],
    Annotated[pd.DataFrame, Artifact.VALIDATION],
    Annotated[pd.DataFrame, Artifact.TEST],
    Annotated[str, Artifact.DATA_FINGERPRINT],
    Annotated[dict, Artifact.VALIDATION_REPORT],
    Annotated[HTMLString, Artifact.VALIDATION_REPORT_HTML],
    Annotated[dict, Artifact.ENGINE_RECORD],
]:
    """The dask engine's ingest, validate and split: partitions validated and fingerprinted on the
    cluster, rows split by a seeded hash; out: seeded samples of each split (in memory), the
    fingerprint and report of the whole data, and the cluster layout. Fails as validate_step does."""
    from keel.engine.dask_run import prepare

    prepared = prepare(data, split, engine_from_dict(engine))
    report = prepared.report
    page = HTMLString(validation_html(report))
    run_id = get_step_context().pipeline_run.id
    if not report.passed:
        stored = save_artifact(report.to_dict(), name=Artifact.VALIDATION_REPORT)
        save_artifact(page, name=Artifact.VALIDATION_REPORT_HTML)
        if model_name:
            record_validation(model_name, run_id, False, report.summary(), evidence=[stored.id])
        raise DataValidationError(report.summary())
    if model_name:
        record_validation(model_name, run_id, True, report.summary())
    samples = prepared.samples
    return (samples["train"], samples["validation"], samples["test"], prepared.fingerprint, report.to_dict(),
            page, prepared.record)

from typing import Optional, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import get_step_context, save_artifact, step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.data.fingerprint import fingerprint_frame
from keel.data.schema import validate_frame, validation_html
from keel.governance.events import record_validation
from keel.spec.data import DataSpec


class DataValidationError(RuntimeError):
    """The batch breaks the spec's schema; the run stops here and no model version is created."""


@step
def validate_step(raw_data: pd.DataFrame, data: DataSpec, model_name: Optional[str] = None) -> Tuple[
    Annotated[pd.DataFrame, Artifact.VALIDATED_DATA],
    Annotated[str, Artifact.DATA_FINGERPRINT],
    Annotated[dict, Artifact.VALIDATION_REPORT],
    Annotated[HTMLString, Artifact.VALIDATION_REPORT_HTML],
]:
    """Check the batch against the pandera schema derived from the spec.

    Out: the rows in the spec's dtypes, their content fingerprint, and the report. A failing
    batch stores its report as an artifact, then fails the step with the same text.

    Cached (every later step's cache key depends on its outputs' ids), so on a cache hit nothing here
    runs: register_model_step then records the reused outcome for that run (`record_cached_validation`).
    """
    frame, report = validate_frame(raw_data, data)
    page = HTMLString(validation_html(report))
    run_id = get_step_context().pipeline_run.id
    if not report.passed:  # a failed step is never cached, so this record is made on every failing run
        stored = save_artifact(report.to_dict(), name=Artifact.VALIDATION_REPORT)
        save_artifact(page, name=Artifact.VALIDATION_REPORT_HTML)
        if model_name:
            record_validation(model_name, run_id, False, report.summary(), evidence=[stored.id])
        raise DataValidationError(report.summary())
    if model_name:  # the outputs are saved only after the step returns, so no artifact id to cite yet
        record_validation(model_name, run_id, True, report.summary())
    return frame, fingerprint_frame(frame), report.to_dict(), page

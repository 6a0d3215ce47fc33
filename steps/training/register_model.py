from typing import Any, Optional

import pandas as pd
from typing_extensions import Annotated
from zenml import get_step_context, step

from keel.artifacts import Artifact
from keel.data.sources import describe_source
from keel.data.split import split_periods
from keel.governance.events import record_cached_validation
from keel.data.screening import screening_record
from keel.registration import ENGINE, RUN_ID, RUN_NAME, SCREENING, SPLIT_PERIODS
from keel.registry import register_model_version, registration_metadata
from keel.spec.data import target_mapping
from keel.spec.models import Spec
from keel.training.fit import model_hash, model_size, predict_scores
from keel.training.metrics import score


@step(enable_cache=False)
def register_model_step(model: Any, selection: dict, train: pd.DataFrame, validation: pd.DataFrame,
                        test: pd.DataFrame, data_fingerprint: str, validation_report: dict,
                        readiness_report: dict, spec: Spec, spec_hash: str,
                        provenance: dict, engine_record: Optional[dict] = None) -> Annotated[int, Artifact.MODEL_VERSION]:
    """Create a ZenML Model version carrying the model's full provenance and its evidence.

    A side effect, so never cached. Out: the new version number. With the dask engine's record, the
    splits given are seeded samples: the rows and test metrics of the whole splits come from the record.
    """
    data = spec.data
    context = get_step_context()
    metadata = registration_metadata(
        selection=selection,
        test_metrics=(engine_record["test_metrics"] if engine_record
                      else score(test[data.target.column], predict_scores(model, test))),
        model_sha256=model_hash(model),
        model_bytes=model_size(model),
        data_fingerprint=data_fingerprint,
        data_source=describe_source(data),
        training_rows=(engine_record["rows"] if engine_record
                       else {"train": len(train), "validation": len(validation), "test": len(test)}),
        spec_hash=spec_hash,
        seed=spec.training.seed,
        provenance=provenance,
        target=target_mapping(data.target),
    )
    metadata.update({RUN_NAME: context.pipeline_run.name, RUN_ID: str(context.pipeline_run.id)})
    if data.time_column and not engine_record:  # the dask engine's splits here are samples
        metadata[SPLIT_PERIODS] = split_periods({"train": train, "validation": validation, "test": test},
                                                data.time_column)
    if readiness_report.get("screening"):
        metadata[SCREENING] = screening_record(readiness_report["screening"])
    if engine_record:
        metadata[ENGINE] = engine_record
    evidence = [artifact.id for inputs in context.inputs.values() for artifact in inputs]
    # One validation record per training run: a cached validate step recorded nothing for this one.
    record_cached_validation(spec.problem.name, context.pipeline_run.id,
                             context.pipeline_run.steps.get("validate_step"), validation_report,
                             context.inputs[Artifact.VALIDATION_REPORT][0].id)
    return register_model_version(spec.problem.name, spec.problem.objective, metadata, evidence,
                                  context.pipeline_run.id)

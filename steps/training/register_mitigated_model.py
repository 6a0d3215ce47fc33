from typing import Any

import pandas as pd
from typing_extensions import Annotated
from zenml import get_step_context, step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.mitigation import mitigated_registration_metadata
from keel.registration import RUN_ID, RUN_NAME
from keel.registry import register_model_version, registered_metadata
from keel.spec.models import Spec


@step(enable_cache=False)
def register_mitigated_model_step(model: Any, mitigation_report: dict, mitigation_report_html: HTMLString,
                                  train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, spec: Spec,
                                  spec_hash: str, provenance: dict,
                                  model_version: int) -> Annotated[int, Artifact.MODEL_VERSION]:
    """Register the mitigated model as the next version of the same model, with a trained version's
    provenance, lineage to `model_version` and the before/after table. Its splits are that version's
    artifacts, so `evaluate` runs on it unchanged. A side effect, so never cached. Out: the new number."""
    context = get_step_context()
    metadata = mitigated_registration_metadata(model, mitigation_report, train, validation, test, spec,
                                               registered_metadata(spec.problem.name, model_version),
                                               spec_hash, provenance)
    metadata.update({RUN_NAME: context.pipeline_run.name, RUN_ID: str(context.pipeline_run.id)})
    evidence = [artifact.id for inputs in context.inputs.values() for artifact in inputs]
    return register_model_version(spec.problem.name, spec.problem.objective, metadata, evidence,
                                  context.pipeline_run.id)

from typing import Any, Tuple

from typing_extensions import Annotated
from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType

from keel.artifacts import Artifact
from keel.engine.spec import engine_from_dict
from keel.spec.data import DataSpec, SplitSpec
from keel.spec.training import TrainingSpec
from keel.training.fit import choose_summary


@step
def dask_select_and_refit_step(baseline_model: Any, baseline_summary: dict, candidate_model: Any,
                               candidate_summary: dict, data: DataSpec, split: SplitSpec,
                               training: TrainingSpec, engine: dict, engine_record: dict) -> Tuple[
    Annotated[Any, ArtifactConfig(name=Artifact.MODEL, artifact_type=ArtifactType.MODEL)],
    Annotated[dict, Artifact.SELECTION],
    Annotated[dict, Artifact.ENGINE_RECORD],
]:
    """Choose as select_model_step does (on the samples' validation), then refit a chosen LightGBM on
    the whole training split with DaskLGBMClassifier; validation and test metrics on whole splits."""
    from keel.engine.dask_run import refit

    selection = choose_summary([baseline_summary, candidate_summary], training.primary_metric)
    chosen = baseline_model if selection["chosen"] == baseline_summary["name"] else candidate_model
    model, selection, record = refit(chosen, selection, data, split, training, engine_from_dict(engine), engine_record)
    return model, selection, record

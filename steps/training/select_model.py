from typing import Any, Tuple

from typing_extensions import Annotated
from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType

from keel.artifacts import Artifact
from keel.spec.training import TrainingSpec
from keel.training.fit import choose_summary


@step
def select_model_step(baseline_model: Any, baseline_summary: dict, candidate_model: Any,
                      candidate_summary: dict, training: TrainingSpec) -> Tuple[
    Annotated[Any, ArtifactConfig(name=Artifact.MODEL, artifact_type=ArtifactType.MODEL)],
    Annotated[dict, Artifact.SELECTION],
]:
    """Keep the model with the best validation value of the spec's primary metric.

    Out: the chosen features+model pipeline, and the comparison that chose it.
    """
    selection = choose_summary([baseline_summary, candidate_summary], training.primary_metric)
    chosen = baseline_model if selection["chosen"] == baseline_summary["name"] else candidate_model
    return chosen, selection

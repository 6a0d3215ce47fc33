from typing import Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.monitoring.monitor import labelled_window, monitoring_folder
from keel.monitoring.policy import last_training, read_history
from keel.spec.models import Spec


@step(enable_cache=False)
def join_labels_step(window: dict, spec: Spec) -> Tuple[
    Annotated[pd.DataFrame, Artifact.LABELLED_PREDICTIONS],
    Annotated[dict, Artifact.LABEL_REPORT],
]:
    """Join the delayed labels (the spec's CSV or SQL source) to the window's predictions; count
    labels for unknown ids, early and duplicate labels, and labels new since the version was made or last
    retrained (`last_training`).

    Out: (label, score) of each labelled prediction, and the report."""
    from zenml.client import Client

    from keel.clock import as_utc

    created = as_utc(Client().get_model_version(spec.problem.name, window["model_version"]).created)
    labelled, report = labelled_window(spec, window, last_training(read_history(monitoring_folder(spec)), created))
    return labelled[["label", "score"]].reset_index(drop=True), report  # what the drift step needs, small

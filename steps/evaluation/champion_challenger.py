from typing import Any, Tuple

import numpy as np
import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.champion_rows import champion_training_rows
from keel.evaluation.comparison import comparison_html
from keel.evaluation.suite import compare_with_champion
from keel.registry import find_champion
from keel.spec.models import Spec


# No metadata: with no champion the scores are all NaN, and a ZenML server's REST API refuses NaN metadata.
@step(enable_cache=False, enable_artifact_metadata=False)
def champion_challenger_step(scoring_model: Any, decision_threshold: dict, validation: pd.DataFrame,
                             test: pd.DataFrame, spec: Spec, model_version: int) -> Tuple[
    Annotated[dict, Artifact.CHAMPION_COMPARISON],
    Annotated[np.ndarray, Artifact.CHAMPION_SCORES],
    Annotated[HTMLString, Artifact.CHAMPION_COMPARISON_HTML],
]:
    """Paired bootstrap CI of the primary-metric difference against production (else staging), on the
    test rows the champion was not trained on.

    Reads the registry's current stages, so never cached. No champion: an empty comparison.
    """
    champion = find_champion(spec.problem.name, model_version)
    if champion is not None:
        champion["training_rows"] = champion_training_rows(spec.problem.name, champion, spec.data)
    comparison, champion_scores = compare_with_champion(champion, scoring_model, decision_threshold["threshold"],
                                                        validation, test, spec)
    return comparison, champion_scores, HTMLString(comparison_html(comparison))

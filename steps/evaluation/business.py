from typing import Any, Tuple

import numpy as np
import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.business import business_html, evaluate_business
from keel.evaluation.suite import champion_decisions
from keel.spec.models import Spec
from keel.training.fit import predict_scores


@step
def business_step(scoring_model: Any, decision_threshold: dict, test: pd.DataFrame, champion_comparison: dict,
                  champion_scores: np.ndarray, spec: Spec) -> Tuple[
    Annotated[dict, Artifact.BUSINESS_REPORT],
    Annotated[HTMLString, Artifact.BUSINESS_REPORT_HTML],
]:
    """Expected value per application under the spec's value matrix (if declared), vs deciding negative
    for everyone or vs the champion."""
    decisions = predict_scores(scoring_model, test) >= decision_threshold["threshold"]
    report = evaluate_business(test[spec.data.target.column].to_numpy(), decisions, spec.evaluation.value_matrix,
                               champion_decisions(champion_comparison, champion_scores), spec.data.target.negative)
    return report, HTMLString(business_html(report))

from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.data.groups import sensitive_groups
from keel.evaluation.fairness import evaluate_fairness, fairness_html
from keel.spec.data import DataSpec
from keel.training.fit import predict_scores


@step
def fairness_step(scoring_model: Any, test: pd.DataFrame, decision_threshold: dict, data: DataSpec) -> Tuple[
    Annotated[dict, Artifact.FAIRNESS_REPORT],
    Annotated[HTMLString, Artifact.FAIRNESS_REPORT_HTML],
]:
    """Group metrics (fairlearn MetricFrame) per sensitive attribute and their intersection."""
    scores = predict_scores(scoring_model, test)
    report = evaluate_fairness(test[data.target.column].to_numpy(), scores >= decision_threshold["threshold"],
                               scores, sensitive_groups(test, data), data)
    return report, HTMLString(fairness_html(report))

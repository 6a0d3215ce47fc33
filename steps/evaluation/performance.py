from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.performance import evaluate_performance, performance_html
from keel.spec.data import DataSpec
from keel.spec.evaluation import PerformanceSpec
from keel.training.fit import predict_scores


@step
def performance_step(scoring_model: Any, test: pd.DataFrame, decision_threshold: dict, data: DataSpec,
                     performance: PerformanceSpec) -> Tuple[
    Annotated[dict, Artifact.PERFORMANCE_REPORT],
    Annotated[HTMLString, Artifact.PERFORMANCE_REPORT_HTML],
]:
    """ROC AUC, PR AUC, and F1/precision/recall at the decision threshold, with bootstrap intervals,
    on the held-out test split."""
    report = evaluate_performance(test[data.target.column].to_numpy(), predict_scores(scoring_model, test),
                                  decision_threshold["threshold"], performance.interval_samples,
                                  performance.confidence, performance.seed)
    return report, HTMLString(performance_html(report))

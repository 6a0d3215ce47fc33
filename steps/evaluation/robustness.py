from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.robustness import evaluate_robustness, robustness_html
from keel.spec.models import Spec
from keel.training.fit import predict_scores


@step
def robustness_step(scoring_model: Any, test: pd.DataFrame, spec: Spec) -> Tuple[
    Annotated[dict, Artifact.ROBUSTNESS_REPORT],
    Annotated[HTMLString, Artifact.ROBUSTNESS_REPORT_HTML],
]:
    """Primary-metric drop under noise, missing values and category swaps; hostile inputs answered."""
    report = evaluate_robustness(lambda frame: predict_scores(scoring_model, frame), test,
                                 test[spec.data.target.column].to_numpy(), spec.data,
                                 spec.evaluation.robustness, spec.training.primary_metric)
    return report, HTMLString(robustness_html(report))

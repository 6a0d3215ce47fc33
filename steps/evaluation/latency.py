from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.evaluation.latency import evaluate_latency, latency_html
from keel.spec.models import LatencySpec
from keel.training.fit import predict_scores


@step(enable_cache=False)
def latency_step(scoring_model: Any, test: pd.DataFrame, latency: LatencySpec) -> Tuple[
    Annotated[dict, "latency_report"],
    Annotated[HTMLString, "latency_report_html"],
]:
    """p50/p95/p99 single-row and batch latency of the full pipeline, and its serialized size.

    Never cached: a latency measured on another day or machine is not this run's latency.
    """
    report = evaluate_latency(lambda frame: predict_scores(scoring_model, frame), test, scoring_model, latency)
    return report, HTMLString(latency_html(report))

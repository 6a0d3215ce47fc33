from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.latency import evaluate_latency, latency_html
from keel.evaluation.suite import champion_predictor
from keel.registry import find_champion
from keel.spec.models import Spec
from keel.training.fit import predict_scores


@step(enable_cache=False)
def latency_step(scoring_model: Any, test: pd.DataFrame, validation: pd.DataFrame, spec: Spec,
                 model_version: int) -> Tuple[
    Annotated[dict, Artifact.LATENCY_REPORT],
    Annotated[HTMLString, Artifact.LATENCY_REPORT_HTML],
]:
    """p50/p95/p99 single-row latency with their intervals, batch latency and serialized size of the full
    pipeline; with a champion (production, else staging), both measured interleaved and the p95 ratio.

    The champion is wrapped as this version is (recalibrated on validation if the spec says so), so
    the ratio compares models, not wrappers. Never cached: a latency measured on another day or
    machine is not this run's latency, and the champion is whatever the registry holds now."""
    champion = champion_predictor(find_champion(spec.problem.name, model_version), validation, spec)
    report = evaluate_latency(lambda frame: predict_scores(scoring_model, frame), test, scoring_model,
                              spec.evaluation.latency, *champion)
    return report, HTMLString(latency_html(report))

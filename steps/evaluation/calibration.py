from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.calibration import calibration_html, evaluate_calibration
from keel.spec.data import DataSpec
from keel.spec.evaluation import CalibrationSpec
from keel.training.fit import predict_scores


@step
def calibration_step(model: Any, scoring_model: Any, test: pd.DataFrame, calibration: CalibrationSpec,
                     data: DataSpec) -> Tuple[
    Annotated[dict, Artifact.CALIBRATION_REPORT],
    Annotated[HTMLString, Artifact.CALIBRATION_REPORT_HTML],
]:
    """Brier score, expected calibration error and reliability curve (before and after recalibration)."""
    y = test[data.target.column].to_numpy()
    report = evaluate_calibration(y, predict_scores(scoring_model, test), calibration.bins, calibration.method)
    before = None
    if calibration.method != "none":
        before = evaluate_calibration(y, predict_scores(model, test), calibration.bins)
        report["before_calibration"] = before
    return report, HTMLString(calibration_html(report, before))

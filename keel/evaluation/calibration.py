"""Calibration: Brier score, expected calibration error, reliability curve, optional recalibration."""

from __future__ import annotations

import numpy as np

from keel.reports import html, svg


def reliability_curve(y_true, scores, bins: int) -> dict:
    """Equal-width bins: mean predicted probability, observed rate and count per non-empty bin."""
    y_true, scores = np.asarray(y_true, dtype=float), np.asarray(scores, dtype=float)
    index = np.minimum((scores * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=scores, minlength=bins)
    observed = np.bincount(index, weights=y_true, minlength=bins)
    filled = counts > 0
    return {"mean_predicted": (predicted[filled] / counts[filled]).round(4).tolist(),
            "observed_rate": (observed[filled] / counts[filled]).round(4).tolist(),
            "count": counts[filled].astype(int).tolist()}


def expected_calibration_error(y_true, scores, bins: int) -> float:
    curve = reliability_curve(y_true, scores, bins)
    total = sum(curve["count"])
    gaps = np.abs(np.array(curve["mean_predicted"]) - np.array(curve["observed_rate"]))
    return float(np.sum(gaps * np.array(curve["count"])) / total) if total else float("nan")


def evaluate_calibration(y_true, scores, bins: int, method: str = "none") -> dict:
    from sklearn.metrics import brier_score_loss

    return {"method": method, "bins": bins,
            "brier": float(brier_score_loss(y_true, scores)),
            "expected_calibration_error": expected_calibration_error(y_true, scores, bins),
            "reliability": reliability_curve(y_true, scores, bins)}


def fit_calibrated(model, x_validation, y_validation, method: str):
    """Post-hoc calibration of a fitted model on validation data (the model itself is not refit)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    return CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(x_validation, y_validation)


def calibration_html(report: dict, uncalibrated: dict | None = None) -> str:
    curve = report["reliability"]
    series = [(f"model ({report['method']})", curve["mean_predicted"], curve["observed_rate"])]
    rows = [("Brier score", report["brier"]), ("expected calibration error", report["expected_calibration_error"])]
    if uncalibrated:
        raw = uncalibrated["reliability"]
        series.append(("before calibration", raw["mean_predicted"], raw["observed_rate"]))
        rows += [("Brier before calibration", uncalibrated["brier"]),
                 ("ECE before calibration", uncalibrated["expected_calibration_error"])]
    return html.page("Calibration (test split)", html.table(["measure", "value"], rows),
                     svg.line_chart(series, "Reliability curve", "mean predicted probability",
                                    "observed rate", diagonal=True),
                     html.table(["mean predicted", "observed", "rows"],
                                zip(curve["mean_predicted"], curve["observed_rate"], curve["count"])))

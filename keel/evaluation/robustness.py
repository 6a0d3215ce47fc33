"""Robustness: how much the primary metric moves when inputs are noisy, missing or mislabelled,
feature by feature and all at once; and whether hostile inputs still get an answer."""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np
import pandas as pd

from keel.reports import html, svg
from keel.spec.metrics import higher_is_better, improvement
from keel.spec.data import CategoricalFeature, DataSpec
from keel.spec.evaluation import RobustnessSpec
from keel.training.metrics import metric_value


def _perturb(frame: pd.DataFrame, column: str, kind: str, data: DataSpec, spec: RobustnessSpec,
             rng: np.random.Generator) -> pd.DataFrame:
    result = frame.copy()
    values = result[column]
    feature = data.features[column]
    if kind == "noise":
        noisy = values.astype(float) + rng.normal(0, spec.noise_std * float(np.nanstd(values)), len(values))
        result[column] = noisy
    elif kind == "missing":
        mask = rng.random(len(values)) < spec.missing_rate
        result[column] = values.astype(object if isinstance(feature, CategoricalFeature) else float).where(~mask)
        if isinstance(feature, CategoricalFeature):
            result[column] = pd.Categorical(result[column], categories=feature.categories)
    elif kind == "swap":
        mask = rng.random(len(values)) < spec.category_swap_rate
        replacement = rng.choice(feature.categories, size=len(values))
        result[column] = pd.Categorical(np.where(mask, replacement, values.astype(object)),
                                        categories=feature.categories)
    return result


def _kinds(feature) -> list:
    return ["missing", "swap"] if isinstance(feature, CategoricalFeature) else ["noise", "missing"]


def evaluate_robustness(predict: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                        y_true, data: DataSpec, spec: RobustnessSpec, metric: str) -> dict:
    """Metric drop (clean minus perturbed, positive = worse) per feature and perturbation, on a
    seeded sample of at most `spec.max_rows` rows (the clean reference is the same sample)."""
    rng = np.random.default_rng(spec.seed)
    if len(frame) > spec.max_rows:
        rows = np.sort(rng.choice(len(frame), spec.max_rows, replace=False))
        frame, y_true = frame.iloc[rows], np.asarray(y_true)[rows]
    clean = metric_value(metric, y_true, predict(frame))  # the unperturbed reference
    drops: Dict[str, Dict[str, float]] = {}
    for column in data.model_features:
        for kind in _kinds(data.features[column]):
            perturbed = metric_value(metric, y_true, predict(_perturb(frame, column, kind, data, spec, rng)))
            drops.setdefault(column, {})[kind] = round(improvement(metric, perturbed, clean), 5)
    everything = {}
    for kind in ("noise", "missing", "swap"):
        shifted = frame
        for column in data.model_features:
            if kind in _kinds(data.features[column]):
                shifted = _perturb(shifted, column, kind, data, spec, rng)
        everything[kind] = round(improvement(metric, metric_value(metric, y_true, predict(shifted)), clean), 5)
    worst = {column: max(kinds.items(), key=lambda item: item[1]) for column, kinds in drops.items()}
    return {"metric": metric, "clean": clean, "rows": int(len(frame)), "per_feature": drops, "all_features": everything,
            "worst_slice_per_feature": worst_slices(np.asarray(predict(frame)), frame, y_true, data, metric),
            "worst_per_feature": {c: {"perturbation": k, "drop": v} for c, (k, v) in worst.items()},
            "robustness_max_drop": float(max(everything.values())),
            "hostile_inputs": hostile_input_check(predict, frame, data)}


def _slices(values: pd.Series, feature) -> pd.Series:
    if isinstance(feature, CategoricalFeature):
        return values.astype("string").fillna("(missing)")
    binned = pd.qcut(values.astype(float), q=5, duplicates="drop")
    return binned.astype("string").fillna("(missing)")


def worst_slices(scores: np.ndarray, frame: pd.DataFrame, y_true, data: DataSpec, metric: str) -> dict:
    """Per feature, the slice (category or quintile) where the metric is worst, among slices with at
    least `data.min_group_size` rows and both outcomes."""
    y_true = np.asarray(y_true)
    result = {}
    for column in data.model_features:
        labels = _slices(frame[column], data.features[column]).to_numpy()
        candidates = []
        for label in pd.unique(labels):
            rows = labels == label
            if rows.sum() >= data.min_group_size and 0 < y_true[rows].sum() < rows.sum():
                candidates.append((metric_value(metric, y_true[rows], scores[rows]), str(label), int(rows.sum())))
        if candidates:
            value, label, rows = (min if higher_is_better(metric) else max)(candidates)
            result[column] = {"slice": label, "rows": rows, metric: round(float(value), 5)}
    return result


def hostile_input_check(predict, frame: pd.DataFrame, data: DataSpec) -> dict:
    """Out-of-range numbers and unseen categories must still give a probability, not a crash."""
    rows = frame.head(5).copy()
    for column in data.model_features:
        feature = data.features[column]
        if isinstance(feature, CategoricalFeature):
            rows[column] = pd.Categorical(["__never_seen__"] * len(rows))
        else:
            rows[column] = [1e12, -1e12, 0.0, np.nan, 1e-12][: len(rows)]
    try:
        output = np.asarray(predict(rows), dtype=float)
    except Exception as error:  # the point of the check is to catch any failure
        return {"passed": False, "error": f"{type(error).__name__}: {error}"}
    valid = bool(np.all((output >= 0) & (output <= 1)))
    return {"passed": valid, "rows": int(len(rows)), "error": None if valid else "output outside [0, 1]"}


def robustness_html(report: dict) -> str:
    worst = sorted(report["worst_per_feature"].items(), key=lambda item: -item[1]["drop"])
    hostile = report["hostile_inputs"]
    return html.page(
        "Robustness (test split)",
        html.key_values({"metric": report["metric"], "clean value": report["clean"],
                         "largest drop (all features perturbed)": report["robustness_max_drop"],
                         "hostile inputs (out of range, unseen categories)":
                             html.verdict(hostile["passed"], "answered" if hostile["passed"] else hostile["error"])}),
        html.table(["perturbation of every feature", "metric drop"], report["all_features"].items()),
        svg.bar_chart([c for c, _ in worst], [w["drop"] for _, w in worst], "Worst drop per feature"),
        html.table(["feature", "worst perturbation", "drop"], [(c, w["perturbation"], w["drop"]) for c, w in worst]),
        html.heading(f"Worst slice per feature ({report['metric']} on the slice, clean inputs)"),
        html.table(["feature", "slice", "rows", report["metric"]],
                   [(c, w["slice"], w["rows"], w[report["metric"]]) for c, w in report["worst_slice_per_feature"].items()]),
    )

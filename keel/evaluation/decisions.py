"""Decisions from scores: the threshold rule, confusion counts and the money they are worth."""

# No `from __future__ import annotations`: under it Python 3.11's TypedDict counts `NotRequired` keys as required.
from typing import Dict, NotRequired, TypedDict

import numpy as np

from keel.spec.evaluation import ThresholdRule, ValueMatrix


class ChosenThreshold(TypedDict):
    """The decision threshold an evaluation chose on validation data (the decision_threshold artifact):
    `rule` names the spec's rule; `target_recall` only under that rule; `validation_objective` (the
    best F1 or money per application reached) only under max_f1 and min_expected_cost. Steps declare
    the artifact `dict`: ZenML's type checks (isinstance, issubclass) refuse a TypedDict."""

    rule: str
    threshold: float
    target_recall: NotRequired[float]
    validation_objective: NotRequired[float]


def confusion(y_true, decisions) -> Dict[str, int]:
    y_true, decisions = np.asarray(y_true).astype(bool), np.asarray(decisions).astype(bool)
    return {"true_positive": int((y_true & decisions).sum()), "false_positive": int((~y_true & decisions).sum()),
            "true_negative": int((~y_true & ~decisions).sum()), "false_negative": int((y_true & ~decisions).sum())}


def value_per_application(y_true, decisions, values: ValueMatrix) -> float:
    """Average value per case of deciding as given (a positive decision predicts the positive class)."""
    counts = confusion(y_true, decisions)
    total = sum(counts.values())
    if total == 0:
        return float("nan")
    return sum(getattr(values, cell) * count for cell, count in counts.items()) / total


def _candidates(scores: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([np.quantile(scores, np.linspace(0, 1, 401)), [0.5]]))


def choose_threshold(y_true, scores, rule: ThresholdRule, values: ValueMatrix) -> ChosenThreshold:
    """The decision threshold by the spec's rule, on the rows given (validation data)."""
    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    if rule.rule == "fixed":
        return {"rule": "fixed", "threshold": float(rule.value)}
    thresholds = _candidates(scores)
    positives = max(int(y_true.sum()), 1)
    if rule.rule == "max_f1":
        def objective(t):
            d = scores >= t
            tp = int((d & (y_true == 1)).sum())
            return 2 * tp / (d.sum() + positives) if d.sum() + positives else 0.0
    elif rule.rule == "target_recall":
        # The highest threshold that still reaches the target recall (fewest positives decided).
        reaching = [t for t in thresholds if ((scores >= t) & (y_true == 1)).sum() / positives >= rule.target_recall]
        best = max(reaching) if reaching else float(thresholds.min())
        return {"rule": "target_recall", "threshold": float(best), "target_recall": rule.target_recall}
    else:
        def objective(t):
            return value_per_application(y_true, scores >= t, values)
    scored = [(objective(t), -t) for t in thresholds]
    best_value, negative_threshold = max(scored)
    return {"rule": rule.rule, "threshold": float(-negative_threshold), "validation_objective": float(best_value)}

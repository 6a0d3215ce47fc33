"""Binary-classification metrics keyed by the names the spec uses."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from keel.spec.problem import METRICS

# Training scores candidates at this threshold (selection and the recorded validation/test metrics);
# evaluation judges at the decision threshold chosen on validation, so the two differ.
DEFAULT_THRESHOLD = 0.5
# The metrics that depend on a threshold (decisions); the others rank or score the probabilities.
THRESHOLD_METRICS = frozenset({"f1", "precision", "recall", "accuracy"})
METRICS_THRESHOLD_KEY = "metrics_threshold"


def recorded_metrics_threshold(metadata: dict) -> Optional[float]:
    """The threshold a model version's training metrics were computed at, as its metadata records it
    (None for a version registered before keel recorded it)."""
    value = metadata.get(METRICS_THRESHOLD_KEY)
    return None if value is None else float(value)


def metrics_threshold_text(metadata: dict) -> str:
    """"0.5"; for a version that did not record it, what training used then, marked as inferred."""
    recorded = recorded_metrics_threshold(metadata)
    return f"{recorded:g}" if recorded is not None else f"{DEFAULT_THRESHOLD:g} (default; not recorded)"


def metric_label(name: str, threshold: float) -> str:
    """`f1 @ 0.5` for a metric decided at a threshold; threshold-free metrics keep their name."""
    return f"{name} @ {threshold:g}" if name in THRESHOLD_METRICS else name


def metric_value(name: str, y_true, probabilities, threshold: float = DEFAULT_THRESHOLD) -> float:
    """One metric only (what `score` computes for `name`), for loops that need just one."""
    from sklearn import metrics

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=float)
    if name in ("roc_auc", "pr_auc"):
        if len(np.unique(y_true)) != 2:
            return float("nan")
        function = metrics.roc_auc_score if name == "roc_auc" else metrics.average_precision_score
        return round(float(function(y_true, probabilities)), 6)
    return score(y_true, probabilities, threshold)[name]


def score(y_true, probabilities, threshold: float = DEFAULT_THRESHOLD) -> Dict[str, float]:
    """Every metric in `keel.spec.problem.METRICS`; threshold-based ones at `threshold`."""
    from sklearn import metrics

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=float)
    decisions = (probabilities >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    values = {
        "roc_auc": metrics.roc_auc_score(y_true, probabilities) if both_classes else float("nan"),
        "pr_auc": metrics.average_precision_score(y_true, probabilities) if both_classes else float("nan"),
        "f1": metrics.f1_score(y_true, decisions, zero_division=0),
        "precision": metrics.precision_score(y_true, decisions, zero_division=0),
        "recall": metrics.recall_score(y_true, decisions, zero_division=0),
        "accuracy": metrics.accuracy_score(y_true, decisions),
        "log_loss": metrics.log_loss(y_true, np.clip(probabilities, 1e-15, 1 - 1e-15), labels=[0, 1]),
        "brier": metrics.brier_score_loss(y_true, probabilities),
    }
    assert set(values) == set(METRICS)
    return {name: round(float(value), 6) for name, value in values.items()}

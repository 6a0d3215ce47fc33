"""Fast bootstrap of every metric: Poisson(1) weights per row (the large-sample equivalent of
resampling rows), scores sorted once, each metric an O(n) weighted sum. 1,000 resamples of 100k rows
take seconds, not minutes."""

from __future__ import annotations

from typing import Dict, Iterator

import numpy as np

CHUNK = 50  # resamples computed together: 50 x n weights in memory at once


def poisson_weights(rng: np.random.Generator, samples: int, n: int) -> Iterator[np.ndarray]:
    for chunk in np.array_split(np.arange(samples), max(1, samples // CHUNK)):
        yield rng.poisson(1.0, size=(len(chunk), n)).astype(float)


class Sorted:
    """Scores sorted once, with tie groups, for weighted ranking metrics."""

    def __init__(self, y: np.ndarray, scores: np.ndarray):
        self.order = np.argsort(scores, kind="stable")
        self.y = y[self.order].astype(float)
        _, self.ties = np.unique(scores[self.order], return_inverse=True)
        self.groups = int(self.ties.max()) + 1 if len(self.ties) else 0


def _per_group(values: np.ndarray, ties: np.ndarray, groups: int) -> np.ndarray:
    """Sum each row of `values` within tie groups: shape (rows, groups)."""
    out = np.zeros((values.shape[0], groups))
    for row in range(values.shape[0]):
        out[row] = np.bincount(ties, values[row], minlength=groups)
    return out


def weighted_ranking(sorted_: Sorted, weights: np.ndarray) -> Dict[str, np.ndarray]:
    """ROC AUC and average precision for each row of `weights` (weights in original row order)."""
    w = weights[:, sorted_.order]
    positive = _per_group(w * sorted_.y, sorted_.ties, sorted_.groups)
    negative = _per_group(w * (1 - sorted_.y), sorted_.ties, sorted_.groups)
    below = np.cumsum(negative, axis=1) - negative
    total_pos, total_neg = positive.sum(axis=1), negative.sum(axis=1)
    auc = (positive * (below + 0.5 * negative)).sum(axis=1) / (total_pos * total_neg)
    # Average precision over thresholds from the highest score down (as scikit-learn computes it).
    tp = np.cumsum(positive[:, ::-1], axis=1)
    fp = np.cumsum(negative[:, ::-1], axis=1)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall_step = positive[:, ::-1] / total_pos[:, None]
    return {"roc_auc": auc, "pr_auc": (recall_step * precision).sum(axis=1)}


def weighted_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, weights: np.ndarray,
                     sorted_: Sorted | None = None) -> Dict[str, np.ndarray]:
    """Every metric of `keel.training.metrics.score`, once per row of `weights`."""
    y = y.astype(float)
    decided = (scores >= threshold).astype(float)
    tp, fp = weights @ (y * decided), weights @ ((1 - y) * decided)
    fn, tn = weights @ (y * (1 - decided)), weights @ ((1 - y) * (1 - decided))
    total = weights.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    p = np.clip(scores, 1e-15, 1 - 1e-15)
    result = {"f1": f1, "precision": precision, "recall": recall, "accuracy": (tp + tn) / total,
              "log_loss": weights @ -(y * np.log(p) + (1 - y) * np.log(1 - p)) / total,
              "brier": weights @ ((scores - y) ** 2) / total}
    result.update(weighted_ranking(sorted_ or Sorted(y, scores), weights))
    return result

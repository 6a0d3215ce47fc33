"""Performance on the test split: ranking metrics and decision metrics at the chosen threshold."""

from __future__ import annotations

import numpy as np

from keel.reports import html, svg
from keel.training.metrics import score


def _downsample(xs, ys, points: int = 200):
    index = np.unique(np.linspace(0, len(xs) - 1, min(points, len(xs))).astype(int))
    return [round(float(v), 4) for v in np.asarray(xs)[index]], [round(float(v), 4) for v in np.asarray(ys)[index]]


def metric_intervals(y_true, scores, threshold: float, samples: int, confidence: float, seed: int
                     ) -> tuple[dict, dict]:
    """Percentile bootstrap interval of every metric (Poisson-weighted resamples of the rows), and why
    each one that is not available is not (a resample where the metric is undefined: no row of a class)."""
    from keel.evaluation.bootstrap import Sorted, bootstrap_intervals, poisson_weights, weighted_metrics

    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    ranked = Sorted(y_true, scores)
    chunks = [weighted_metrics(y_true, scores, threshold, weights, ranked)
              for weights in poisson_weights(np.random.default_rng(seed), samples, len(y_true))]
    return bootstrap_intervals(chunks, confidence)


def too_little_test_evidence(report: dict, rule: dict) -> list:
    """Why the test split is too small for its metrics to be evidence, as `decide`'s missing evidence
    ([] when it is not): the small-group rule (`keel.evaluation.fairness.group_rule`) applied to the whole
    split, at least `min_rows` rows and `min_each` of each class. Three test rows give an AUC of 1.0
    with a bootstrap interval of [1.0, 1.0]: that promotes nothing."""
    from keel.evaluation.fairness import shortfalls

    rows = int(report["rows"])
    positives = int(report.get("positives", round(rows * report["positive_rate"])))
    counts = {"rows": (rows, rule["min_rows"]), "rows of the positive class": (positives, rule["min_each"]),
              "rows of the negative class": (rows - positives, rule["min_each"])}
    short = shortfalls(counts)
    if not short:
        return []
    return [f"test split too small to judge: {'; '.join(short)} (data.min_group_size, data.min_group_outcomes)"]


def evaluate_performance(y_true, scores, threshold: float, interval_samples: int = 200,
                         confidence: float = 0.95, seed: int = 0) -> dict:
    from sklearn.metrics import precision_recall_curve, roc_curve

    metrics = score(y_true, scores, threshold)
    intervals, interval_unavailable = metric_intervals(y_true, scores, threshold, interval_samples, confidence, seed)
    undefined = {}
    if not np.any(np.asarray(scores, dtype=float) >= threshold):
        # Precision is the share of positive decisions that were right: with none it is 0/0, not 0.0
        # (scikit-learn's zero_division=0). NaN: a gate on it has no value and the decision is incomplete.
        undefined["precision"] = "no positive decisions"
    for name in undefined:
        metrics[name], intervals[name] = float("nan"), [float("nan"), float("nan")]
    report = {"threshold": threshold, "metrics": metrics, "rows": int(len(y_true)),
              "positives": int(np.sum(y_true)), "positive_rate": float(np.mean(y_true)), "confidence": confidence,
              "intervals": intervals, "undefined": undefined,
              "interval_unavailable": {k: v for k, v in interval_unavailable.items() if k not in undefined}}
    if len(np.unique(y_true)) == 2:
        fpr, tpr, _ = roc_curve(y_true, scores)
        precision, recall, _ = precision_recall_curve(y_true, scores)
        report["roc_curve"] = _downsample(fpr, tpr)
        report["pr_curve"] = _downsample(recall[::-1], precision[::-1])
    return report


def undefined_text(report: dict, name: str) -> str:
    """"undefined (no positive decisions)" for a metric the report marks undefined ('' otherwise)."""
    why = (report.get("undefined") or {}).get(name)
    return f"undefined ({why})" if why else ""


def _metric_row(report: dict, name: str, value: float) -> tuple:
    if undefined_text(report, name):
        return name, undefined_text(report, name), "-"
    why = (report.get("interval_unavailable") or {}).get(name)
    return name, value, f"not available: {why}" if why else "[{:.4f}, {:.4f}]".format(*report["intervals"][name])


def performance_html(report: dict) -> str:
    sections = [html.key_values({"test rows": report["rows"], "decision threshold": report["threshold"],
                                 "positive rate": report["positive_rate"]}),
                html.table(["metric", "value", f"{report['confidence']:.0%} bootstrap interval"],
                           [_metric_row(report, name, value) for name, value in report["metrics"].items()])]
    if "roc_curve" in report:
        sections.append(svg.line_chart([("ROC", *report["roc_curve"])], "ROC curve", "false positive rate",
                                       "true positive rate", diagonal=True))
        sections.append(svg.line_chart([("precision-recall", *report["pr_curve"])], "Precision-recall",
                                       "recall", "precision"))
    return html.page("Performance (test split)", *sections)

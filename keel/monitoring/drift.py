"""The four kinds of drift, judged by the spec's thresholds (pure functions over profile comparisons
and labelled rows):

- data drift per feature: KS (numbers) or chi-square (categories) on the profiles, Bonferroni over
  the features tested, and a minimum effect size (KS distance, total variation distance);
- prediction drift: KS on the scores, and the change of the decision rate;
- label drift: the positive rate of the delayed labels against the training data's (z-test + size);
- performance drift: the model's metric on labelled rows against its own test value;
- concept drift: performance drift while the inputs did not drift, reported as such.

A reference that cannot be right (a NaN metric, a label rate of 0 or 1) raises `ImplausibleReference`:
judged against it, performance drift could never fire and label drift would always.

What they return is typed in `keel.monitoring.records`.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np

from keel.monitoring.records import (DriftAssessment, FeatureDrift, LabelDrift, PerformanceDrift, PredictionDrift,
                                     Verdict)
from keel.monitoring.reference import check_label_rate, check_metrics
from keel.spec.monitoring import (DriftSpec, FeatureDriftSpec, LabelDriftSpec, PerformanceDriftSpec,
                                  PredictionDriftSpec)


def _worsened(performance: PerformanceDrift) -> str:
    """"roc_auc fell by 0.086", "brier rose by 0.379": `drop` is how much worse, whichever way the metric points."""
    from keel.spec.metrics import higher_is_better

    moved = "fell" if higher_is_better(performance["metric"]) else "rose"
    return f"{performance['metric']} {moved} by {performance['drop']:.3f}"


def feature_drift(comparisons: Dict[str, dict], spec: FeatureDriftSpec) -> FeatureDrift:
    """Which features drifted. `comparisons` as `keel.monitoring.profiles.compare_columns` returns."""
    tested = [name for name, c in comparisons.items() if c["p_value"] is not None]
    alpha = spec.p_value / max(len(tested), 1)
    features: Dict[str, dict] = {}
    for name, comparison in comparisons.items():
        minimum = spec.min_ks_statistic if comparison["test"] == "ks" else spec.min_category_distance
        effect = comparison["effect"]
        drifted = (comparison["p_value"] is not None and comparison["p_value"] < alpha
                   and effect is not None and not math.isnan(effect) and effect >= minimum)
        features[name] = {**comparison, "alpha": alpha, "min_effect": minimum, "drifted": bool(drifted)}
    return {"drifted": sorted(n for n, f in features.items() if f["drifted"]),
            "tested": len(tested), "alpha": alpha, "features": features,
            "problems": {n: f["problem"] for n, f in features.items() if f["problem"]},
            "unseen_categories": {n: f["unseen_categories"] for n, f in features.items() if f["unseen_categories"]}}


def prediction_drift(score: dict, window_decision_rate: Optional[float], reference_decision_rate: Optional[float],
                     spec: PredictionDriftSpec) -> PredictionDrift:
    """Score distribution (KS against the test predictions) and decision rate change."""
    score_drifted = (score.get("p_value") is not None and score["p_value"] < spec.p_value
                     and (score.get("effect") or 0.0) >= spec.min_ks_statistic)
    change = (None if window_decision_rate is None or reference_decision_rate is None
              else window_decision_rate - reference_decision_rate)
    rate_drifted = change is not None and abs(change) > spec.max_decision_rate_change
    return {"drifted": bool(score_drifted or rate_drifted), "score_drifted": bool(score_drifted),
            "score_test": score.get("test"), "score_p_value": score.get("p_value"), "score_ks": score.get("effect"),
            "decision_rate": window_decision_rate, "reference_decision_rate": reference_decision_rate,
            "decision_rate_change": change, "decision_rate_drifted": bool(rate_drifted),
            "problem": score.get("problem")}


def _two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float:
    from scipy.stats import norm

    pooled = (k1 + k2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0 if k1 / n1 == k2 / n2 else 0.0
    return float(2 * norm.sf(abs(k1 / n1 - k2 / n2) / spread))


def label_drift(labels: np.ndarray, reference_rate: Optional[float], reference_rows: int,
                spec: LabelDriftSpec, min_rows: int) -> LabelDrift:
    """The observed positive rate against the training data's (needs `min_rows` labels)."""
    check_label_rate(reference_rate, reference_rows)
    labels = np.asarray(labels, dtype=int)
    result: LabelDrift = {"drifted": False, "judged": False, "rows": int(len(labels)), "rate": None,
                          "reference_rate": reference_rate, "change": None, "ratio": None, "p_value": None}
    if len(labels) < min_rows or reference_rate is None or reference_rows <= 0:
        result["reason"] = (f"{len(labels)} labelled rows, fewer than {min_rows}" if len(labels) < min_rows
                            else "no reference label rate")
        return result
    rate = float(labels.mean())
    p_value = _two_proportion_p_value(int(labels.sum()), len(labels), round(reference_rate * reference_rows),
                                      reference_rows)
    change = rate - reference_rate
    drifted = p_value < spec.p_value and rate_bound_exceeded(rate, reference_rate, spec)
    result.update({"judged": True, "rate": rate, "change": change, "ratio": rate / reference_rate, "p_value": p_value,
                   "drifted": bool(drifted)})
    blind = blind_absolute_bound(reference_rate, spec)
    if not drifted and blind:  # "stable" would claim what the bound cannot see
        result.update({"judged": False, "reason": blind})
    return result


def rate_bound_exceeded(rate: float, reference_rate: float, spec: LabelDriftSpec) -> bool:
    """Whether the rate moved past either declared bound: the absolute change, or the ratio outside [1/r, r]."""
    by_change = spec.max_rate_change is not None and abs(rate - reference_rate) > spec.max_rate_change
    ratio = rate / reference_rate  # the reference rate is above 0 (check_label_rate)
    by_ratio = spec.max_rate_ratio is not None and not 1 / spec.max_rate_ratio <= ratio <= spec.max_rate_ratio
    return bool(by_change or by_ratio)


def blind_absolute_bound(reference_rate: float, spec: LabelDriftSpec) -> Optional[str]:
    """Why no drift found is not "stable" when only the absolute bound is declared and the base rate is at or
    below it (the rate cannot fall by that much; only a large rise is seen); None when the bounds can judge."""
    if spec.max_rate_ratio is not None or spec.max_rate_change is None or reference_rate > spec.max_rate_change:
        return None
    return (f"not judgeable by max_rate_change {spec.max_rate_change:g} at a {reference_rate * 100:.1f} % base "
            f"rate (a fall cannot exceed it; only a rise above {(reference_rate + spec.max_rate_change) * 100:.1f} % "
            f"would); declare monitoring.drift.label.max_rate_ratio")


def performance_drift(labels: np.ndarray, scores: np.ndarray, threshold: float, reference: Dict[str, float],
                      spec: PerformanceDriftSpec, min_rows: int, min_outcomes: int = 1) -> PerformanceDrift:
    """The spec's metric on labelled production rows against the model's test value; judged only with
    `min_rows` labelled rows holding at least `min_outcomes` of each class (data.min_group_outcomes, the
    rule evaluation judges a group's TPR by): on one fraud label among 400 a ROC AUC is noise."""
    from keel.spec.metrics import improvement
    from keel.training.metrics import metric_value

    if reference.get(spec.metric) is not None:
        check_metrics({spec.metric: reference[spec.metric]})
    labels = np.asarray(labels, dtype=int)
    result: PerformanceDrift = {"drifted": False, "judged": False, "metric": spec.metric, "rows": int(len(labels)),
                                "value": None, "reference": reference.get(spec.metric), "drop": None,
                                "max_drop": spec.max_drop}
    if len(labels) < min_rows:
        result["reason"] = f"{len(labels)} labelled rows, fewer than {min_rows}"
        return result
    positives = int(labels.sum())
    if min(positives, len(labels) - positives) < min_outcomes:
        result["reason"] = (f"{positives} positive and {len(labels) - positives} negative labelled rows: fewer than "
                            f"{min_outcomes} of each (data.min_group_outcomes)")
        return result
    value = metric_value(spec.metric, labels, np.asarray(scores, dtype=float), threshold)
    if value is None or math.isnan(value) or result["reference"] is None:
        result["reason"] = "the metric is undefined on these rows (one class only?)" if result["reference"] is not None \
            else f"no reference value of {spec.metric}"
        result["value"] = None if value is None or math.isnan(value) else value
        return result
    drop = -improvement(spec.metric, result["reference"], value)
    result.update({"judged": True, "value": float(value), "drop": float(drop), "drifted": bool(drop > spec.max_drop)})
    interval, why = _metric_interval(spec.metric, labels, scores, threshold)
    if interval is None:  # too thin to bound: the verdict cannot be told from chance
        result.update({"uncertain": True, "interval_note": why})
    else:
        drops = sorted(-improvement(spec.metric, result["reference"], bound) for bound in interval)
        # As evaluation's gates: a verdict whose interval crosses the bound is given, and said uncertain.
        result.update({"interval": interval, "uncertain": bool(drops[0] <= spec.max_drop < drops[1])})
    return result


PERFORMANCE_INTERVAL = {"samples": 200, "confidence": 0.95, "seed": 0}  # bootstrap of the labelled window's metric


def performance_verdict(performance: dict) -> str:
    """The performance verdict in words, as the CLI and the drift report give it: DRIFT / stable, ", but
    uncertain" with the interval that crosses the allowed drop, or why it was not judged."""
    if not performance.get("judged"):
        return performance.get("reason", "not judged")
    verdict = "DRIFT" if performance.get("drifted") else "stable"
    if performance.get("uncertain") and performance.get("interval"):
        low, high = performance["interval"]
        verdict += (f", but uncertain ({PERFORMANCE_INTERVAL['confidence']:.0%} interval {low:.4f}-{high:.4f} crosses a "
                    f"drop of {performance['max_drop']:g})")
    elif performance.get("uncertain"):
        verdict += f", but uncertain (no interval: {performance.get('interval_note')})"
    return verdict


def _metric_interval(metric: str, labels: np.ndarray, scores, threshold: float) -> tuple:
    """(the bootstrap interval of `metric` on the labelled rows (PERFORMANCE_INTERVAL), None) or (None, why
    it has none)."""
    from keel.evaluation.performance import metric_intervals

    intervals, unavailable = metric_intervals(labels, np.asarray(scores, dtype=float), threshold,
                                              **PERFORMANCE_INTERVAL)
    if metric in unavailable or metric not in intervals:
        return None, unavailable.get(metric, f"{metric} has no bootstrap interval")
    return [float(bound) for bound in intervals[metric]], None


def classify(features: FeatureDrift, prediction: PredictionDrift, label: LabelDrift,
             performance: PerformanceDrift) -> Verdict:
    """Name what happened. Performance drift with stable inputs is concept drift: the relationship
    between inputs and outcome changed, not the population."""
    kinds: List[str] = []
    if features["drifted"]:
        kinds.append("data")
    if prediction["drifted"]:
        kinds.append("prediction")
    if label["drifted"]:
        kinds.append("label")
    if performance["drifted"]:
        kinds.append("performance")
    concept = bool(performance["drifted"] and not features["drifted"])
    if concept:
        kinds.append("concept")
    if concept:
        summary = (f"concept drift: {_worsened(performance)} while no input feature drifted (the relationship "
                   "between inputs and outcome changed)")
    elif kinds:
        parts = []
        if features["drifted"]:
            parts.append(f"{len(features['drifted'])} feature(s) drifted ({', '.join(features['drifted'])})")
        if prediction["drifted"]:
            parts.append("the scores/decisions drifted")
        if label["drifted"]:
            parts.append(f"the positive rate moved by {label['change']:+.3f} ({label['reference_rate']:.2%} -> "
                         f"{label['rate']:.2%}, x{label['ratio']:.2f})")
        if performance["drifted"]:
            parts.append(_worsened(performance))
        summary = "; ".join(parts)
    else:
        summary = "no drift"
    return {"kinds": kinds, "alarm": bool(kinds), "concept_drift": concept, "summary": summary}


def assess(comparisons: Dict[str, dict], score: dict, window_decision_rate: Optional[float],
           reference: dict, labels: np.ndarray, scores: np.ndarray, window_rows: int,
           spec: DriftSpec, min_outcomes: int = 1) -> DriftAssessment:
    """All four kinds for one window. `reference`: decision_rate, label_rate, label_rows, threshold,
    metrics (the model's test metrics). A window under `min_window_rows` is reported, not judged.
    `min_outcomes`: of each class among the labelled rows for performance to be judged."""
    if window_rows < spec.min_window_rows:
        empty: FeatureDrift = {"drifted": [], "tested": 0, "alpha": None, "features": {}, "problems": {},
                               "unseen_categories": {}}
        return {"judged": False, "reason": f"{window_rows} predictions in the window, fewer than "
                                           f"{spec.min_window_rows}: not judged",
                "features": empty, "prediction": {"drifted": False}, "label": {"drifted": False, "judged": False},
                "performance": {"drifted": False, "judged": False, "metric": spec.performance.metric},
                "verdict": {"kinds": [], "alarm": False, "concept_drift": False, "summary": "window too small"}}
    features = feature_drift(comparisons, spec.features)
    prediction = prediction_drift(score, window_decision_rate, reference.get("decision_rate"), spec.prediction)
    label = label_drift(labels, reference.get("label_rate"), int(reference.get("label_rows") or 0), spec.label,
                        spec.min_labelled_rows)
    performance = performance_drift(labels, scores, float(reference.get("threshold", 0.5)),
                                    reference.get("metrics", {}), spec.performance, spec.min_labelled_rows,
                                    min_outcomes)
    return {"judged": True, "reason": None, "features": features, "prediction": prediction, "label": label,
            "performance": performance, "verdict": classify(features, prediction, label, performance)}

"""What every metric keel can gate on is: its range and whether lower is better.

The range is what tells a gate bound that can bind from one that cannot: a parity ratio (lowest
group rate over highest) is at most 1, so `max: 1.25` on it passes every model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional


@dataclass(frozen=True)
class MetricRange:
    low: float = -math.inf
    high: float = math.inf
    lower_is_better: bool = False

    def unbinding_reason(self, name: str, minimum: Optional[float], maximum: Optional[float]) -> Optional[str]:
        """Why a gate `minimum <= name <= maximum` can never fail (None if it can)."""
        if minimum is not None and minimum <= self.low:
            return (f"min {minimum:g} can never fail: {name} is never below {self.low:g}; "
                    f"give a min above {self.low:g}")
        if maximum is not None and maximum >= self.high:
            return (f"max {maximum:g} can never fail: {name} is never above {self.high:g}; "
                    f"give a max below {self.high:g} (or drop it)")
        return None

    def backwards_reason(self, name: str, minimum: Optional[float], maximum: Optional[float]) -> Optional[str]:
        """Why a one-sided gate bounds `name` from the side of the better models (None if it does not):
        `min` on a lower-is-better metric, or `max` on a higher-is-better one, passes the worse models and
        fails the better ones (`equalized_odds_difference min: 0.05` passes only unequal treatment).
        A band (both bounds) is taken as meant."""
        if minimum is not None and maximum is None and self.lower_is_better:
            return (f"min {minimum:g} on {name}, where lower is better, passes the worse models and fails the "
                    f"better ones; give `max` instead")
        if maximum is not None and minimum is None and not self.lower_is_better:
            return (f"max {maximum:g} on {name}, where higher is better, passes the worse models and fails the "
                    f"better ones; give `min` instead")
        return None

    def unmeetable_reason(self, name: str, minimum: Optional[float], maximum: Optional[float]) -> Optional[str]:
        """Why a gate `minimum <= name <= maximum` can never pass (None if it can): it would reject every model."""
        if minimum is not None and minimum > self.high:
            return (f"min {minimum:g} can never be met: {name} is never above {self.high:g}; "
                    f"give a min of at most {self.high:g}")
        if maximum is not None and maximum < self.low:
            return (f"max {maximum:g} can never be met: {name} is never below {self.low:g}; "
                    f"give a max of at least {self.low:g}")
        return None


_UNIT = MetricRange(0.0, 1.0)
_UNIT_LOWER = MetricRange(0.0, 1.0, lower_is_better=True)
_POSITIVE_LOWER = MetricRange(0.0, math.inf, lower_is_better=True)

# The one list of metric names: the spec's Literals and name tuples (keel.spec.problem.METRICS, its
# Metric; keel.spec.evaluation.GATE_METRICS, FAIRNESS_METRICS, VALUE_METRICS) are taken from here.

# Measured on the model's scores against the labels: what training selects by and success criteria,
# monitoring and the performance gates judge by.
SCORE_METRIC_RANGES: Dict[str, MetricRange] = {
    "roc_auc": _UNIT, "pr_auc": _UNIT, "f1": _UNIT, "precision": _UNIT, "recall": _UNIT, "accuracy": _UNIT,
    "log_loss": _POSITIVE_LOWER, "brier": _UNIT_LOWER,
}
# The worst over the sensitive attributes and their intersection.
FAIRNESS_METRIC_RANGES: Dict[str, MetricRange] = {
    "demographic_parity_ratio": _UNIT,
    "demographic_parity_difference": _UNIT_LOWER,
    "equalized_odds_difference": _UNIT_LOWER,
}
# Business impact, in the value matrix's currency.
VALUE_METRIC_RANGES: Dict[str, MetricRange] = {
    "expected_value_per_application": MetricRange(),
    "value_uplift_vs_baseline": MetricRange(),
}

# Every metric a gate can name, in the order the spec reference lists them.
METRIC_RANGES: Dict[str, MetricRange] = {
    **SCORE_METRIC_RANGES,
    **FAIRNESS_METRIC_RANGES,
    "expected_calibration_error": _UNIT_LOWER,
    # The worst drop of the primary metric under a perturbation: negative when a perturbation happens
    # to help, and at most the metric's range.
    "robustness_max_drop": MetricRange(-math.inf, math.inf, lower_is_better=True),
    "p50_latency_ms": _POSITIVE_LOWER, "p95_latency_ms": _POSITIVE_LOWER, "p99_latency_ms": _POSITIVE_LOWER,
    "batch_rows_per_second": MetricRange(0.0, math.inf),
    "model_size_mb": _POSITIVE_LOWER,
    # p95 latency over the champion's, measured interleaved in the same process.
    "p95_latency_ratio": _POSITIVE_LOWER,
    **VALUE_METRIC_RANGES,
}

# Judged against the champion: with no champion there is nothing to compare, and the gate does not apply.
CHAMPION_RELATIVE = frozenset({"p95_latency_ratio"})

LOWER_IS_BETTER = frozenset(name for name, info in METRIC_RANGES.items() if info.lower_is_better)


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def improvement(metric: str, before: float, after: float) -> float:
    """How much better `after` is than `before` (negative: worse), whichever way the metric points;
    every comparison of two values of a metric (selection, champion/challenger, robustness, drift) uses it."""
    return after - before if higher_is_better(metric) else before - after

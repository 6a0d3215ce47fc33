"""The `evaluation` section: the decision threshold, every dimension measured, the gates and the
fairness mitigation."""

from __future__ import annotations

import math
from typing import List, Literal, Optional

from pydantic import Field, PrivateAttr, model_validator

from keel.spec.base import StrictModel
from keel.spec.metrics import FAIRNESS_METRIC_RANGES, METRIC_RANGES, VALUE_METRIC_RANGES

GATE_METRICS = tuple(METRIC_RANGES)


class ThresholdRule(StrictModel):
    """How the decision threshold is chosen on validation data."""

    rule: Literal["max_f1", "target_recall", "min_expected_cost", "fixed"] = "max_f1"
    target_recall: Optional[float] = Field(None, gt=0.0, le=1.0, description="for rule: target_recall only")
    value: Optional[float] = Field(None, ge=0.0, le=1.0, description="for rule: fixed only")

    @model_validator(mode="after")
    def _parameters(self) -> "ThresholdRule":
        if self.rule == "target_recall" and self.target_recall is None:
            raise ValueError("rule target_recall needs `target_recall`")
        if self.rule == "fixed" and self.value is None:
            raise ValueError("rule fixed needs `value`")
        # A parameter the rule does not read would be silently ignored: the threshold would not be the
        # one the spec seems to ask for (`--set evaluation.threshold.value=0.3` alone keeps max_f1).
        for key, reader in (("value", "fixed"), ("target_recall", "target_recall")):
            if getattr(self, key) is not None and self.rule != reader:
                raise ValueError(f"`{key}` is read only by rule {reader}, but the rule is {self.rule}: set "
                                 f"`rule: {reader}` to use it (--set evaluation.threshold.rule={reader}), or "
                                 f"remove `{key}`")
        return self


class ValueMatrix(StrictModel):
    """What one decided case is worth, per cell of the confusion matrix. A positive decision is a
    prediction of the positive class. No defaults: what a decision is worth is the domain's to say
    (a lender's gain on a repaid loan, a clinic's cost of a missed case)."""

    true_positive: float = Field(description="value of predicting positive where the outcome was positive")
    false_positive: float = Field(description="value of predicting positive where the outcome was negative")
    true_negative: float = Field(description="value of predicting negative where the outcome was negative")
    false_negative: float = Field(description="value of predicting negative where the outcome was positive")
    currency: str = Field(min_length=1, description="unit of the values, e.g. EUR or points")
    case: Optional[str] = Field(
        None, min_length=1, description="what one decided row is, for reports: `transaction` gives 'value per "
                                        "transaction' (default: 'value per case')")


class PerformanceSpec(StrictModel):
    interval_samples: int = Field(200, ge=50, le=10_000, description="bootstrap resamples per metric interval")
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0


class CalibrationSpec(StrictModel):
    method: Literal["none", "isotonic", "sigmoid"] = "none"
    bins: int = Field(10, ge=2, le=100)


class RobustnessSpec(StrictModel):
    noise_std: float = Field(0.1, ge=0.0, le=5.0, description="Gaussian noise, in feature std units")
    missing_rate: float = Field(0.1, ge=0.0, le=1.0)
    category_swap_rate: float = Field(0.1, ge=0.0, le=1.0)
    max_rows: int = Field(20_000, ge=100, description="perturb a seeded sample of at most this many test rows")
    seed: int = 0


class ExplainabilitySpec(StrictModel):
    sample_size: int = Field(500, ge=10, le=100_000)
    local_examples: int = Field(5, ge=0, le=100)
    seed: int = 0


class LatencySpec(StrictModel):
    """Single-row calls come in rounds, the candidate's and the champion's interleaved on the same rows,
    until the interval of each one's p95 is tight or the rounds run out."""

    single_row_calls: int = Field(200, ge=10, le=100_000, description="calls per model in one round")
    batch_size: int = Field(1000, ge=1, le=1_000_000)
    batch_calls: int = Field(5, ge=1, le=1000)
    p95_relative_width: float = Field(
        0.10, gt=0.0, le=1.0,
        description="stop when the p95's interval is at most this wide relative to the p95, for every model measured")
    max_rounds: int = Field(10, ge=1, le=1000, description="cap on rounds when the interval stays wide")
    max_seconds: float = Field(
        15.0, gt=0.0, le=3600.0,
        description="no round starts after this long: on a busy machine the interval may never tighten, and ten "
                    "rounds of a slow model would hold the evaluation for minutes (the report says why it stopped)")
    interval_confidence: float = Field(0.95, gt=0.5, lt=1.0, description="of the percentiles' intervals")


class ComparisonSpec(StrictModel):
    """Champion/challenger on the same test rows: a paired bootstrap of the primary-metric difference."""

    mode: Literal["superiority", "non_inferiority"] = "non_inferiority"
    margin: float = Field(0.01, ge=0.0, le=1.0)
    bootstrap_samples: int = Field(1000, ge=100, le=100_000)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0


VALUE_METRICS = tuple(VALUE_METRIC_RANGES)
FAIRNESS_METRICS = tuple(FAIRNESS_METRIC_RANGES)


class Gate(StrictModel):
    metric: Literal[GATE_METRICS]  # type: ignore[valid-type]
    min: Optional[float] = None
    max: Optional[float] = None
    attribute: Optional[str] = Field(
        None, description="fairness gates only: one sensitive attribute (or `a x b` for an intersection); "
                          "default: the worst over the declared attributes")
    # What the gate is judged on (evaluation.judge_gates_on), set by the evaluation section that holds
    # the gate: a gate alone is judged on its value.
    _judged_on: str = PrivateAttr("value")

    @property
    def judged_on(self) -> str:
        """"value" (the point value) or "interval" (its bootstrap interval's bound on the gate's side)."""
        return self._judged_on

    @property
    def key(self) -> str:
        return f"{self.metric}[{self.attribute}]" if self.attribute else self.metric

    @model_validator(mode="after")
    def _one_bound(self) -> "Gate":
        if any(bound is not None and not math.isfinite(bound) for bound in (self.min, self.max)):
            raise ValueError("min and max must be finite numbers (a NaN bound passes or fails nothing)")
        if self.attribute is not None and self.metric not in FAIRNESS_METRICS:
            raise ValueError(f"`attribute` applies to fairness gates only ({', '.join(FAIRNESS_METRICS)})")
        if self.min is None and self.max is None:
            raise ValueError("give `min` or `max` (or both)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        unbinding = METRIC_RANGES[self.metric].unbinding_reason(self.metric, self.min, self.max)
        if unbinding:
            raise ValueError(unbinding)
        unmeetable = METRIC_RANGES[self.metric].unmeetable_reason(self.metric, self.min, self.max)
        if unmeetable:
            raise ValueError(unmeetable)
        backwards = METRIC_RANGES[self.metric].backwards_reason(self.metric, self.min, self.max)
        if backwards:
            raise ValueError(backwards)
        return self

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.key} within [{self.min:g}, {self.max:g}]"
        return f"{self.key} >= {self.min:g}" if self.min is not None else f"{self.key} <= {self.max:g}"

    def passes(self, value: Optional[float]) -> bool:
        if value is None or value != value:  # missing or NaN never passes
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class MitigationSpec(StrictModel):
    """Fairness mitigation (fairlearn): analysed at evaluation, shipped as its own version by `run.py mitigate`."""

    method: Literal["none", "threshold_optimizer", "exponentiated_gradient"] = Field(
        "none", description="`threshold_optimizer`: group-specific thresholds on the model's scores (decides "
                            "with the attribute); `exponentiated_gradient`: retrains the model family under "
                            "the constraint (decides without it)")
    constraint: Literal["demographic_parity", "equalized_odds"] = "demographic_parity"
    attribute: Optional[str] = Field(None, description="default: the first sensitive attribute")
    attribute_at_decision_time: bool = Field(
        False, description="the sensitive attribute may be used when deciding: required by threshold_optimizer; "
                           "the service then accepts it for the mitigated version (logged, never a model feature "
                           "of other versions)")

    @model_validator(mode="after")
    def _attribute_allowed(self) -> "MitigationSpec":
        if self.method == "threshold_optimizer" and not self.attribute_at_decision_time:
            raise ValueError(
                "threshold_optimizer decides with the sensitive attribute (a threshold per group), so the "
                "service must receive it in the requests it decides: state that this is allowed with "
                "`evaluation.mitigation.attribute_at_decision_time: true`, or use exponentiated_gradient")
        return self


class EvaluationSpec(StrictModel):
    threshold: ThresholdRule = ThresholdRule()
    value_matrix: Optional[ValueMatrix] = Field(
        None, description="business impact is measured only when this is declared (reports say 'not declared')")
    performance: PerformanceSpec = PerformanceSpec()
    calibration: CalibrationSpec = CalibrationSpec()
    robustness: RobustnessSpec = RobustnessSpec()
    explainability: ExplainabilitySpec = ExplainabilitySpec()
    latency: LatencySpec = LatencySpec()
    comparison: ComparisonSpec = ComparisonSpec()
    gates: List[Gate] = Field(default_factory=list)
    blocking: bool = Field(True, description="A failing gate makes `evaluate` and `check` exit non-zero")
    judge_gates_on: Literal["value", "interval"] = Field(
        "value",
        description="`value`: a gate passes on the metric's value; `interval`: on its bootstrap interval's bound "
                    "on the gate's side (the lower bound for `min`, the upper for `max`), so a pass holds at the "
                    "performance confidence. Under `interval` a gate without a trusted interval (fairness, latency, "
                    "value gates; too few rows of a class) has no value to judge: the decision is incomplete. "
                    "Either way a gate whose interval crosses its bound is marked uncertain")
    mitigation: MitigationSpec = MitigationSpec()

    @model_validator(mode="after")
    def _gates_judged_as_declared(self) -> "EvaluationSpec":
        # Copies: a Gate given as an object may be shared with another section judging otherwise.
        gates = [gate.model_copy() for gate in self.gates]
        for gate in gates:
            gate._judged_on = self.judge_gates_on
        object.__setattr__(self, "gates", gates)  # frozen: set once, while validating
        return self

    @model_validator(mode="after")
    def _value_matrix_where_needed(self) -> "EvaluationSpec":
        if self.value_matrix is None:
            if self.threshold.rule == "min_expected_cost":
                raise ValueError("threshold rule min_expected_cost needs evaluation.value_matrix (what each "
                                 "decided case is worth); declare it or choose max_f1, target_recall or fixed")
            valued = [g.describe() for g in self.gates if g.metric in VALUE_METRICS]
            if valued:
                raise ValueError(f"gate(s) {valued} need evaluation.value_matrix (what each decided case is worth)")
        return self

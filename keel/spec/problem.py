"""The `problem` section: what the model is for and the quantitative bars it must clear; and the
metric names every section may judge by."""

from __future__ import annotations

from typing import List, Literal, Optional

from pydantic import Field, model_validator

from keel.spec.base import StrictModel
from keel.spec.metrics import METRIC_RANGES, SCORE_METRIC_RANGES

METRICS = tuple(SCORE_METRIC_RANGES)
Metric = Literal[METRICS]  # type: ignore[valid-type]


class SuccessCriterion(StrictModel):
    """A quantitative bar the model must clear, e.g. `roc_auc >= 0.75` on validation data."""

    metric: Metric
    min: Optional[float] = None
    max: Optional[float] = None

    @model_validator(mode="after")
    def _one_bound(self) -> "SuccessCriterion":
        if self.min is None and self.max is None:
            raise ValueError("give `min` or `max` (or both)")
        backwards = METRIC_RANGES[self.metric].backwards_reason(self.metric, self.min, self.max)
        if backwards:
            raise ValueError(backwards)
        return self

    def is_met(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max:g}")
        return " and ".join(parts)


class ProblemSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
    objective: str
    intended_users: str = ""
    business_metric: str
    success_criteria: List[SuccessCriterion] = Field(
        min_length=1, description="judged at training: the data-readiness report says whether a simple baseline "
                                  "can plausibly reach them on validation data. They do not gate promotion: "
                                  "declare evaluation.gates for that")
    readiness_margin: float = Field(
        0.05, ge=0.0, le=1.0,
        description="How far the baseline may fall short of a criterion and still be judged plausible")

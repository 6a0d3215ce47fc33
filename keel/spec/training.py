"""The `training` section: the baseline, the candidate family and its search space."""

from __future__ import annotations

from typing import Annotated, Dict, Literal, Union

from pydantic import Field, field_validator, model_validator

from keel.spec.base import Seed, StrictModel
from keel.spec.problem import Metric


class LogisticRegressionSpec(StrictModel):
    kind: Literal["logistic_regression"] = "logistic_regression"
    C: float = Field(1.0, gt=0)
    max_iter: int = Field(1000, gt=0)


class IntRange(StrictModel):
    type: Literal["int"]
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        return self


class FloatRange(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        return self


SearchDimension = Annotated[Union[IntRange, FloatRange], Field(discriminator="type")]

LIGHTGBM_TUNABLE = (
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "subsample",
    "colsample_bytree",
    "reg_alpha",
    "reg_lambda",
)


# The values LightGBM accepts for each tunable parameter: (lowest, whether the lowest itself is allowed,
# highest or None). A value outside passed validation and failed deep in training with LightGBM's words.
LIGHTGBM_RANGES = {
    "n_estimators": (1, True, None), "learning_rate": (0.0, False, None), "num_leaves": (2, True, 131072),
    "min_child_samples": (0, True, None), "subsample": (0.0, False, 1.0), "colsample_bytree": (0.0, False, 1.0),
    "reg_alpha": (0.0, True, None), "reg_lambda": (0.0, True, None),
}  # max_depth: any whole number (<= 0: no limit)


def _outside_lightgbm_range(name: str, value: float) -> str:
    """Why `value` is no value of LightGBM parameter `name` ("" when it is one)."""
    low, low_allowed, high = LIGHTGBM_RANGES.get(name, (None, True, None))
    if low is not None and (value < low or (value == low and not low_allowed)):
        return f"{name} {value:g} must be {'at least' if low_allowed else 'above'} {low:g}"
    if high is not None and value > high:
        return f"{name} {value:g} must be at most {high:g}"
    return ""


class LightGBMSpec(StrictModel):
    kind: Literal["lightgbm"] = "lightgbm"
    params: Dict[str, Union[int, float]] = Field(default_factory=dict)
    search_space: Dict[str, SearchDimension] = Field(default_factory=dict)
    trials: int = Field(8, ge=1, le=500)

    @field_validator("params", "search_space")
    @classmethod
    def _known_parameters(cls, values: dict) -> dict:
        unknown = sorted(set(values) - set(LIGHTGBM_TUNABLE))
        if unknown:
            raise ValueError(f"unknown LightGBM parameter(s) {unknown}; known: {list(LIGHTGBM_TUNABLE)}")
        problems = [problem for name, value in values.items()
                    for bound in ((value,) if isinstance(value, (int, float)) else (value.low, value.high))
                    if (problem := _outside_lightgbm_range(name, bound))]
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        return values


class TrainingSpec(StrictModel):
    primary_metric: Metric = "roc_auc"
    seed: Seed = 0
    threads: int = Field(1, ge=1, le=64, description="Fixed so that results are reproducible")
    baseline: LogisticRegressionSpec = LogisticRegressionSpec()
    candidate: LightGBMSpec = LightGBMSpec()

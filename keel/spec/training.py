"""The `training` section: the baseline, the candidate family and its search space."""

from __future__ import annotations

from typing import Annotated, Dict, Literal, Union

from pydantic import Field, field_validator, model_validator

from keel.spec.base import StrictModel
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
        return values


class TrainingSpec(StrictModel):
    primary_metric: Metric = "roc_auc"
    seed: int = 0
    threads: int = Field(1, ge=1, le=64, description="Fixed so that results are reproducible")
    baseline: LogisticRegressionSpec = LogisticRegressionSpec()
    candidate: LightGBMSpec = LightGBMSpec()

"""The problem spec: one YAML file describes the whole lifecycle of one model.

Every model forbids unknown keys (ZenML silently ignores them in its run configs; a typo in a
governed spec must never pass unnoticed). Later phases add their own sections here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Dict, List, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from keel.spec.base import StrictModel
from keel.spec.governance import GovernanceSpec
from keel.spec.metrics import LOWER_IS_BETTER, METRIC_RANGES
from keel.spec.monitoring import MonitoringSpec
from keel.spec.reading import CsvReading

METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier")
Metric = Literal["roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier"]

# --- problem -------------------------------------------------------------------------------------


class SuccessCriterion(StrictModel):
    """A quantitative bar the model must clear, e.g. `roc_auc >= 0.75` on validation data."""

    metric: Metric
    min: Optional[float] = None
    max: Optional[float] = None

    @model_validator(mode="after")
    def _one_bound(self) -> "SuccessCriterion":
        if self.min is None and self.max is None:
            raise ValueError("give `min` or `max` (or both)")
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


# --- data ----------------------------------------------------------------------------------------


class GeneratorSource(StrictModel):
    """keel's embedded, seeded generator of credit applications."""

    kind: Literal["generator"]
    rows: int = Field(gt=0, le=50_000_000)
    seed: int = 0
    historical_bias: float = Field(0.0, ge=0.0, le=5.0)
    covariate_shift: float = Field(0.0, ge=0.0, le=10.0)
    shifted_features: List[str] = Field(default_factory=lambda: ["income", "credit_utilization"])
    concept_shift: float = Field(0.0, ge=0.0, le=1.0)
    missing_rate: float = Field(0.05, ge=0.0, le=0.5)
    start_date: str = "2024-01-01"


class FileSource(CsvReading):
    """A CSV file read with the options below, or Parquet: one file, a directory of partitions
    (`year=2024/...` folders become columns) or a glob such as `data/part-*.parquet`."""

    kind: Literal["csv", "parquet"]
    path: Path = Field(description="The file (parquet: also a directory or a glob of files); a relative path is "
                                   "read from the directory run.py is started in")

    @model_validator(mode="after")
    def _csv_options_for_csv_only(self) -> "FileSource":
        given = list(self.given_options()) if self.kind == "parquet" else []
        if given:
            raise ValueError(f"{', '.join(f'`{key}`' for key in given)}: reading options of CSV files; a parquet "
                             "file carries its own column names, types and missing values (remove them, or "
                             "use kind: csv)")
        return self


class SqlSource(StrictModel):
    """The rows an SQL query returns, through SQLAlchemy (the database's driver must be installed)."""

    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///applications.db")
    query: str = Field(description="Returns one row per example, with the spec's columns")


DataSource = Annotated[Union[FileSource, SqlSource, GeneratorSource], Field(discriminator="kind")]


def _column_name(name: Optional[str], what: str) -> Optional[str]:
    if name is not None and not name.strip():
        raise ValueError(f"the {what} is empty: give the name of a column of the data")
    return name


class NumericFeature(StrictModel):
    type: Literal["numeric", "integer"] = Field(description="`integer`: whole numbers only (checked)")
    min: Optional[float] = Field(None, description="Smallest valid value (checked at validation; none: no bound)")
    max: Optional[float] = Field(None, description="Largest valid value (checked at validation; none: no bound)")
    nullable: bool = Field(False, description="Missing values are allowed (imputed by the feature pipeline)")

    @model_validator(mode="after")
    def _ordered(self) -> "NumericFeature":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class CategoricalFeature(StrictModel):
    type: Literal["categorical"]
    categories: List[str] = Field(
        min_length=1, description="Every valid value, as text exactly as in the data (spaces count); other values "
                                  "fail validation")
    nullable: bool = Field(False, description="Missing values are allowed")

    @field_validator("categories")
    @classmethod
    def _unique(cls, categories: List[str]) -> List[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("categories must be unique")
        if "" in categories:
            raise ValueError("an empty category: an empty cell is read as a missing value (declare "
                             "`nullable: true` instead)")
        return categories


FeatureSpec = Annotated[Union[NumericFeature, CategoricalFeature], Field(discriminator="type")]


class SensitiveAttribute(StrictModel):
    """A protected attribute, grouped by its categories or, for a number, by bins."""

    categories: Optional[List[str]] = None
    bins: Optional[List[float]] = None
    use_as_feature: bool = False

    @model_validator(mode="after")
    def _grouping(self) -> "SensitiveAttribute":
        if (self.categories is None) == (self.bins is None):
            raise ValueError("give exactly one of `categories` or `bins`")
        if self.bins is not None and (len(self.bins) < 2 or sorted(self.bins) != self.bins):
            raise ValueError("`bins` must be at least two increasing edges")
        return self


class TargetSpec(StrictModel):
    column: str
    positive: Union[int, str] = 1
    negative: Union[int, str] = 0
    positive_label: str = Field("positive", description="What the positive class means")
    favourable: Optional[Literal["negative", "positive"]] = Field(
        None, description="Which prediction benefits the person, and so whose rates fairness compares: "
                          "`negative` when predicting the positive class harms them (credit: `default` "
                          "declines the loan), `positive` when it helps (hiring: `hired`). No default: "
                          "required as soon as sensitive attributes are declared")

    @model_validator(mode="after")
    def _two_classes(self) -> "TargetSpec":
        # Labels are compared as text and as numbers (a CSV's "1" and "1.0" are the class 1).
        same = str(self.positive) == str(self.negative)
        try:
            same = same or float(self.positive) == float(self.negative)
        except (TypeError, ValueError):
            pass
        if same:
            raise ValueError(f"positive and negative are the same class ({self.positive!r}): give the two "
                             "values the target column holds")
        return self

    def favourable_decision(self) -> str:
        """The favourable decision in words, e.g. "predicting 0 (not 'defaults within 12 months')"."""
        if self.favourable == "positive":
            return f"predicting {self.positive!r} ({self.positive_label!r})"
        return f"predicting {self.negative!r} (not {self.positive_label!r})"

    def favourable_outcome(self) -> str:
        """The actual outcome that matches the favourable decision, e.g. "actual 0"."""
        return f"actual {self.positive if self.favourable == 'positive' else self.negative!r}"


class DataSpec(StrictModel):
    source: DataSource
    target: TargetSpec
    id_column: Optional[str] = None
    time_column: Optional[str] = None
    features: Dict[str, FeatureSpec] = Field(min_length=1)
    sensitive_attributes: Dict[str, SensitiveAttribute] = Field(default_factory=dict)
    min_group_size: int = Field(50, ge=1, description="Smaller groups are flagged as too small to judge")
    min_group_outcomes: int = Field(
        5, ge=1, description="A group is judged only with at least this many of each actual outcome and of "
                             "each decision (fewer make its rates and TPR/FPR noise); the same rule in "
                             "evaluation, mitigation, gates and reports")

    @field_validator("target")
    @classmethod
    def _target_column_named(cls, target: TargetSpec) -> TargetSpec:
        _column_name(target.column, "target column (target.column)")
        return target

    @field_validator("id_column", "time_column")
    @classmethod
    def _columns_named(cls, name: Optional[str], info) -> Optional[str]:
        return _column_name(name, f"{info.field_name} name")

    @field_validator("features", "sensitive_attributes")
    @classmethod
    def _keys_named(cls, columns: dict, info) -> dict:
        if any(not name.strip() for name in columns):
            raise ValueError(f"a column name in {info.field_name} is empty: give the name of a column of the data")
        return columns

    @model_validator(mode="after")
    def _consistent_columns(self) -> "DataSpec":
        if self.sensitive_attributes and self.target.favourable is None:
            raise ValueError(
                "target.favourable is required when sensitive attributes are declared: say which prediction "
                "benefits the person, `negative` or `positive`. Fairness compares the rates of that "
                f"decision between groups. Here the positive class {self.target.positive!r} means "
                f"{self.target.positive_label!r}: if predicting it harms the person (credit: a predicted "
                "default declines the loan) write `favourable: negative`; if it helps (hiring: predicted "
                "`hired`) write `favourable: positive`")
        reserved = {self.target.column, self.id_column, self.time_column} - {None}
        clash = reserved & set(self.features)
        if clash:
            raise ValueError(f"{sorted(clash)} is both a feature and the target/id/time column")
        for name, attribute in self.sensitive_attributes.items():
            if attribute.use_as_feature and name not in self.features:
                raise ValueError(
                    f"sensitive attribute `{name}` has use_as_feature: true but is not in features"
                )
            if attribute.bins is not None and not isinstance(
                self.features.get(name), NumericFeature
            ):
                raise ValueError(f"sensitive attribute `{name}` has bins but is not a numeric feature")
        return self

    @property
    def model_features(self) -> List[str]:
        """Features the model sees: sensitive attributes stay out unless explicitly allowed."""
        excluded = {n for n, a in self.sensitive_attributes.items() if not a.use_as_feature}
        return [name for name in self.features if name not in excluded]


# --- split ---------------------------------------------------------------------------------------


class SplitSpec(StrictModel):
    strategy: Literal["random", "time"] = "random"
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    stratify: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> "SplitSpec":
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation_fraction + test_fraction must leave at least 10% to train on")
        return self


# --- training ------------------------------------------------------------------------------------


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


# --- evaluation ----------------------------------------------------------------------------------

GATE_METRICS = (
    # performance (test split, at the decision threshold)
    "roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier",
    # fairness (worst over sensitive attributes and their intersection)
    "demographic_parity_ratio", "demographic_parity_difference", "equalized_odds_difference",
    # calibration
    "expected_calibration_error",
    # robustness (worst drop of the primary metric under a perturbation)
    "robustness_max_drop",
    # latency and size
    "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "batch_rows_per_second", "model_size_mb",
    # p95 latency over the champion's, measured interleaved in the same process (no champion: not applicable)
    "p95_latency_ratio",
    # business impact
    "expected_value_per_application", "value_uplift_vs_baseline",
)


class ThresholdRule(StrictModel):
    """How the decision threshold is chosen on validation data."""

    rule: Literal["max_f1", "target_recall", "min_expected_cost", "fixed"] = "max_f1"
    target_recall: Optional[float] = Field(None, gt=0.0, le=1.0)
    value: Optional[float] = Field(None, ge=0.0, le=1.0, description="for rule: fixed")

    @model_validator(mode="after")
    def _parameters(self) -> "ThresholdRule":
        if self.rule == "target_recall" and self.target_recall is None:
            raise ValueError("rule target_recall needs `target_recall`")
        if self.rule == "fixed" and self.value is None:
            raise ValueError("rule fixed needs `value`")
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
    interval_confidence: float = Field(0.95, gt=0.5, lt=1.0, description="of the percentiles' intervals")


class ComparisonSpec(StrictModel):
    """Champion/challenger on the same test rows: a paired bootstrap of the primary-metric difference."""

    mode: Literal["superiority", "non_inferiority"] = "non_inferiority"
    margin: float = Field(0.01, ge=0.0, le=1.0)
    bootstrap_samples: int = Field(1000, ge=100, le=100_000)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0


VALUE_METRICS = ("expected_value_per_application", "value_uplift_vs_baseline")
FAIRNESS_METRICS = ("demographic_parity_ratio", "demographic_parity_difference", "equalized_odds_difference")


class Gate(StrictModel):
    metric: Literal[GATE_METRICS]  # type: ignore[valid-type]
    min: Optional[float] = None
    max: Optional[float] = None
    attribute: Optional[str] = Field(
        None, description="fairness gates only: one sensitive attribute (or `a x b` for an intersection); "
                          "default: the worst over the declared attributes")

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
    mitigation: MitigationSpec = MitigationSpec()

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


# --- deployment ----------------------------------------------------------------------------------


class HealthSpec(StrictModel):
    """Checked between rollout steps on the live prediction log: challenger against champion."""

    max_error_rate: float = Field(0.01, ge=0.0, le=1.0)
    max_p95_latency_ms: float = Field(200.0, gt=0.0)
    max_p95_latency_ratio: float = Field(3.0, gt=0.0, description="challenger p95 / champion p95")
    max_score_psi: float = Field(0.25, gt=0.0, description="population stability index of the scores")
    min_requests: int = Field(30, ge=1, description="challenger requests per step, before judging")
    min_scores_for_psi: int = Field(100, ge=10, description="fewer scores per arm: the PSI is reported, not judged")


class ApprovalSpec(StrictModel):
    required: bool = True
    auto_approve: bool = False


class DeploymentSpec(StrictModel):
    strategy: Literal["all-at-once", "blue-green", "canary", "ab", "shadow"] = "canary"
    canary_steps: List[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0])
    ab_split: float = Field(0.5, gt=0.0, lt=1.0)
    hold_seconds: float = Field(5.0, ge=0.0, le=86_400)
    probe_requests: int = Field(200, ge=0, le=100_000,
                                description="replayed test rows keel sends per step, so every step has evidence")
    health: HealthSpec = HealthSpec()
    approval: ApprovalSpec = ApprovalSpec()
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    folder: str = Field(".keel/deployments", description="where deployment bundles and the prediction log live")
    prediction_log_url: Optional[str] = Field(None, description="SQLAlchemy URL; default: SQLite in the folder")
    api_key_env: Optional[str] = Field(None, description="name of the environment variable holding the API key")
    api_key_protects_docs_and_metrics: bool = Field(
        True, description="with an API key, /metrics, the index page and the API documents (/docs.json, "
                          "/openapi.json, /schema.json) want it too; false exposes them (probes stay open)")
    salt: str = "keel"
    controller_timeout_seconds: float = Field(
        30.0, gt=0.0, le=86_400, description="a rollout whose controller (deploy, rollback) has not reported for this "
                                             "long is abandoned: the service routes everything to the champion")
    fast_path: bool = Field(True, description="score few rows with NumPy from the fitted pipeline's statistics, "
                                              "used only where it reproduces the pipeline's scores exactly")

    @field_validator("canary_steps")
    @classmethod
    def _increasing(cls, steps: List[float]) -> List[float]:
        if not steps or any(not 0 < s <= 1 for s in steps) or sorted(steps) != steps or steps[-1] != 1.0:
            raise ValueError("canary_steps must increase within (0, 1] and end at 1.0")
        return steps

    @field_validator("prediction_log_url")
    @classmethod
    def _sqlalchemy_url(cls, url: Optional[str]) -> Optional[str]:
        """The form of the URL only (dialect://...): whether the database and its driver are there is
        known only when the log is opened."""
        if url is None:
            return url
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError("not a SQLAlchemy database URL; give e.g. sqlite:////path/to/predictions.db or "
                             "postgresql://user@host/db") from None
        return url


# --- the whole spec ------------------------------------------------------------------------------


class Spec(StrictModel):
    """A keel problem spec: one section per lifecycle phase."""

    problem: ProblemSpec
    data: DataSpec
    split: SplitSpec = SplitSpec()
    training: TrainingSpec = TrainingSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    deployment: DeploymentSpec = DeploymentSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    governance: GovernanceSpec = GovernanceSpec()

    @model_validator(mode="after")
    def _time_split_needs_time_column(self) -> "Spec":
        if self.split.strategy == "time" and self.data.time_column is None:
            raise ValueError("split.strategy `time` needs data.time_column")
        if self.monitoring.simulation is not None and not isinstance(self.data.source, GeneratorSource):
            raise ValueError("monitoring.simulation draws traffic from keel's generator: it needs "
                             "data.source.kind generator (drop it for a spec of your own data)")
        attributes = list(self.data.sensitive_attributes)
        known = set(attributes) | ({" x ".join(attributes)} if len(attributes) > 1 else set())
        attribute = self.evaluation.mitigation.attribute
        if self.evaluation.mitigation.method != "none" and not attributes:
            raise ValueError("evaluation.mitigation needs data.sensitive_attributes")
        if attribute is not None and attribute not in self.data.sensitive_attributes:
            raise ValueError(f"evaluation.mitigation.attribute `{attribute}` is not a sensitive attribute")
        for gate in self.evaluation.gates:
            if gate.metric in FAIRNESS_METRICS and not attributes:
                raise ValueError(f"gate {gate.describe()}: a fairness gate needs data.sensitive_attributes")
            if gate.attribute is not None and gate.attribute not in known:
                raise ValueError(f"gate {gate.describe()}: attribute `{gate.attribute}` is not one of {sorted(known)}")
        return self

"""The `monitoring` section: profiling windows, drift thresholds, labels, the alerter and the
continuous-training policy. Every number the monitor judges by is here, none in code."""

from __future__ import annotations

import typing
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, Field, field_validator, model_validator

from keel.spec.base import StrictModel, alternatives
from keel.spec.data import SHIFTABLE
from keel.spec.problem import Metric
from keel.spec.production_fairness import ProductionFairnessSpec
from keel.spec.reading import CsvReading

# The entity ids of the rollout's probe requests start with this; monitoring leaves them out by default.
PROBE_ENTITY_PREFIX = "probe-"


class FeatureDriftSpec(StrictModel):
    """Data drift per feature, from the profiles: KS test on numbers (whylogs' KLL sketches), a
    two-sample chi-square on categories' counts (whylogs' frequent items: exact up to ~750 distinct
    values; rare categories pooled). A feature drifts when the test rejects at
    `p_value` (Bonferroni-corrected over the features tested) AND the effect is at least the
    minimum: with large windows every tiny difference is significant, so the effect size decides."""

    p_value: float = Field(0.01, gt=0.0, lt=1.0, description="family-wise, over all features tested")
    min_ks_statistic: float = Field(0.1, gt=0.0, le=1.0, description="numeric: largest CDF distance")
    min_category_distance: float = Field(0.1, gt=0.0, le=1.0,
                                         description="categorical: total variation distance of the frequencies")


class PredictionDriftSpec(StrictModel):
    """Drift of the served scores (KS against the model's test predictions) and of the decision rate."""

    p_value: float = Field(0.01, gt=0.0, lt=1.0)
    min_ks_statistic: float = Field(0.1, gt=0.0, le=1.0)
    max_decision_rate_change: float = Field(0.1, gt=0.0, le=1.0, description="absolute change of P(decision=1)")


class LabelDriftSpec(StrictModel):
    """Drift of the observed positive rate (delayed labels) against the training data's: the z-test
    rejects at `p_value` AND either declared bound is exceeded. An absolute bound at or above the base
    rate cannot see the rate fall (a 1.5 % fraud rate cannot fall by 0.05): declare `max_rate_ratio`."""

    p_value: float = Field(0.01, gt=0.0, lt=1.0, description="two-proportion z-test")
    max_rate_change: Optional[float] = Field(0.05, gt=0.0, le=1.0,
                                             description="absolute change of the positive rate (null: none)")
    max_rate_ratio: Optional[float] = Field(
        None, gt=1.0, description="relative bound: drift when the production rate / the training rate is outside "
                                  "[1/r, r] (e.g. 2: halved or doubled); for rare positives, where an absolute "
                                  "change cannot judge. None by default")

    @model_validator(mode="after")
    def _some_bound(self) -> "LabelDriftSpec":
        if self.max_rate_change is None and self.max_rate_ratio is None:
            raise ValueError("give max_rate_change (absolute) or max_rate_ratio (relative): without a bound "
                             "label drift is never judged")
        return self


class PerformanceDriftSpec(StrictModel):
    """The model's metric on labelled production rows against its own test metric."""

    metric: Metric = Field("roc_auc", description="in a spec: training.primary_metric unless declared")
    max_drop: float = Field(0.05, gt=0.0, le=1.0, description="how far the metric may fall below the test value")


class DriftSpec(StrictModel):
    features: FeatureDriftSpec = FeatureDriftSpec()
    prediction: PredictionDriftSpec = PredictionDriftSpec()
    label: LabelDriftSpec = LabelDriftSpec()
    performance: PerformanceDriftSpec = PerformanceDriftSpec()
    min_window_rows: int = Field(200, ge=1, description="fewer predictions in the window: reported, not judged")
    min_labelled_rows: int = Field(300, ge=10, description="fewer labelled rows: label and performance drift not judged")


class CsvLabels(CsvReading):
    """A labels file, read with the same options as a data file. Every cell is read as text (ids keep their
    leading zeros); only empty cells and `na_values` are missing (an id `NA` stays an id)."""

    kind: Literal["csv"]


class SqlLabels(StrictModel):
    kind: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL")
    query: str = Field(description="returns the id, label and time columns")


LabelSource = Annotated[Union[CsvLabels, SqlLabels], Field(discriminator="kind")]


class LabelsSpec(StrictModel):
    """Delayed outcomes: one row per entity (the prediction's entity id), its label and when it was known."""

    source: Optional[LabelSource] = Field(None, description="none: label and performance drift are not judged")
    id_column: str = "entity_id"
    label_column: str = "label"
    time_column: str = "time"
    time_format: Optional[str] = Field(
        None, min_length=2,
        description="how time_column's text spells a time, as strftime codes (e.g. '%d/%m/%Y %H:%M'). Without it "
                    "the text must be ISO 8601: 03/12/2026 is 3 December or 12 March, and keel does not guess "
                    "which; a time that does not read is counted as unreadable, its label unused. A day without a "
                    "time of day counts as known by the end of that day (UTC)")
    lookback_days: Optional[float] = Field(
        None, gt=0.0, description="labels are joined to the predictions made up to this many days before the "
                                  "judged window (labels arrive late); none: the whole prediction log")
    strip_suffix: Optional[str] = Field(
        None, min_length=1,
        description="removed from the end of every label value before it is compared with the target's classes, "
                    "e.g. \".\" for the UCI adult test file's `>50K.`; label values are always compared without "
                    "surrounding spaces")
    label_map: Dict[str, str] = Field(
        default_factory=dict,
        description="label values replaced by a class of data.target before comparison, after `strip_suffix`, "
                    "e.g. {\"yes\": \"1\", \"no\": \"0\"}; values not listed are compared as they are")

    @field_validator("id_column", "label_column", "time_column")
    @classmethod
    def _named(cls, name: str, info) -> str:
        if not name.strip():
            raise ValueError(f"the {info.field_name} name is empty: give the name of a column of the labels")
        return name

    @field_validator("label_map", mode="before")
    @classmethod
    def _as_text(cls, mapping: Any) -> Any:
        """YAML reads `1: 0` as numbers: labels are text, so numbers are taken as their text. `yes`/`no`
        unquoted are booleans in YAML and are refused rather than guessed."""
        if not isinstance(mapping, dict):
            return mapping
        if any(isinstance(item, bool) for pair in mapping.items() for item in pair):
            raise ValueError("a key or value is true/false: quote label text such as \"yes\", \"no\", \"true\" "
                             "(YAML reads them unquoted as booleans)")
        return {str(key) if isinstance(key, (int, float)) else key: str(value) if isinstance(value, (int, float))
                else value for key, value in mapping.items()}


class AlerterSpec(StrictModel):
    """Where alerts go: the log (default; nothing leaves the machine) or an HTTP webhook (JSON POST)."""

    kind: Literal["log", "webhook"] = "log"
    url: Optional[str] = None
    timeout_seconds: float = Field(5.0, gt=0.0, le=120.0)
    repeat_after_hours: float = Field(24.0, ge=0.0, description="an alert that says what the last delivered one "
                                      "said (the same drift, triggers, decision and fairness verdict of the same "
                                      "version) is sent again only after this long; 0 sends every one")

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> "AlerterSpec":
        if self.kind == "webhook" and not self.url:
            raise ValueError("kind webhook needs `url`")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://; found {self.url!r}")
        if self.url and _link_local(self.url):
            raise ValueError(f"url {self.url!r} is a link-local address (169.254.0.0/16, fe80::/10), where cloud "
                             "machines answer with their credentials (instance metadata); alerts never go there")
        return self


def _link_local(url: str) -> bool:
    """Whether the URL's host is a link-local IP address (a name is not resolved here)."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
        return ipaddress.ip_address(host).is_link_local
    except ValueError:  # a name, or no valid address
        return False


class PerformanceTrigger(StrictModel):
    """Retrain when production performance falls: by default relative to the monitored version's own
    test value (what is normal differs from one problem to the next); an absolute floor only when declared."""

    metric: Metric = Field("roc_auc", description="in a spec: training.primary_metric unless declared (the same as "
                                                  "drift.performance.metric)")
    max_drop: Optional[float] = Field(
        0.05, gt=0.0, le=1.0, description="retrain when the labelled production metric is worse than the version's "
                                          "own test value by more than this (null: no relative trigger)")
    min: Optional[float] = Field(None, description="an absolute floor: retrain when the metric is worse than this "
                                                   "(below it, or above it for lower-is-better metrics); none by default")

    @model_validator(mode="after")
    def _some_bound(self) -> "PerformanceTrigger":
        if self.max_drop is None and self.min is None:
            raise ValueError("give max_drop (relative to the version's test value) or min (absolute), or set "
                             "retraining.performance to null to switch the trigger off")
        return self


class DriftTrigger(StrictModel):
    min_drifted_features: int = Field(2, ge=1, description="retrain when at least this many features drifted")
    on_prediction_drift: bool = True


class RetrainingSpec(StrictModel):
    """The continuous-training policy: four triggers (any one fires), then cooldown and a maximum
    frequency decide whether the retraining actually runs."""

    enabled: bool = True
    schedule_hours: Optional[float] = Field(None, gt=0.0, description="scheduled: retrain this often (none: off)")
    min_new_labelled_rows: Optional[int] = Field(None, ge=1, description="data volume: new labelled rows since the last retrain")
    performance: Optional[PerformanceTrigger] = PerformanceTrigger()
    drift: Optional[DriftTrigger] = DriftTrigger()
    cooldown_hours: float = Field(24.0, ge=0.0, description="no retraining sooner than this after the last one")
    max_retrains: int = Field(3, ge=1, description="at most this many retrains ...")
    per_hours: float = Field(168.0, gt=0.0, description="... within this many hours")
    data_overrides: List[str] = Field(
        default_factory=list,
        description="`--set` overrides applied to the spec for the retraining run (e.g. a newer data window)")
    check_every_seconds: float = Field(300.0, ge=1.0, description="`monitor --watch` and scheduled runs: how often")

    @field_validator("data_overrides")
    @classmethod
    def _overrides_name_spec_keys(cls, overrides: List[str]) -> List[str]:
        """Checked at load, not when the policy fires (after the decision was recorded). The whole
        spec with the overrides applied is validated by `run.py monitor` before anything runs."""
        from keel.spec.load import SpecError, parse_override

        for text in overrides:
            try:
                path, _ = parse_override(text)
            except SpecError as error:
                raise ValueError(str(error).removeprefix("--set ")) from None
            unknown = unknown_spec_key(path)
            if unknown:
                raise ValueError(f"{text!r}: the spec has no key `{unknown}`")
        return overrides


class ProfilingSpec(StrictModel):
    """A large pass is split into time ranges of the log that worker processes read and profile;
    `chunk_rows` rows are read at a time."""

    workers: int = Field(2, ge=1, le=64)
    chunk_rows: int = Field(250_000, ge=1000)
    parallel_from_rows: int = Field(200_000, ge=1000, description="fewer rows: profiled in this process")


class SimulationSpec(StrictModel):
    """The main job's simulated production traffic (generator sources only): applications drawn with
    the generator's drift knobs, sent through the real HTTP service, their labels delivered afterwards."""

    rows: int = Field(4000, ge=100, le=1_000_000)
    seed: int = 7
    covariate_shift: float = Field(1.5, ge=0.0, le=10.0)
    shifted_features: List[str] = Field(min_length=1, description="the generator's features the traffic shifts")
    concept_shift: float = Field(0.3, ge=0.0, le=1.0)
    batch_size: int = Field(100, ge=1, le=10_000)

    @field_validator("shifted_features")
    @classmethod
    def _shiftable(cls, names: List[str]) -> List[str]:
        unknown = [name for name in names if name not in SHIFTABLE]
        if unknown:
            raise ValueError(f"the generator cannot shift {unknown}; shiftable features: {list(SHIFTABLE)}")
        return names


class MonitoringSpec(StrictModel):
    """How production is watched and when the model is retrained."""

    window: Literal["hour", "day", "week"] = Field(
        "day", description="the window judged: the UTC hour/day/week of the newest prediction; "
                           "hours are profiled once and merged into days and weeks")
    exclude_entity_prefixes: List[str] = Field(
        default_factory=lambda: [PROBE_ENTITY_PREFIX], description="rollout probe traffic is not production traffic")
    drift: DriftSpec = DriftSpec()
    labels: LabelsSpec = LabelsSpec()
    alerter: AlerterSpec = AlerterSpec()
    retraining: RetrainingSpec = RetrainingSpec()
    profiling: ProfilingSpec = ProfilingSpec()
    fairness: ProductionFairnessSpec = ProductionFairnessSpec()
    simulation: Optional[SimulationSpec] = Field(
        None, description="the main job's simulated production traffic; generator sources only")

    @model_validator(mode="after")
    def _one_performance_metric(self) -> "MonitoringSpec":
        trigger = self.retraining.performance
        if trigger is not None and trigger.metric != self.drift.performance.metric:
            raise ValueError(f"retraining.performance.metric ({trigger.metric}) must be the metric the monitor "
                             f"measures, drift.performance.metric ({self.drift.performance.metric})")
        return self


def unknown_spec_key(path: List[str]) -> Optional[str]:
    """The first part of a dotted override path (`a.b[2].c`) that no spec section declares, or None.
    Sections that are unions (data.source) accept a key any of their kinds declares; mappings
    (data.features) accept any name; the value's type is checked when the whole spec is validated."""
    import re

    from keel.spec.models import Spec

    steps: List[Any] = []
    for part in path:
        match = re.match(r"^(.+)\[([^\[\]]+)\]$", part)  # a position, or a gate named by its metric
        steps += [match.group(1), 0] if match else [part]
    candidates: List[Any] = [Spec]
    for depth, step in enumerate(steps):
        following: List[Any] = []
        for annotation in candidates:
            for kind in alternatives(annotation):
                origin = typing.get_origin(kind)
                if isinstance(step, int):
                    if origin in (list, tuple) and typing.get_args(kind):
                        following.append(typing.get_args(kind)[0])
                elif isinstance(kind, type) and issubclass(kind, BaseModel):
                    if step in kind.model_fields:
                        following.append(kind.model_fields[step].annotation)
                elif origin is dict:
                    following.append(typing.get_args(kind)[1] if typing.get_args(kind) else Any)
                elif kind is Any:
                    following.append(Any)
        if not following:
            return ".".join(str(s) for s in steps[:depth + 1])
        candidates = following
    return None

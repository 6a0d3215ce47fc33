"""The records monitoring stores as JSON, as TypedDicts: the drift status (the drift_status
artifact, `status.json`), its parts and the label report, and the policy's retraining decision (the
retraining_decision artifact, a line of `decisions.jsonl`, run metadata). No heavy imports: the CLI
and the lifecycle import these types.

A window too small to judge carries only the keys marked required. (No `from __future__ import
annotations` here: under it Python 3.11's TypedDict counts `NotRequired` keys as required.)
"""

from typing import Dict, List, NotRequired, Optional, TypedDict


class LabelReport(TypedDict):
    """What `join_labels` counted (the label_report artifact, part of the drift status)."""

    labels: int
    matched: int
    unknown_ids: int
    unknown_examples: list
    before_prediction: int
    duplicates: int
    conflicting: int             # predictions whose later labels name another class than the one used
    unreadable_times: int
    future_times: int            # dated after the monitor ran: not used
    missing_ids: int
    missing_labels: int
    unknown_label_values: int
    unknown_value_examples: List[str]
    other_versions: int
    known_before_window: int
    new_labelled_rows: int
    source_not_found: NotRequired[str]  # the labels file does not exist (yet): nothing was joined


class FeatureDrift(TypedDict):
    """Data drift. `features`: each feature's comparison (as `keel.monitoring.profiles.compare_columns`
    returns it) with `alpha`, `min_effect` and `drifted` added."""

    drifted: List[str]
    tested: int
    alpha: Optional[float]
    features: Dict[str, dict]
    problems: Dict[str, str]
    unseen_categories: Dict[str, List[str]]


class PredictionDrift(TypedDict):
    drifted: bool
    score_drifted: NotRequired[bool]
    score_test: NotRequired[Optional[str]]
    score_p_value: NotRequired[Optional[float]]
    score_ks: NotRequired[Optional[float]]
    decision_rate: NotRequired[Optional[float]]
    reference_decision_rate: NotRequired[Optional[float]]
    decision_rate_change: NotRequired[Optional[float]]
    decision_rate_drifted: NotRequired[bool]
    problem: NotRequired[Optional[str]]


class LabelDrift(TypedDict):
    """Label drift; `reason` says why it was not judged."""

    drifted: bool
    judged: bool
    rows: NotRequired[int]
    rate: NotRequired[Optional[float]]
    reference_rate: NotRequired[Optional[float]]
    change: NotRequired[Optional[float]]
    ratio: NotRequired[Optional[float]]  # rate / reference_rate, what max_rate_ratio bounds
    p_value: NotRequired[Optional[float]]
    reason: NotRequired[str]


class PerformanceDrift(TypedDict):
    """Performance drift of `metric`; `drop` is positive when it got worse; `reason` says why it was
    not judged."""

    drifted: bool
    judged: bool
    metric: str
    rows: NotRequired[int]
    value: NotRequired[Optional[float]]
    reference: NotRequired[Optional[float]]
    drop: NotRequired[Optional[float]]
    max_drop: NotRequired[float]
    reason: NotRequired[str]
    interval: NotRequired[List[float]]  # the metric's bootstrap interval on the labelled rows (judged only)
    uncertain: NotRequired[bool]        # that interval crosses max_drop, or there is none: it could go either way
    interval_note: NotRequired[str]     # why there is no interval


class Verdict(TypedDict):
    """What happened: the kinds of drift ("data", "prediction", "label", "performance", "concept")."""

    kinds: List[str]
    alarm: bool
    concept_drift: bool
    summary: str


class DriftAssessment(TypedDict):
    """The four kinds of drift for one window (`assess`); `reason` says why it was not judged."""

    judged: bool
    reason: Optional[str]
    features: FeatureDrift
    prediction: PredictionDrift
    label: LabelDrift
    performance: PerformanceDrift
    verdict: Verdict


class WindowFacts(TypedDict):
    """The judged window (`keel.monitoring.monitor.update_window`): `start`/`end` ISO times, None when
    nothing was served yet; `added`: rows newly profiled per hour; `traffic`: which traffic it judges,
    with the rows of each kind in it."""

    window: str
    start: Optional[str]
    end: Optional[str]
    rows: int
    new_rows: int
    model_version: int
    added: dict
    traffic: NotRequired[str]  # online, batch or both: what the window holds (absent: online, before batches)
    online_rows: NotRequired[int]
    batch_rows: NotRequired[int]


class DriftStatus(DriftAssessment):
    """The drift_status artifact (`keel.monitoring.monitor.assess_window`): the assessment with the
    model, its window and the label report. `status.json` adds the policy's `decision`; the monitoring
    run adds the folder of those files, `decision_folder`."""

    model: str
    model_version: int
    window: WindowFacts
    labels: LabelReport
    decision: NotRequired[dict]
    decision_folder: NotRequired[str]
    production: NotRequired[dict]  # monitor.production_report: fairness, label coverage, referrals


class Trigger(TypedDict):
    """One trigger of the policy ("scheduled", "data_volume", "performance", "drift", "fairness") and the
    evidence it was judged on (its own keys per trigger)."""

    trigger: str
    enabled: bool
    fired: bool
    evidence: dict


class RetrainingDecision(TypedDict):
    """The policy's decision (the retraining_decision artifact, a `kind: decision` line of the
    decisions file, the run's metadata). `fired`: the triggers that fired; `retrain` whether to act
    on them, `suppressed_by` why not. `decide_and_record` adds the window and the decisions file."""

    kind: str
    time: str
    model_version: Optional[int]
    retrain: bool
    fired: List[str]
    suppressed_by: Optional[str]
    triggers: List[Trigger]
    last_retrain: Optional[str]
    drift_summary: Optional[str]
    window: NotRequired[WindowFacts]
    decisions_file: NotRequired[str]
    label_coverage: NotRequired[dict]  # production_fairness.label_coverage of the window, when labels are read

"""One monitoring pass over the prediction log, as plain functions the monitoring steps (and the
benchmark) call: bring the window store up to date, join the delayed labels, judge the window."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from keel.clock import as_utc, utc_now
from keel.files import write_atomically
from keel.monitoring.drift import assess
from keel.monitoring.labels import LabelsNotFound, join_labels, no_labels, read_labels
from keel.monitoring.profiles import Profile, column_summary, compare_columns, merge_profiles
from keel.monitoring.records import DriftStatus, LabelReport, RetrainingDecision, WindowFacts
from keel.monitoring.windows import WINDOWS, WindowStore, read_predictions, window_start
from keel.spec.models import Spec

STATUS_FILE = "status.json"


def monitoring_folder(spec: Spec) -> Path:
    from keel.deployment.deploy import deployment_folder

    return deployment_folder(spec) / "monitoring"


def window_store(spec: Spec) -> WindowStore:
    profiling = spec.monitoring.profiling
    return WindowStore(monitoring_folder(spec), profiling.workers, profiling.chunk_rows, profiling.parallel_from_rows)


def update_window(spec: Spec, version: int, log_url: Optional[str] = None,
                  traffic: str = "both", engine: Optional[dict] = None) -> Tuple[Profile, WindowFacts]:
    """Profile the predictions served since the last pass (hours, per version), then the judged
    window: the spec's hour/day/week containing the newest prediction of the judged `traffic`
    (online: the prediction log; batch: the rows `run.py score` scored; both). Returns its profile
    and facts. `engine`: the stack's (keel.engine.selection.engine_parameter; None or {} is local):
    on dask, the log's time ranges are profiled on the workers (keel.engine.dask_monitoring)."""
    from keel.deployment.deploy import prediction_log_url
    from keel.monitoring.batch_traffic import (batch_window_profiles, includes, mark_counted, new_batch_rows,
                                               newest_batch_time)

    store = window_store(spec)
    folder = monitoring_folder(spec)
    online, batch = includes(traffic, "online"), includes(traffic, "batch")
    added: dict = {}
    if online:
        features = spec.data.model_features
        url, excluded = log_url or prediction_log_url(spec), spec.monitoring.exclude_entity_prefixes
        added = store.add_from_log(url, features, excluded, batch_rows=spec.monitoring.profiling.chunk_rows,
                                   engine_pool=_engine_pool(engine))
    new_batch, batch_ids = new_batch_rows(folder) if batch else (0, [])
    newest = max([t for t in (store.watermark() if online else None, newest_batch_time(folder) if batch else None)
                  if t is not None], default=None)
    window = spec.monitoring.window
    facts = {"window": window, "model_version": version, "added": added, "traffic": traffic,
             "new_rows": int(sum(added.values())) + new_batch}
    if newest is None:
        return store.window_profile(version, "hour", datetime(1970, 1, 1)), {
            **facts, "start": None, "end": None, "rows": 0, "online_rows": 0, "batch_rows": 0}
    start = window_start(newest, window)
    end = start + WINDOWS[window]
    parts = [store.window_profile(version, window, start)] if online else []
    batch_parts = batch_window_profiles(folder, version, start, end) if batch else []
    profile = merge_profiles(parts + batch_parts)
    profile.view.set_dataset_timestamp(start)
    if batch:
        mark_counted(folder, batch_ids)
    online_rows = parts[0].rows() if parts else 0
    return profile, {**facts, "start": start.isoformat(), "end": end.isoformat(), "rows": profile.rows(),
                     "online_rows": online_rows, "batch_rows": sum(p.rows() for p in batch_parts)}


def _engine_pool(engine: Optional[dict]):
    if not engine:
        return None  # the local engine: keel's own worker processes (monitoring.profiling)
    from keel.engine.dask_monitoring import engine_pool
    from keel.engine.spec import engine_from_dict

    return engine_pool(engine_from_dict(engine))


def labelled_window(spec: Spec, window: WindowFacts, new_since: Optional[datetime],
                    log_url: Optional[str] = None) -> Tuple[pd.DataFrame, LabelReport]:
    """The monitored version's labelled predictions whose labels became known in the judged window.

    Labels arrive late: a label known today may be for a prediction made days ago, in an earlier
    window. So the labels are joined to the whole prediction log (or to the predictions made within
    `monitoring.labels.lookback_days` before the window), and only ids absent from it are unknown;
    the window then selects the labelled rows by when their label became known. Batch rows (when the
    window judges batch traffic) are joined by id as served predictions are."""
    from keel.deployment.deploy import prediction_log_url
    from keel.monitoring.batch_traffic import includes, read_batch_predictions

    labels_spec = spec.monitoring.labels
    try:
        labels, not_found = read_labels(labels_spec, spec.data.target.positive, spec.data.target.negative), None
    except LabelsNotFound as error:  # before the first outcome is exported: data drift is still judged
        labels, not_found = no_labels(), str(error)
    start = None if window["start"] is None else datetime.fromisoformat(window["start"])
    since = (start - timedelta(days=labels_spec.lookback_days)
             if start is not None and labels_spec.lookback_days is not None else None)
    traffic = window.get("traffic", "online")  # a window recorded before batch traffic judged the log only
    frames = []
    if includes(traffic, "online"):
        frames.append(read_predictions(log_url or prediction_log_url(spec), since=since, with_inputs=False,
                                       exclude_entity_prefixes=spec.monitoring.exclude_entity_prefixes))
    if includes(traffic, "batch"):
        frames.append(read_batch_predictions(monitoring_folder(spec), since=since))
    predictions = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    joined, report = join_labels(predictions, labels, new_since, model_version=window["model_version"],
                                 known_since=start, now=utc_now())
    if not_found is not None:
        report["source_not_found"] = not_found
    return joined, report


def assess_window(profile: Profile, window: WindowFacts, reference_data: Profile, reference_predictions: Profile,
                  reference: dict, labelled: pd.DataFrame, label_report: LabelReport, spec: Spec) -> DriftStatus:
    """The machine-readable status of one window: the four kinds of drift and their evidence."""
    features = spec.data.model_features
    comparisons = compare_columns(profile, reference_data, features)
    score = compare_columns(profile, reference_predictions, ["score"])["score"]
    decision = column_summary(profile, "decision") if "decision" in profile.columns else {"mean": None}
    status = assess(comparisons, score, decision["mean"], reference,
                    labelled["label"].to_numpy() if len(labelled) else np.array([], dtype=int),
                    labelled["score"].to_numpy() if len(labelled) else np.array([], dtype=float),
                    window["rows"], spec.monitoring.drift, spec.data.min_group_outcomes)
    return {"model": spec.problem.name, "model_version": window["model_version"], "window": window,
            "labels": label_report, **status}


def production_report(spec: Spec, window: WindowFacts, log_url: Optional[str] = None) -> dict:
    """What the window's decisions did to people (keel.monitoring.production_fairness.window_report:
    fairness per group, label coverage per decision, refer and override rates) with a verdict:
    `breach`, `insufficient` (a threshold that could not be judged: too few rows in a group, groups
    not sent or not in the groups file, or a source that cannot be read; never a pass), `pass`,
    `reported` (no threshold declared) or `not watched` (monitoring.fairness.groups_from: none); and the
    requests refused for their content in the window (`refusals_in_window`), whatever is watched."""
    from keel.deployment.deploy import prediction_log_url
    from keel.monitoring.labels import LabelsError
    from keel.monitoring.production_fairness import GroupsError, window_report

    fairness = spec.monitoring.fairness
    judged = fairness.watched and (fairness.min_parity_ratio is not None or fairness.max_tpr_gap is not None)
    log_url = log_url or prediction_log_url(spec)
    refused = refusals_in_window(spec, window, log_url)
    if not fairness.watched and spec.decisions.refer_band is None and spec.monitoring.labels.source is None:
        return {"fairness": None, "label_coverage": None, "reviews": None, "breaches": [], "not_judged": [],
                "verdict": "not watched", "retrain_on_breach": fairness.retrain, **refused}  # the rest is not asked
    try:
        report = window_report(spec, dict(window), log_url)
    except (GroupsError, LabelsError) as error:
        report = {"fairness": None, "label_coverage": None, "reviews": None, "breaches": [], "not_judged": [str(error)]}
    if fairness.watched and report["fairness"] is None and not report["not_judged"]:
        report["not_judged"] = ["no prediction in the window" if window.get("start") is None
                                else "no sensitive attribute declared in data.sensitive_attributes"]
    verdict = ("not watched" if not fairness.watched else "breach" if report["breaches"]
               else "insufficient" if report["not_judged"] and judged else "pass" if judged else "reported")
    return {**report, "verdict": verdict, "retrain_on_breach": fairness.retrain, **refused}


def refusals_in_window(spec: Spec, window: WindowFacts, log_url: str) -> dict:
    """{"refusals": the requests refused for their content in the judged window (keel.monitoring.refusals),
    None when the log keeps none; "refusals_note": why they could not be read, when they could not}."""
    import sqlalchemy as sa

    from keel.monitoring.refusals import refusal_span, window_refusals
    from keel.serving.prediction_log import readable_log

    if not readable_log(log_url):
        return {"refusals": None}
    start, end = refusal_span(dict(window), spec.monitoring.window, utc_now())
    try:
        return {"refusals": window_refusals(log_url, start, end, spec.monitoring.exclude_entity_prefixes)}
    except sa.exc.SQLAlchemyError as error:
        return {"refusals": None, "refusals_note": f"the refused requests could not be read ({type(error).__name__})"}


def write_status(spec: Spec, status: DriftStatus) -> Path:
    path = monitoring_folder(spec) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(status, indent=2, sort_keys=True, default=str))
    return path


def now_utc() -> datetime:
    return utc_now()


def decide_and_record(spec: Spec, status: DriftStatus, label_report: LabelReport, version_created: datetime,
                      model_version: int, now: Optional[datetime] = None) -> RetrainingDecision:
    """Apply the continuous-training policy to a window's status and record the decision with its
    evidence in `monitoring/decisions.jsonl` (and the status in `monitoring/status.json`).

    The policy step records a decision that fires in the audit trail too."""
    from keel.monitoring.policy import append_record, decide, read_history

    folder = monitoring_folder(spec)
    decision = decide(now or now_utc(), status, int(label_report.get("new_labelled_rows", 0)),
                      as_utc(version_created), read_history(folder), spec.monitoring.retraining, model_version,
                      fairness=spec.monitoring.fairness)
    decision["window"] = status.get("window")
    coverage = (status.get("production") or {}).get("label_coverage")
    if coverage is not None:  # a retraining it starts says which outcomes it could learn from
        decision["label_coverage"] = coverage
    decision["decisions_file"] = str(append_record(folder, decision))
    write_status(spec, {**status, "decision": decision})
    return decision

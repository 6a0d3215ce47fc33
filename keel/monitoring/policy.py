"""The continuous-training policy: five triggers (scheduled, data volume, performance, drift, fairness), then
cooldown and maximum frequency. Every decision is a record with its evidence, appended to a JSON
Lines file in the deployment folder (`monitoring/decisions.jsonl`)."""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, List, Mapping, Optional

from keel.monitoring.records import DriftAssessment, PerformanceDrift, RetrainingDecision, Trigger
from keel.spec.metrics import higher_is_better, improvement
from keel.spec.monitoring import PerformanceTrigger, RetrainingSpec
from keel.spec.production_fairness import ProductionFairnessSpec

LOGGER = logging.getLogger("keel.monitoring")

DECISIONS_FILE = "decisions.jsonl"


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def retraining_triggers(decision: Mapping) -> List[str]:
    """The fired triggers that retrain by policy: what caused a retraining. A fairness breach with
    monitoring.fairness.retrain false fires and alerts but causes nothing. A decision without its
    triggers' evidence counts every fired one."""
    if "triggers" not in decision:
        return list(decision["fired"])
    return [t["trigger"] for t in decision["triggers"] if t["fired"] and t["evidence"].get("retrains", True)]


def alerting_triggers(decision: Mapping) -> List[str]:
    """The fired triggers that alert only (they do not retrain by policy)."""
    caused = retraining_triggers(decision)
    return [name for name in decision["fired"] if name not in caused]


def describe_fired(decision: Mapping) -> str:
    """The fired triggers for a person: those that alert only are marked so."""
    alerting = alerting_triggers(decision)
    return ", ".join(f"{name} (alert only, does not retrain)" if name in alerting else name
                     for name in decision["fired"]) or "none"


INTERRUPTED = "interrupted"  # a retraining's outcome when Ctrl+C stopped it (keel.lifecycle.retraining)
SKIPPED = "skipped (--no-retrain)"  # the policy fired but retraining was switched off: nothing started
STARTED = "retraining_started"  # the record a retraining writes first: who runs it (pid, host, process start)


def this_process() -> dict:
    """Who is retraining, so that a later monitor can tell a live retraining from a killed one: the
    pid, the host and the process's start time (a pid alone may be reused by another process)."""
    import os
    import socket

    import psutil

    return {"pid": os.getpid(), "host": socket.gethostname(), "process_started": psutil.Process().create_time()}


def process_alive(who: Mapping) -> bool:
    """Whether the process `who` (as `this_process` recorded it) still runs. Fail closed: a process on
    another host, or a record without its identity, cannot be checked here and counts as running."""
    import socket

    import psutil

    if who.get("host") != socket.gethostname() or not isinstance(who.get("pid"), int):
        return True
    try:
        started = psutil.Process(who["pid"]).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists but cannot be inspected: assume it is the retraining
        return True
    return abs(started - float(who.get("process_started") or 0.0)) < 1.0  # else: the pid was reused


def _outcomes(history: List[dict]) -> dict:
    """{decision time: its retraining record's outcome}."""
    return {r.get("decision_time"): r.get("outcome") for r in history if r.get("kind") == "retraining"}


def died_retrainings(history: List[dict], alive: Callable[[Mapping], bool] = process_alive) -> List[dict]:
    """The started records of retrainings whose process died without recording an outcome (SIGKILL,
    the OOM killer, a power cut): they made no version, like an interrupted one."""
    outcomes = _outcomes(history)
    return [r for r in history if r.get("kind") == STARTED and r.get("decision_time") not in outcomes
            and not alive(r)]


def interrupted_decisions(history: List[dict], alive: Callable[[Mapping], bool] = process_alive) -> set:
    """The times of the decisions whose retraining was interrupted, or whose process died without an outcome."""
    stopped = {r.get("decision_time") for r in history
               if r.get("kind") == "retraining" and r.get("outcome") == INTERRUPTED}
    return stopped | {r.get("decision_time") for r in died_retrainings(history, alive)}


def retrain_decisions(history: List[dict], alive: Callable[[Mapping], bool] = process_alive) -> List[dict]:
    """The decisions to retrain that count for the cooldown: all but those whose retraining was
    interrupted or died. An interrupted attempt made no version and changed nothing, and its evidence
    still stands: counting it would let one Ctrl+C (or a kill) block retraining for the whole cooldown.
    A decision not acted on by choice (--no-retrain) still counts; so does one whose retraining still
    runs, or whose outcome is not known (fail closed)."""
    interrupted = interrupted_decisions(history, alive)
    return [r for r in history if r.get("kind") == "decision" and r.get("retrain") and r["time"] not in interrupted]


def attempt_outcome(decision: Mapping, history: List[dict]) -> str:
    """What a retraining attempt came to, in a few words: its recorded outcome ("not rolled out" without
    the reason), "running" while its process runs, "no outcome recorded" without a record."""
    outcome = _outcomes(history).get(decision["time"])
    if outcome is not None:
        return "not rolled out" if outcome.startswith("not rolled out") else outcome
    started = any(r.get("kind") == STARTED and r.get("decision_time") == decision["time"] for r in history)
    return "running" if started else "no outcome recorded"


def retraining_attempts(history: List[dict], alive: Callable[[Mapping], bool] = process_alive) -> List[dict]:
    """The retrainings that started and cost (rolled out, failed, rejected, running or of unknown outcome):
    what the maximum frequency counts. A decision skipped by --no-retrain started nothing."""
    return [r for r in retrain_decisions(history, alive) if attempt_outcome(r, history) != SKIPPED]


def describe_attempts(attempts: List[dict], history: List[dict]) -> str:
    """"1 rolled out, 1 failed, 1 rejected by evaluation": the attempts counted by outcome, in order of first."""
    counts: dict = {}
    for attempt in attempts:
        outcome = attempt_outcome(attempt, history)
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{count} {outcome}" for outcome, count in counts.items())


def last_retrain(history: List[dict], alive: Callable[[Mapping], bool] = process_alive) -> Optional[datetime]:
    """When the policy last decided to retrain (None: never), an interrupted or dead retraining aside."""
    return max((datetime.fromisoformat(r["time"]) for r in retrain_decisions(history, alive)), default=None)


def last_training(history: List[dict], version_created: datetime,
                  alive: Callable[[Mapping], bool] = process_alive) -> datetime:
    """What the scheduled and data-volume triggers count from: the later of when the monitored version was
    made (a version deployed by hand yesterday is a day old, whatever the policy decided before) and
    the last retraining that started. A decision skipped by --no-retrain trained nothing: it starts the
    cooldown, not the schedule, and the labels it saw are still new."""
    started = [datetime.fromisoformat(r["time"]) for r in retraining_attempts(history, alive)]
    return max([version_created, *started])


def last_interrupted(history: List[dict], alive: Callable[[Mapping], bool] = process_alive) -> Optional[dict]:
    """The latest retraining record when it was interrupted, or the latest started one when its process died
    without recording an outcome (then `interrupted_during` says so); None: the latest was neither."""
    latest = [r for r in history if r.get("kind") in ("retraining", STARTED)]
    if not latest:
        return None
    last = latest[-1]
    if last.get("kind") == "retraining":
        return last if last.get("outcome") == INTERRUPTED else None
    if last in died_retrainings(history, alive):
        return {**last, "outcome": INTERRUPTED,
                "interrupted_during": f"a stage (pid {last.get('pid')} on {last.get('host')} died without "
                                      f"recording an outcome)"}
    return None


def worse_than(value: float, bound: float, metric: str) -> bool:
    """Whether `value` of `metric` is worse than `bound`: below it, or above it for the metrics
    where lower is better (log_loss, brier). NaN is an error: every comparison with it is False, so
    the trigger could never fire and the verdict would read as healthy."""
    if math.isnan(value) or math.isnan(bound):
        raise ValueError(f"cannot judge {metric}: value {value!r} against bound {bound!r} (NaN is no verdict)")
    return improvement(metric, bound, value) < 0


def performance_trigger(performance: PerformanceDrift, rule: Optional[PerformanceTrigger]) -> Trigger:
    """The performance trigger on the monitor's performance result: fired when the metric fell by more
    than `max_drop` below the version's own test value, or is worse than the declared floor `min`."""
    value = performance.get("value") if rule is not None and performance.get("metric") == rule.metric else None
    judged = bool(rule is not None and performance.get("judged") and value is not None)
    drop = performance.get("drop") if judged else None
    dropped = judged and rule.max_drop is not None and drop is not None and drop > rule.max_drop
    below_floor = judged and rule.min is not None and worse_than(value, rule.min, rule.metric)
    return {"trigger": "performance", "enabled": rule is not None, "fired": bool(dropped or below_floor),
            "evidence": {"metric": rule.metric if rule else None, "value": value,
                         "reference": performance.get("reference"), "drop": drop,
                         "max_drop": rule.max_drop if rule else None, "min": rule.min if rule else None,
                         "fires_when": None if rule is None else
                         f"a drop of more than max_drop below the test value, or "
                         f"{'below' if higher_is_better(rule.metric) else 'above'} min",
                         "labelled_rows": performance.get("rows")}}


def fairness_trigger(production: Optional[dict], fairness: Optional[ProductionFairnessSpec]) -> Trigger:
    """The fairness trigger on the window's production report (monitor.production_report): fired on a
    breach of monitoring.fairness's thresholds. Retrains only when monitoring.fairness.retrain says so;
    a threshold that could not be judged does not fire it but is in the evidence (and alerts)."""
    enabled = bool(fairness is not None and fairness.watched
                   and (fairness.min_parity_ratio is not None or fairness.max_tpr_gap is not None))
    production = production or {}
    return {"trigger": "fairness", "enabled": enabled, "fired": bool(enabled and production.get("breaches")),
            "evidence": {"retrains": bool(fairness is not None and fairness.retrain),
                         "verdict": production.get("verdict", "not judged"), "breaches": production.get("breaches", []),
                         "not_judged": production.get("not_judged", []),
                         "min_parity_ratio": fairness.min_parity_ratio if fairness else None,
                         "max_tpr_gap": fairness.max_tpr_gap if fairness else None}}


def evaluate_triggers(now: datetime, status: DriftAssessment, new_labelled_rows: int, since: datetime,
                      policy: RetrainingSpec, fairness: Optional[ProductionFairnessSpec] = None) -> List[Trigger]:
    """Each trigger: fired or not, and the evidence it was judged on. `since`: what the scheduled trigger
    counts from (`last_training`)."""
    triggers: List[Trigger] = []
    elapsed = _hours(now - since)
    triggers.append({"trigger": "scheduled", "enabled": policy.schedule_hours is not None,
                     "fired": policy.schedule_hours is not None and elapsed >= policy.schedule_hours,
                     "evidence": {"hours_since_last_training": round(elapsed, 3), "every_hours": policy.schedule_hours}})
    needed = policy.min_new_labelled_rows
    triggers.append({"trigger": "data_volume", "enabled": needed is not None,
                     "fired": needed is not None and new_labelled_rows >= needed,
                     "evidence": {"new_labelled_rows": new_labelled_rows, "min_new_labelled_rows": needed}})
    triggers.append(performance_trigger(status.get("performance", {}), policy.performance))
    drift = policy.drift
    drifted = status.get("features", {}).get("drifted", [])
    prediction = bool(status.get("prediction", {}).get("drifted"))
    triggers.append({"trigger": "drift", "enabled": drift is not None,
                     "fired": bool(drift is not None and (len(drifted) >= drift.min_drifted_features
                                                          or (drift.on_prediction_drift and prediction))),
                     "evidence": {"drifted_features": drifted, "min_drifted_features": drift.min_drifted_features if drift else None,
                                  "prediction_drift": prediction,
                                  "on_prediction_drift": drift.on_prediction_drift if drift else None}})
    if fairness is not None and fairness.watched:  # a policy without it decides (and is stored) as before
        triggers.append(fairness_trigger(status.get("production"), fairness))  # type: ignore[arg-type]
    return triggers


def decide(now: datetime, status: DriftAssessment, new_labelled_rows: int, since: datetime, history: List[dict],
           policy: RetrainingSpec, model_version: Optional[int] = None,
           fairness: Optional[ProductionFairnessSpec] = None,
           alive: Callable[[Mapping], bool] = process_alive) -> RetrainingDecision:
    """Whether to retrain now, with the evidence: any trigger that retrains fires it (a fairness breach
    only with monitoring.fairness.retrain; otherwise it alerts); the policy being disabled, the
    cooldown or the maximum frequency suppress it. `alive` tells a running retraining from a dead one."""
    previous = last_retrain(history, alive)
    triggers = evaluate_triggers(now, status, new_labelled_rows, last_training(history, since, alive), policy,
                                 fairness)
    fired = [t["trigger"] for t in triggers if t["fired"]]
    if fired and not retraining_triggers({"fired": fired, "triggers": triggers}):
        return _decision(now, model_version, False, fired, "monitoring.fairness.retrain is false: a fairness "
                         "breach alerts, a person decides", triggers, previous, status)
    recent = [r for r in retraining_attempts(history, alive)
              if now - datetime.fromisoformat(r["time"]) < timedelta(hours=policy.per_hours)]
    suppressed_by = None
    if fired:
        if not policy.enabled:
            suppressed_by = "retraining disabled in the spec"
        elif previous is not None and _hours(now - previous) < policy.cooldown_hours:
            suppressed_by = (f"cooldown: the policy last decided to retrain {_hours(now - previous):.2f} h ago "
                             f"(whether or not a retrain ran, unless it was interrupted or its process died), "
                             f"cooldown {policy.cooldown_hours:g} h")
        elif len(recent) >= policy.max_retrains:
            suppressed_by = (f"maximum frequency: {len(recent)} retraining attempts in the last "
                             f"{policy.per_hours:g} h ({describe_attempts(recent, history)}), "
                             f"at most {policy.max_retrains}")
    return _decision(now, model_version, bool(fired) and suppressed_by is None, fired, suppressed_by, triggers,
                     previous, status)


def _decision(now: datetime, model_version: Optional[int], retrain: bool, fired: List[str],
              suppressed_by: Optional[str], triggers: List[Trigger], previous: Optional[datetime],
              status: DriftAssessment) -> RetrainingDecision:
    return {"kind": "decision", "time": now.isoformat(), "model_version": model_version,
            "retrain": retrain, "fired": fired, "suppressed_by": suppressed_by,
            "triggers": triggers, "last_retrain": previous.isoformat() if previous else None,
            "drift_summary": status.get("verdict", {}).get("summary")}


def read_history(folder: Path) -> List[dict]:
    """Every record so far (decisions and retraining outcomes). A line that cannot be read (torn by a
    crash mid-write, edited) is left out with a warning naming it: it may have been a decision the
    cooldown counts from."""
    path = Path(folder) / DECISIONS_FILE
    if not path.exists():
        return []
    records, unreadable = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if line.strip():
                unreadable.append(number)
    if unreadable:
        LOGGER.warning("keel: %s: line(s) %s cannot be read and are left out of the retraining history (the "
                       "cooldown and maximum frequency count only the records read)", path,
                       ", ".join(map(str, unreadable)))
    return records


def append_record(folder: Path, record: Mapping[str, object]) -> Path:
    """Append one record (a decision, or what a retraining produced) as a JSON line, on a line of its own
    even after a torn last line (which would otherwise swallow it)."""
    path = Path(folder) / DECISIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        torn = False
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
        handle.write((b"\n" if torn else b"") + json.dumps(record, sort_keys=True, default=str).encode() + b"\n")
    return path

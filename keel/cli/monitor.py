"""`run.py monitor` and the main job: print what keel.lifecycle's monitoring run, retraining, schedule and
main job return (and tell as they go). `--watch` repeats; `--schedule` hands the schedule to an
orchestrator that can keep one (the local one cannot: use cron, see README)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from keel.cli.console import fail, format_metric, say
from keel.lifecycle.main_job import BAD_SPEC
from keel.lifecycle.progress import Progress
from keel.lifecycle.retraining import INTERRUPTED, INTERRUPTED_EXIT, SKIPPED
from keel.monitoring.policy import DECISIONS_FILE
from keel.monitoring.records import DriftStatus, LabelReport, RetrainingDecision
from keel.monitoring.refusals import refusal_lines
from keel.spec.models import Spec


class ConsoleProgress(Progress):
    """Prints each stage of a lifecycle sequence as its own command prints it."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.started = time.perf_counter()

    def training_started(self, spec) -> None:
        from keel.cli.train import announce_training

        self.started = time.perf_counter()
        announce_training(spec, self.config)

    def trained(self, spec, result) -> None:
        from keel.cli.train import print_training

        print_training(spec, result, self.started)

    def evaluation_started(self, spec) -> None:
        say(f"keel: evaluating model '{spec.problem.name}' (loading ZenML takes a few seconds) ...")

    def evaluated(self, spec, result) -> None:
        from keel.cli.evaluate import print_evaluation

        print_evaluation(spec, result)

    def deployment_started(self, spec) -> None:
        from keel.cli.deploy import announce_deployment

        announce_deployment(spec)

    def deployed(self, spec, result) -> None:
        from keel.cli.deploy import print_deployment

        print_deployment(spec, result)

    def monitored(self, spec, result) -> None:
        say()
        say(f"monitoring run: {result.run_name} (model {spec.problem.name} v{result.version})")
        _print_status(result.status, result.decision, result.report, spec)

    def retraining_started(self, spec, decision: RetrainingDecision) -> None:
        from keel.monitoring.policy import alerting_triggers, retraining_triggers

        alerting = alerting_triggers(decision)
        also = f"; {', '.join(alerting)} fired too but alerts only" if alerting else ""
        say()
        caused = ", ".join(retraining_triggers(decision))
        say(f"keel: retraining '{spec.problem.name}' (triggers: {caused}{also}) ...")

    def retraining_not_started(self, spec, error: str) -> None:
        fail(f"keel: retraining not started: {error}")

    def retraining_skipped(self, spec, outcome: str) -> None:
        say(f"retraining:     {outcome}")

    def batch_started(self, spec, portfolio) -> None:
        say()
        say(f"keel: scoring the portfolio {portfolio} in batch ...")

    def batch_scored(self, spec, result) -> None:
        from keel.cli.score import print_batch

        print_batch(spec, result)

    def traffic_started(self, spec, world, url: str) -> None:
        say()
        say(f"keel: simulated production: {world.rows} applications (covariate_shift={world.covariate_shift} on "
            f"{', '.join(world.shifted_features)}, concept_shift={world.concept_shift}) -> {url}/predict")


def monitored_metric_note(spec: Spec) -> str:
    """Why the monitored metric is not the spec's primary metric, when it is not: a default left in place
    (roc_auc) is not a choice, and the performance line must not read as if the primary metric were watched."""
    performance, primary = spec.monitoring.drift.performance, spec.training.primary_metric
    if performance.metric == primary:
        return ""
    if "metric" in performance.model_fields_set:
        return f" (declared in monitoring.drift.performance.metric; training.primary_metric is {primary})"
    return (f" (the default of monitoring.drift.performance.metric, not training.primary_metric {primary}: "
            f"declare {primary} there and in monitoring.retraining.performance.metric to watch it)")


def _print_status(status: DriftStatus, decision: RetrainingDecision, report: Path, spec: Spec) -> None:
    from keel.monitoring.drift import performance_verdict
    from keel.monitoring.monitor import STATUS_FILE, monitoring_folder
    from keel.monitoring.policy import describe_fired, last_interrupted, read_history

    window = status["window"]
    say(f"window:         {window['window']} from {window['start']} ({window['rows']} predictions of "
        f"v{status['model_version']}, {window['new_rows']} new; {_traffic(window)})")
    features = status["features"]
    judged = status.get("judged", True)  # a window too small is not judged: nothing in it is "stable"
    say(f"data drift:     {', '.join(features['drifted']) or 'none'} ({features['tested']} features tested)" if judged
        else f"data drift:     not judged ({status.get('reason')})")
    if features.get("unseen_categories"):  # the reference is the training rows, not the declared categories
        say(f"new categories: {features['unseen_categories']} absent from the training rows (the model learned "
            "nothing for them; declared categories too, e.g. only in the later splits of a time split)")
    if features.get("problems"):
        say(f"not compared:   {features['problems']}")
    prediction = status["prediction"]
    say(f"prediction:     {'DRIFT' if prediction.get('drifted') else 'stable'} (score KS "
        f"{format_metric(prediction.get('score_ks'))}, decision rate {format_metric(prediction.get('decision_rate'))} vs "
        f"{format_metric(prediction.get('reference_decision_rate'))})" if judged else "prediction:     not judged")
    labels, performance, label = status["labels"], status["performance"], status["label"]
    if labels.get("source_not_found"):
        say(f"labels:         none: {labels['source_not_found']} (performance and label drift not judged)")
    else:
        say(f"labels:         {labels['matched']} known in this window, {labels['unknown_ids']} for unknown ids, "
            f"{labels['before_prediction']} dated before their prediction" + _label_problems(labels))
    say(f"label drift:    {'DRIFT' if label.get('drifted') else ('stable' if label.get('judged') else label.get('reason', 'not judged'))}")
    say(f"performance:    {performance['metric']} {format_metric(performance.get('value'))} vs test "
        f"{format_metric(performance.get('reference'))}: {performance_verdict(performance)}"
        + monitored_metric_note(spec))
    for line in production_lines(status.get("production")):
        say(line)
    say(f"verdict:        {status['verdict']['summary']}")
    fired = describe_fired(decision)
    outcome = "RETRAIN" if decision["retrain"] else f"no retraining ({decision['suppressed_by'] or 'no trigger fired'})"
    say(f"policy:         triggers fired: {fired} -> {outcome}")
    folder = monitoring_folder_for(status)
    interrupted = last_interrupted(read_history(folder))
    if interrupted is not None:
        say(f"last retrain:   interrupted during {interrupted.get('interrupted_during', 'a stage')} at "
            f"{interrupted['time']} (decided {interrupted['decision_time']}); not counted for the cooldown "
            "or the maximum frequency")
    say(f"drift report:   {report}")
    say(f"status:         {folder / STATUS_FILE}; decisions: {folder / DECISIONS_FILE}")


def production_lines(production) -> list:
    """Fairness in production as judged (what each judged headline rests on, what could not be judged)
    and, when outcomes are known far more often for one decision, that every labelled verdict above
    rests on the selected rows."""
    if not production:
        return []
    lines = []
    if production.get("verdict") not in (None, "not watched"):
        lines.append(f"fairness:       {production['verdict']}")
        lines += [f"  BREACH        {b}" for b in production.get("breaches", [])]
        lines += [f"  not judged    {u}" for u in production.get("not_judged", [])]
        lines += [f"  judged        {j}" for j in production.get("judged_on", [])]
    coverage = production.get("label_coverage") or {}
    if coverage.get("selective"):
        lines.append(f"CAUTION labels: {coverage['note']}; performance and label drift above are judged on them")
    lines += refusal_lines(production.get("refusals"))
    if production.get("refusals_note"):
        lines.append(f"refused:        {production['refusals_note']}")
    return lines


def _traffic(window) -> str:
    """Which traffic the window judged, with each kind's rows (a window recorded before batch scoring: online)."""
    traffic = window.get("traffic", "online")
    if traffic != "both":
        return f"traffic: {traffic}"
    return f"traffic: both, {window.get('online_rows', 0)} online and {window.get('batch_rows', 0)} batch"


def _label_problems(labels: LabelReport) -> str:
    """The label rows left out, when there are any (empty, neither class, a time that cannot be read or in
    the future, another version's, a prediction's later labels)."""
    problems = [f"{count} {what}" for count, what in (
        (labels.get("missing_labels"), "empty"),
        (labels.get("unknown_label_values"), f"neither class {labels.get('unknown_value_examples')}"),
        (labels.get("other_versions"), "for another version's predictions"),
        (labels.get("unreadable_times"), "with a time that cannot be read"),
        (labels.get("future_times"), "dated in the future"),
        (labels.get("duplicates"), "later labels of a prediction already labelled"),
        (labels.get("conflicting"), "predictions labelled again with the other class (the first label is used)"))
        if count]
    return f"; left out: {', '.join(problems)}" if problems else ""


def monitoring_folder_for(status: DriftStatus) -> Path:
    return Path(status["decision_folder"])


def monitor_once(spec: Spec, config: Path, retrain: bool = True, traffic: str = "both"):
    """One monitoring run (and retraining if the policy fires), printed; its result."""
    from keel.lifecycle.monitoring import monitor_once as run_once

    result = run_once(spec, retrain, ConsoleProgress(config), traffic=traffic)
    if result.error is not None:
        fail(result.error)
    retraining = result.retraining
    if retraining is not None and retraining.outcome == INTERRUPTED:
        fail(f"keel: retraining interrupted during {retraining['interrupted_during']}; recorded as "
             f"'{INTERRUPTED}' in {monitoring_folder_for(result.status) / DECISIONS_FILE} (the cooldown does not "
             "count it: the next monitor retrains if a trigger still fires)")
    elif retraining is not None and retraining.outcome != SKIPPED:  # skipped: said already
        say(f"retraining:     {retraining.outcome}")
    return result


def schedule_monitoring(spec: Spec, config: Path) -> int:
    """Register the monitoring schedule where the orchestrator keeps one; else print the cron line."""
    from keel.lifecycle.schedule import schedule_monitoring as schedule

    result = schedule(spec)
    if result.error is not None:
        return fail(result.error, result.exit_code)
    if result.scheduled:
        say(f"keel: monitoring of {spec.problem.name} v{result.version} scheduled on {result.flavor} "
            f"(cron `{result.interval.expression}`, {result.interval.describe()})")
        return 0
    interval = result.interval
    say(f"keel: the active orchestrator ({result.flavor}) cannot keep schedules. Run the monitor "
        f"with `python run.py monitor --watch`, or from cron, {interval.describe()}:")
    # The spec is named: without --config a later command would take the last spec used here.
    say(f"  {interval.expression} cd {shlex.quote(str(Path.cwd()))} && .venv/bin/python run.py monitor "
        f"--config {shlex.quote(str(Path(config).resolve()))} >> .keel/monitor.log 2>&1")
    return 0


def monitor(spec: Spec, config: Path, watch: bool = False, schedule: bool = False, retrain: bool = True,
            traffic: str = "both") -> int:
    from keel.lifecycle.retraining import retraining_spec
    from keel.spec.load import SpecError

    try:  # a bad `data_overrides` is found now, not when the policy fires (after its decision was recorded)
        retraining_spec(spec)
    except SpecError as error:
        return fail(f"keel: {error}", BAD_SPEC)
    if schedule:
        return schedule_monitoring(spec, config)
    say(f"keel: monitoring '{spec.problem.name}' (loading ZenML takes a few seconds) ...")
    if not watch:
        return monitor_once(spec, config, retrain, traffic).code
    every = spec.monitoring.retraining.check_every_seconds
    try:
        while True:
            if monitor_once(spec, config, retrain, traffic).code == INTERRUPTED_EXIT:
                return INTERRUPTED_EXIT  # Ctrl+C stopped the retraining: stop watching too
            say(f"keel: next check in {every:g} s (Ctrl+C stops)")
            time.sleep(every)
    except KeyboardInterrupt:
        say("keel: stopped watching")
        return 0


def closed_loop(spec: Spec, config: Path) -> int:
    """The main job (keel.lifecycle.main_job), printed as it goes and as a timeline at the end, then
    how to call the service."""
    from keel.cli.deploy import try_it
    from keel.lifecycle.main_job import run_main_job

    job = run_main_job(spec, ConsoleProgress(config))
    if job.error is not None:
        return fail(job.error, job.code)
    if job.skipped is not None:
        say(f"keel: closed loop skipped: {job.skipped}")
        return 0
    if job.monitor is None or job.monitor.status is None:
        return job.code
    say()
    say("timeline (seconds since start):")
    for seconds, what, detail in job.timeline:
        say(f"  {seconds:6.0f}  {what:<9} {detail}")
    folder = job.monitoring_folder
    say(f"monitoring files: {folder / 'status.json'}, {folder / 'decisions.jsonl'}")
    say(f"service: {job.url} (stop it: kill $(cat {job.deployment_folder / 'service.pid'}))")
    say(f"try it:  {try_it(job.url, spec)}")
    return job.code

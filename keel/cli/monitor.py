"""`run.py monitor`: run the monitoring pipeline on the production version, print the verdict and
the policy's decision, and when it fires: train -> evaluate -> deploy (the new version as the
challenger under the spec's rollout strategy). `--watch` repeats; `--schedule` hands the schedule
to an orchestrator that can keep one (the local one cannot: use cron, see README)."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from keel.cli.console import fail, say
from keel.spec.models import Spec

MONITOR_FAILED = 1
BAD_SPEC = 2  # as for any spec the CLI cannot use
SKIPPED = "skipped (--no-retrain)"
# Cron steps that divide their period evenly (`*/7` minutes would run at :56 and again at :00).
MINUTE_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)


@dataclass
class MonitorResult:
    code: int
    status: Optional[dict] = None
    decision: Optional[dict] = None
    report: Optional[Path] = None
    run_name: Optional[str] = None
    retraining: Optional[dict] = None
    timeline: list = field(default_factory=list)


def retraining_spec(spec: Spec) -> Spec:
    """The spec the retraining runs with: the spec plus the policy's `data_overrides`."""
    overrides = spec.monitoring.retraining.data_overrides
    if not overrides:
        return spec
    from keel.spec.load import apply_overrides, validate_spec

    return validate_spec(apply_overrides(spec.model_dump(mode="json"), overrides),
                         "monitoring.retraining.data_overrides")


def write_report(spec: Spec, run_name: str, html: str) -> Path:
    from keel.lifecycle.evaluation import REPORTS_DIR

    folder = REPORTS_DIR / spec.problem.name / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_name}.html"
    path.write_text(html, encoding="utf-8")
    return path.resolve()


def _print_status(status: dict, decision: dict, report: Path) -> None:
    from keel.monitoring.monitor import STATUS_FILE, monitoring_folder
    from keel.monitoring.policy import DECISIONS_FILE

    window = status["window"]
    say(f"window:         {window['window']} from {window['start']} ({window['rows']} predictions of "
        f"v{status['model_version']}, {window['new_rows']} new)")
    features = status["features"]
    say(f"data drift:     {', '.join(features['drifted']) or 'none'} ({features['tested']} features tested)")
    if features.get("unseen_categories"):
        say(f"unseen:         {features['unseen_categories']}")
    if features.get("problems"):
        say(f"not compared:   {features['problems']}")
    prediction = status["prediction"]
    say(f"prediction:     {'DRIFT' if prediction.get('drifted') else 'stable'} (score KS "
        f"{_short(prediction.get('score_ks'))}, decision rate {_short(prediction.get('decision_rate'))} vs "
        f"{_short(prediction.get('reference_decision_rate'))})")
    labels, performance, label = status["labels"], status["performance"], status["label"]
    say(f"labels:         {labels['matched']} known in this window, {labels['unknown_ids']} for unknown ids, "
        f"{labels['before_prediction']} dated before their prediction" + _label_problems(labels))
    say(f"label drift:    {'DRIFT' if label.get('drifted') else ('stable' if label.get('judged') else label.get('reason', 'not judged'))}")
    say(f"performance:    {performance['metric']} {_short(performance.get('value'))} vs test "
        f"{_short(performance.get('reference'))}: {'DRIFT' if performance.get('drifted') else ('stable' if performance.get('judged') else performance.get('reason', 'not judged'))}")
    say(f"verdict:        {status['verdict']['summary']}")
    fired = ", ".join(decision["fired"]) or "none"
    outcome = "RETRAIN" if decision["retrain"] else f"no retraining ({decision['suppressed_by'] or 'no trigger fired'})"
    say(f"policy:         triggers fired: {fired} -> {outcome}")
    folder = monitoring_folder_for(status)
    say(f"drift report:   {report}")
    say(f"status:         {folder / STATUS_FILE}; decisions: {folder / DECISIONS_FILE}")


def _label_problems(labels: dict) -> str:
    """The label rows left out, when there are any (empty, neither class, another version's)."""
    problems = [f"{labels[key]} {what}" for key, what in (
        ("missing_labels", "empty"), ("unknown_label_values", f"neither class {labels.get('unknown_value_examples')}"),
        ("other_versions", "for another version's predictions")) if labels.get(key)]
    return f"; left out: {', '.join(problems)}" if problems else ""


def monitoring_folder_for(status: dict) -> Path:
    return Path(status["decision_folder"])


def _short(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def monitor_once(spec: Spec, config: Path, retrain: bool = True, mark=lambda what, detail: None) -> MonitorResult:
    """One monitoring run and, if the policy fires, one retraining."""
    from keel.cli.pipeline_runs import failed_step_message, run_pipeline
    from keel.monitoring.monitor import monitoring_folder
    from keel.registry import production_version

    name = spec.problem.name
    version = production_version(name)
    if version is None:
        return MonitorResult(fail(f"keel: '{name}' has no production version to monitor: python run.py deploy", 1))
    from keel.registry import version_artifacts
    from pipelines.monitoring import REFERENCES, monitoring_pipeline

    try:
        version_artifacts(name, version, REFERENCES)
    except LookupError as error:  # a version evaluated before monitoring existed has no references
        return MonitorResult(fail(f"keel: {error}; evaluate it again: python run.py evaluate "
                                  f"--model-version {version}", 1))
    outcome = run_pipeline(monitoring_pipeline, spec=spec, model_version=version)
    if outcome.error is not None:
        return MonitorResult(fail(failed_step_message(outcome), MONITOR_FAILED))
    steps = outcome.run.steps
    status = steps["drift_step"].outputs["drift_status"][0].load()
    decision = steps["policy_step"].outputs["retraining_decision"][0].load()
    html = steps["policy_step"].outputs["drift_report"][0].load()
    report = write_report(spec, outcome.run.name, str(html))
    status["decision_folder"] = str(monitoring_folder(spec))
    say()
    say(f"monitoring run: {outcome.run.name} (model {name} v{version})")
    _print_status(status, decision, report)
    result = MonitorResult(0, status, decision, report, outcome.run.name)
    suppressed = f" ({decision['suppressed_by']})" if decision["suppressed_by"] else ""
    mark("monitor", f"{status['verdict']['summary']}; triggers fired: {', '.join(decision['fired']) or 'none'} -> "
                    f"{'retrain' if decision['retrain'] else 'no retraining' + suppressed}; drift report {report}")
    if decision["retrain"] and retrain:
        result.retraining = retrain_and_roll_out(spec, config, decision, version, mark)
        if result.retraining["outcome"] == "failed":
            result.code = 1
    elif decision["retrain"]:  # the decision stands (it counts for the cooldown); say it was not acted on
        from keel.monitoring.monitor import now_utc
        from keel.monitoring.policy import append_record

        result.retraining = {"kind": "retraining", "time": now_utc().isoformat(), "decision_time": decision["time"],
                             "triggers": decision["fired"], "champion": version, "new_version": None,
                             "outcome": SKIPPED}
        append_record(monitoring_folder(spec), result.retraining)
        say(f"retraining:     {SKIPPED}")
    return result


def retraining_outcome(evaluation_code: int, evaluation_passed: Optional[bool],
                       deploy_code: Optional[int] = None, rollout: Optional[str] = None) -> str:
    """What a retraining came to, from the evaluation's exit code and whether it made the version
    deployable, and (once deployed) the deployment's exit code and rollout outcome. "deploy": evaluation
    passed, deploy next."""
    from keel.cli.evaluate import GATES_FAILED

    if evaluation_code == GATES_FAILED:
        return "rejected by evaluation"
    if evaluation_code != 0:  # the evaluation run itself failed: nothing was judged
        return "failed"
    if evaluation_passed is None:
        return "failed"
    if not evaluation_passed:
        return "rejected by evaluation"
    if deploy_code is None:
        return "deploy"
    if deploy_code == 0 and rollout == "promoted":
        return "rolled out"
    return f"not rolled out ({rollout or 'deployment failed'})"


def retrain_and_roll_out(spec: Spec, config: Path, decision: dict, champion: int,
                         mark=lambda what, detail: None) -> dict:
    """train -> evaluate (against the champion) -> deploy as challenger; the outcome is recorded
    beside the decision that caused it."""
    from keel.cli.deploy import deploy
    from keel.cli.evaluate import evaluate
    from keel.lifecycle.evaluation import REPORTS_DIR
    from keel.cli.train import train
    from keel.data.sources import describe_source
    from keel.evaluation.gates import is_deployable
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.policy import append_record
    from keel.registry import evaluation_outcome, get_model_version_metadata, resolve_version
    from keel.spec.load import SpecError

    name = spec.problem.name
    say()
    say(f"keel: retraining '{name}' (triggers: {', '.join(decision['fired'])}) ...")
    record = {"kind": "retraining", "time": now_utc().isoformat(), "decision_time": decision["time"],
              "triggers": decision["fired"], "champion": champion, "new_version": None, "outcome": "failed"}
    try:
        new_spec = retraining_spec(spec)
    except SpecError as error:  # `monitor` checks this first; a spec changed since must not crash the loop
        record["error"] = str(error)
        fail(f"keel: retraining not started: {error}")
        mark("retrain", f"failed: {error}")
        append_record(monitoring_folder(spec), record)
        return record
    if train(new_spec, config) != 0:
        mark("retrain", "failed: the training run failed")
        append_record(monitoring_folder(spec), record)
        return record
    record["new_version"] = version = resolve_version(name, None)
    mark("retrain", f"v{version} trained on {describe_source(new_spec.data)}")
    code = evaluate(new_spec, version)
    evaluation = evaluation_outcome(name, version) or {}
    record["evaluation"] = {"passed": evaluation.get("passed"), "deployable": is_deployable(evaluation),
                            "decision": evaluation.get("decision"), "failed": evaluation.get("failed", []),
                            "exit_code": code}
    record["outcome"] = retraining_outcome(code, is_deployable(evaluation) if evaluation else None)
    mark("evaluate", f"v{version} against champion v{champion}: "
                     + {"deploy": "passed its gates", "failed": f"the evaluation run failed (exit {code})"}.get(
                         record["outcome"], "failed: " + "; ".join(evaluation.get("failed", [])))
                     + f"; model card {(REPORTS_DIR / name / f'v{version}' / 'model_card.md').resolve()}")
    if record["outcome"] == "deploy":
        deployed = deploy(new_spec, version, None)
        rollout = get_model_version_metadata(name, version).get("deployment") or {}
        record["rollout"] = rollout.get("outcome")
        record["outcome"] = retraining_outcome(code, True, deployed, rollout.get("outcome"))
        report = rollout_report_location() if rollout else None  # no rollout recorded: no report of it
        if report:
            record["rollout_report"] = report
        mark("rollout", record["outcome"] + (f"; rollout report {report}" if report else ""))
    else:
        mark("rollout", f"none: {record['outcome']}")
    append_record(monitoring_folder(spec), record)
    return record


def rollout_report_location() -> Optional[str]:
    """Where the latest rollout's report is: the deployment run's `rollout_timeline_html` artifact
    (shown in the dashboard). None when there is no deployment run."""
    from zenml.client import Client

    try:
        run = Client().get_pipeline("deployment_pipeline").last_run
    except Exception:  # no deployment run (or no store): nothing to point at
        return None
    return f"artifact rollout_timeline_html of run {run.name}"


@dataclass(frozen=True)
class CronInterval:
    """A cron expression for `check_every_seconds`; `seconds` is the interval it really keeps."""

    expression: str
    seconds: int
    requested: float

    @property
    def exact(self) -> bool:
        return abs(self.seconds - self.requested) < 1e-9

    def describe(self) -> str:
        every = (f"{self.seconds // 86400} day(s)" if self.seconds >= 86400 else
                 f"{self.seconds // 3600} hour(s)" if self.seconds >= 3600 else f"{self.seconds // 60} minute(s)")
        if self.exact:
            return f"every {every}"
        return (f"every {every} (monitoring.retraining.check_every_seconds={self.requested:.10g} is not a cron "
                f"interval; rounded to the nearest one)")


def _nearest(value: float, steps: Tuple[int, ...]) -> int:
    return min(steps, key=lambda step: (abs(step - value), step))


def cron_interval(seconds: float) -> CronInterval:
    """The cron expression closest to running every `seconds`: cron counts whole minutes (or hours, or
    days) that divide the hour (the day); anything else is rounded to the nearest such step."""
    minutes = seconds / 60
    if minutes < 45:  # nearer to some minute step than to one hour
        step = _nearest(minutes, MINUTE_STEPS)
        return CronInterval("* * * * *" if step == 1 else f"*/{step} * * * *", step * 60, seconds)
    hours = seconds / 3600
    if hours < 18:
        step = _nearest(hours, HOUR_STEPS)
        return CronInterval("0 * * * *" if step == 1 else f"0 */{step} * * *", step * 3600, seconds)
    if hours / 24 >= 4:  # nearer to a week than to a day; day-of-month steps would restart every month
        return CronInterval("0 0 * * 1", 7 * 86400, seconds)
    return CronInterval("0 0 * * *", 86400, seconds)


def monitoring_schedule(spec: Spec):
    """The ZenML schedule of the monitoring pipeline: a cron expression (what every schedulable
    orchestrator accepts, Kubernetes' only) from `check_every_seconds`, and the interval it keeps."""
    from zenml.config.schedule import Schedule

    interval = cron_interval(spec.monitoring.retraining.check_every_seconds)
    return Schedule(name=f"keel-monitor-{spec.problem.name}", cron_expression=interval.expression), interval


def schedule_monitoring(spec: Spec, config: Path) -> int:
    """Where the active orchestrator can schedule (Kubernetes, cloud), register the monitoring
    pipeline with the spec's interval as a ZenML cron schedule; else print the same cron line."""
    from zenml.client import Client

    from keel.registry import production_version

    orchestrator = Client().active_stack.orchestrator
    interval = cron_interval(spec.monitoring.retraining.check_every_seconds)
    if not getattr(orchestrator.config, "is_schedulable", False):
        say(f"keel: the active orchestrator ({orchestrator.flavor}) cannot keep schedules. Run the monitor "
            f"with `python run.py monitor --watch`, or from cron, {interval.describe()}:")
        # The spec is named: without --config a later command would take the last spec used here.
        say(f"  {interval.expression} cd {shlex.quote(str(Path.cwd()))} && .venv/bin/python run.py monitor "
            f"--config {shlex.quote(str(Path(config).resolve()))} >> .keel/monitor.log 2>&1")
        return 0
    version = production_version(spec.problem.name)
    if version is None:
        return fail(f"keel: '{spec.problem.name}' has no production version to monitor", 1)
    from pipelines.monitoring import monitoring_pipeline

    schedule, interval = monitoring_schedule(spec)
    monitoring_pipeline.with_options(schedule=schedule)(spec=spec, model_version=version)
    say(f"keel: monitoring of {spec.problem.name} v{version} scheduled on {orchestrator.flavor} "
        f"(cron `{interval.expression}`, {interval.describe()})")
    return 0


def monitor(spec: Spec, config: Path, watch: bool = False, schedule: bool = False, retrain: bool = True) -> int:
    from keel.spec.load import SpecError

    try:  # a bad `data_overrides` is found now, not when the policy fires (after its decision was recorded)
        retraining_spec(spec)
    except SpecError as error:
        return fail(f"keel: {error}", BAD_SPEC)
    if schedule:
        return schedule_monitoring(spec, config)
    say(f"keel: monitoring '{spec.problem.name}' (loading ZenML takes a few seconds) ...")
    if not watch:
        return monitor_once(spec, config, retrain).code
    every = spec.monitoring.retraining.check_every_seconds
    try:
        while True:
            monitor_once(spec, config, retrain)
            say(f"keel: next check in {every:g} s (Ctrl+C stops)")
            time.sleep(every)
    except KeyboardInterrupt:
        say("keel: stopped watching")
        return 0


def closed_loop(spec: Spec, config: Path) -> int:
    """The main job: the lifecycle and its closed loop, printed as a timeline at the end, then how
    to call the service."""
    from keel.cli.deploy import deploy, try_it
    from keel.cli.evaluate import evaluate
    from keel.cli.train import train
    from keel.deployment.deploy import api_key_headers, deployment_folder
    from keel.deployment.server import LOG_FILE, post_json, service_url
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.simulation import retraining_overrides, send_traffic, simulated_world, write_labels
    from keel.spec.load import SpecError

    started = time.perf_counter()
    timeline = []

    def mark(what: str, detail: str) -> None:
        timeline.append((time.perf_counter() - started, what, detail))

    try:
        world = simulated_world(spec)
    except ValueError as error:  # a spec with real data: the loop needs the generator's knobs
        world, no_loop = None, error
    labels_file = monitoring_folder(spec) / "labels.csv"
    if world is not None:
        try:  # the retraining spec is known now: a bad one stops the job before minutes of training
            retraining_spec(_loop_spec(spec, labels_file, retraining_overrides(spec)))
        except SpecError as error:
            return fail(f"keel: {error}", BAD_SPEC)
    for what, phase in (("train", lambda: train(spec, config)), ("evaluate", lambda: evaluate(spec, version=None)),
                        ("deploy", lambda: deploy(spec, version=None, strategy=None))):
        code = phase()
        if code != 0:
            return code
        mark(what, _phase_detail(spec, what))
    if world is None:
        say(f"keel: closed loop skipped: {no_loop}")
        return 0
    url = service_url(spec.deployment.host, spec.deployment.port)
    service_log = deployment_folder(spec) / LOG_FILE
    say()
    say(f"keel: simulated production: {world.rows} applications (covariate_shift={world.covariate_shift} on "
        f"{', '.join(world.shifted_features)}, concept_shift={world.concept_shift}) -> {url}/predict")
    headers = api_key_headers(spec)  # the service refuses requests without the spec's API key
    try:
        frame, traffic = send_traffic(spec, url, lambda where, payload: post_json(where, payload, headers=headers))
    except OSError as error:  # URLError, refused or reset connections: the service is not there
        return fail(f"keel: the service at {url} does not answer ({getattr(error, 'reason', error)}); "
                    f"its log: {service_log}", 1)
    except ValueError as error:  # something answered, but not with JSON: not keel's service
        return fail(f"keel: {url}/predict did not answer with JSON ({error}); its log: {service_log}", 1)
    if traffic["answered"] < traffic["sent"]:
        refusal = traffic["first_error"] or {}
        return fail(f"keel: the service answered {traffic['answered']} of {traffic['sent']} simulated applications "
                    f"(first refusal: HTTP {refusal.get('status')} {refusal.get('body')}); the loop needs them "
                    f"all. Its log: {service_log}", 1)
    mark("traffic", f"{traffic['answered']} of {traffic['sent']} applications scored by "
                    f"{', '.join(f'v{v}: {n}' for v, n in sorted(traffic['served_by'].items()))} "
                    f"(covariate_shift={world.covariate_shift} on {', '.join(world.shifted_features)}, "
                    f"concept_shift={world.concept_shift})")
    labels = write_labels(frame, spec.data.target.column, labels_file, now_utc())
    mark("labels", f"{len(frame)} outcomes delivered after the predictions: {labels}")
    loop_spec = _loop_spec(spec, labels, retraining_overrides(spec))
    result = monitor_once(loop_spec, config, retrain=True, mark=mark)
    if result.status is None:
        return result.code
    say()
    say("timeline (seconds since start):")
    for seconds, what, detail in timeline:
        say(f"  {seconds:6.0f}  {what:<9} {detail}")
    folder = monitoring_folder(spec)
    say(f"monitoring files: {folder / 'status.json'}, {folder / 'decisions.jsonl'}")
    say(f"service: {url} (stop it: kill $(cat {deployment_folder(spec) / 'service.pid'}))")
    say(f"try it:  {try_it(url, spec)}")
    return result.code


def _loop_spec(spec: Spec, labels: Path, overrides: list) -> Spec:
    """The spec for the loop's monitoring: labels from the delivered file, retraining on the new world."""
    from keel.spec.monitoring import CsvLabels

    monitoring = spec.monitoring.model_copy(update={
        "labels": spec.monitoring.labels.model_copy(update={"source": CsvLabels(kind="csv", path=labels)}),
        "retraining": spec.monitoring.retraining.model_copy(update={"data_overrides": overrides})})
    return Spec.model_validate({**spec.model_dump(mode="json"), "monitoring": monitoring.model_dump(mode="json")})


def _phase_detail(spec: Spec, phase: str) -> str:
    from keel.lifecycle.evaluation import REPORTS_DIR
    from keel.registry import evaluation_outcome, get_model_version_metadata, resolve_version

    name = spec.problem.name
    version = resolve_version(name, None)
    if phase == "train":
        metadata = get_model_version_metadata(name, version)
        return f"v{version} ({metadata.get('model_family')})"
    if phase == "evaluate":
        evaluation = evaluation_outcome(name, version) or {}
        from keel.evaluation.gates import describe_decision

        return (f"v{version} {describe_decision(evaluation) if evaluation else 'not evaluated'}; "
                f"model card {(REPORTS_DIR / name / f'v{version}' / 'model_card.md').resolve()}")
    deployment = get_model_version_metadata(name, version).get("deployment") or {}
    report = rollout_report_location()
    return f"v{version}: {deployment.get('outcome', '-')}" + (f"; rollout report {report}" if report else "")

"""`run.py monitor`: run the monitoring pipeline on the production version, print the verdict and
the policy's decision, and when it fires: train -> evaluate -> deploy (the new version as the
challenger under the spec's rollout strategy). `--watch` repeats; `--schedule` hands the schedule
to an orchestrator that can keep one (the local one cannot: use cron, see README)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from keel.cli.console import fail, say
from keel.spec.models import Spec

MONITOR_FAILED = 1


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
    from keel.cli.evaluate import REPORTS_DIR

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
    say(f"labels:         {labels['matched']} joined, {labels['unknown_ids']} for unknown ids, "
        f"{labels['before_prediction']} dated before their prediction")
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
    return result


def retrain_and_roll_out(spec: Spec, config: Path, decision: dict, champion: int,
                         mark=lambda what, detail: None) -> dict:
    """train -> evaluate (against the champion) -> deploy as challenger; the outcome is recorded
    beside the decision that caused it."""
    from keel.cli.deploy import deploy
    from keel.cli.evaluate import GATES_FAILED, REPORTS_DIR, evaluate
    from keel.cli.train import train
    from keel.data.sources import describe_source
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.policy import append_record
    from keel.registry import evaluation_outcome, get_model_version_metadata, resolve_version

    name = spec.problem.name
    say()
    say(f"keel: retraining '{name}' (triggers: {', '.join(decision['fired'])}) ...")
    new_spec = retraining_spec(spec)
    record = {"kind": "retraining", "time": now_utc().isoformat(), "decision_time": decision["time"],
              "triggers": decision["fired"], "champion": champion, "new_version": None, "outcome": "failed"}
    if train(new_spec, config) != 0:
        append_record(monitoring_folder(spec), record)
        return record
    record["new_version"] = version = resolve_version(name, None)
    mark("retrain", f"v{version} trained on {describe_source(new_spec.data)}")
    code = evaluate(new_spec, version)
    evaluation = evaluation_outcome(name, version) or {}
    record["evaluation"] = {"passed": evaluation.get("passed"), "failed": evaluation.get("failed", [])}
    mark("evaluate", f"v{version} against champion v{champion}: "
                     + ("passed its gates" if evaluation.get("passed") else
                        "failed: " + "; ".join(evaluation.get("failed", [])))
                     + f"; model card {(REPORTS_DIR / name / f'v{version}' / 'model_card.md').resolve()}")
    if code == GATES_FAILED or not evaluation.get("passed"):
        record["outcome"] = "rejected by evaluation"
    elif code == 0:
        deployed = deploy(new_spec, version, None)
        rollout = get_model_version_metadata(name, version).get("deployment") or {}
        record["rollout"] = rollout.get("outcome")
        record["outcome"] = "rolled out" if deployed == 0 and rollout.get("outcome") == "promoted" else \
            f"not rolled out ({rollout.get('outcome', 'deployment failed')})"
    mark("rollout", record["outcome"])
    append_record(monitoring_folder(spec), record)
    return record


def schedule_monitoring(spec: Spec) -> int:
    """Where the active orchestrator can schedule (Kubernetes, cloud), register the monitoring
    pipeline with the spec's interval as a ZenML schedule; else say how to use cron."""
    from datetime import timedelta

    from zenml.client import Client
    from zenml.config.schedule import Schedule

    from keel.registry import production_version

    orchestrator = Client().active_stack.orchestrator
    every = spec.monitoring.retraining.check_every_seconds
    if not getattr(orchestrator.config, "is_schedulable", False):
        say(f"keel: the active orchestrator ({orchestrator.flavor}) cannot keep schedules. Run the monitor "
            f"with `python run.py monitor --watch`, or from cron, e.g. every {max(1, round(every / 60))} minute(s):")
        say(f"  */{max(1, round(every / 60))} * * * * cd {Path.cwd()} && .venv/bin/python run.py monitor >> "
            ".keel/monitor.log 2>&1")
        return 0
    version = production_version(spec.problem.name)
    if version is None:
        return fail(f"keel: '{spec.problem.name}' has no production version to monitor", 1)
    from pipelines.monitoring import monitoring_pipeline

    schedule = Schedule(name=f"keel-monitor-{spec.problem.name}", interval_second=timedelta(seconds=every))
    monitoring_pipeline.with_options(schedule=schedule)(spec=spec, model_version=version)
    say(f"keel: monitoring of {spec.problem.name} v{version} scheduled every {every:g} s on {orchestrator.flavor}")
    return 0


def monitor(spec: Spec, config: Path, watch: bool = False, schedule: bool = False, retrain: bool = True) -> int:
    if schedule:
        return schedule_monitoring(spec)
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
    """The main job: the lifecycle and its closed loop, printed as a timeline at the end."""
    from keel.cli.deploy import deploy
    from keel.cli.evaluate import evaluate
    from keel.cli.train import train
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.server import post_json, service_url
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.simulation import retraining_overrides, send_traffic, simulated_world, write_labels

    started = time.perf_counter()
    timeline = []

    def mark(what: str, detail: str) -> None:
        timeline.append((time.perf_counter() - started, what, detail))

    for what, phase in (("train", lambda: train(spec, config)), ("evaluate", lambda: evaluate(spec, version=None)),
                        ("deploy", lambda: deploy(spec, version=None, strategy=None))):
        code = phase()
        if code != 0:
            return code
        mark(what, _phase_detail(spec, what))
    try:
        world = simulated_world(spec)
    except ValueError as error:  # a spec with real data: the loop needs the generator's knobs
        say(f"keel: closed loop skipped: {error}")
        return 0
    url = service_url(spec.deployment.host, spec.deployment.port)
    say()
    say(f"keel: simulated production: {world.rows} applications (covariate_shift={world.covariate_shift} on "
        f"{', '.join(world.shifted_features)}, concept_shift={world.concept_shift}) -> {url}/predict")
    frame, traffic = send_traffic(spec, url, post_json)
    mark("traffic", f"{traffic['answered']} of {traffic['sent']} applications scored by "
                    f"{', '.join(f'v{v}: {n}' for v, n in sorted(traffic['served_by'].items()))} "
                    f"(covariate_shift={world.covariate_shift} on {', '.join(world.shifted_features)}, "
                    f"concept_shift={world.concept_shift})")
    labels = write_labels(frame, spec.data.target.column, monitoring_folder(spec) / "labels.csv", now_utc())
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
    return result.code


def _loop_spec(spec: Spec, labels: Path, overrides: list) -> Spec:
    """The spec for the loop's monitoring: labels from the delivered file, retraining on the new world."""
    from keel.spec.monitoring import CsvLabels

    monitoring = spec.monitoring.model_copy(update={
        "labels": spec.monitoring.labels.model_copy(update={"source": CsvLabels(kind="csv", path=labels)}),
        "retraining": spec.monitoring.retraining.model_copy(update={"data_overrides": overrides})})
    return Spec.model_validate({**spec.model_dump(mode="json"), "monitoring": monitoring.model_dump(mode="json")})


def _phase_detail(spec: Spec, phase: str) -> str:
    from keel.cli.evaluate import REPORTS_DIR
    from keel.registry import evaluation_outcome, get_model_version_metadata, resolve_version

    name = spec.problem.name
    version = resolve_version(name, None)
    if phase == "train":
        metadata = get_model_version_metadata(name, version)
        return f"v{version} ({metadata.get('model_family')})"
    if phase == "evaluate":
        evaluation = evaluation_outcome(name, version) or {}
        return (f"v{version} {'passed its gates' if evaluation.get('passed') else 'failed its gates'}; "
                f"model card {(REPORTS_DIR / name / f'v{version}' / 'model_card.md').resolve()}")
    deployment = get_model_version_metadata(name, version).get("deployment") or {}
    return f"v{version}: {deployment.get('outcome', '-')}"

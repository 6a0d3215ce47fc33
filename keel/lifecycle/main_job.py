"""The main job: the lifecycle and its closed loop. train -> evaluate -> deploy, then (for a generator
spec) a portfolio scored in batch, simulated production traffic through the service, delayed labels, one monitoring run and, when
the policy fires, retrain -> evaluate against the champion -> roll out or reject. Every stage works on
the version the job's own training run registered."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from keel import registration as keys
from keel.lifecycle.batch import BatchJobResult
from keel.lifecycle.deployment import DeploymentResult
from keel.lifecycle.evaluation import EvaluationResult
from keel.lifecycle.monitoring import MonitorResult
from keel.lifecycle.progress import Progress
from keel.lifecycle.training import TrainingResult
from keel.spec.data import GeneratorSource
from keel.spec.models import Spec

BAD_SPEC = 2  # as for any spec the CLI cannot use


@dataclass
class MainJobResult:
    """What the main job came to. `code` is its exit code; `error` a message not yet shown (a stage's
    own failure is shown through Progress as it happens); `skipped` why the closed loop did not run;
    `timeline` holds (seconds since start, stage, detail)."""

    code: int
    timeline: list = field(default_factory=list)
    training: Optional[TrainingResult] = None
    evaluation: Optional[EvaluationResult] = None
    deployment: Optional[DeploymentResult] = None
    monitor: Optional[MonitorResult] = None
    batch: Optional[BatchJobResult] = None
    url: Optional[str] = None
    monitoring_folder: Optional[Path] = None
    deployment_folder: Optional[Path] = None
    skipped: Optional[str] = None
    error: Optional[str] = None


def run_main_job(spec: Spec, progress: Progress = Progress()) -> MainJobResult:
    """The lifecycle and its closed loop; see the module's docstring."""
    from keel.deployment.deploy import api_key_headers, deployment_folder
    from keel.deployment.server import LOG_FILE, post_json, service_url
    from keel.lifecycle.deployment import deploy_version
    from keel.lifecycle.evaluation import evaluate_version
    from keel.lifecycle.monitoring import monitor_once
    from keel.lifecycle.retraining import retraining_spec
    from keel.lifecycle.training import train_version
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.simulation import retraining_overrides, send_traffic, simulated_world, write_labels
    from keel.spec.load import SpecError

    started = time.perf_counter()
    job = MainJobResult(0, monitoring_folder=monitoring_folder(spec), deployment_folder=deployment_folder(spec))

    def mark(what: str, detail: str) -> None:
        job.timeline.append((time.perf_counter() - started, what, detail))

    def stop(code: int, error: Optional[str] = None) -> MainJobResult:
        job.code, job.error = code, error
        return job

    try:
        world = simulated_world(spec)
    except ValueError as error:  # a spec with real data: the loop needs the generator's knobs
        world, no_loop = None, error
    labels_file = job.monitoring_folder / "labels.csv"
    if world is not None:
        try:  # the retraining spec is known now: a bad one stops the job before minutes of training
            retraining_spec(loop_spec(spec, labels_file, retraining_overrides(spec)))
        except SpecError as error:
            return stop(BAD_SPEC, f"keel: {error}")

    progress.training_started(spec)
    job.training = trained = train_version(spec)
    progress.trained(spec, trained)
    if trained.exit_code != 0:
        return stop(trained.exit_code)
    version = trained.version
    mark("train", f"v{version} ({trained.metadata.get(keys.MODEL_FAMILY)})")
    progress.evaluation_started(spec)
    job.evaluation = evaluated = evaluate_version(spec, version)
    progress.evaluated(spec, evaluated)
    if evaluated.exit_code != 0:
        return stop(evaluated.exit_code)
    mark("evaluate", evaluation_detail(spec, evaluated))
    progress.deployment_started(spec)
    job.deployment = deployed = deploy_version(spec, version)
    progress.deployed(spec, deployed)
    if deployed.exit_code != 0:
        return stop(deployed.exit_code)
    mark("deploy", f"v{version}: {deployed.outcome or '-'}"
                   + (f"; rollout report {deployed.report}" if deployed.report else ""))
    if isinstance(spec.data.source, GeneratorSource):
        job.batch = scored = score_portfolio(spec, version, progress)
        if scored.code != 0:
            return stop(scored.code)
        mark("batch", f"{scored.record['scored']} of {scored.record['rows_read']} portfolio rows scored by "
                      f"v{version} as {scored.record['batch_id']}: {scored.record['output_uri']}")
    if world is None:
        job.skipped = str(no_loop)
        return job

    job.url = url = service_url(spec.deployment.host, spec.deployment.port)
    service_log = job.deployment_folder / LOG_FILE
    progress.traffic_started(spec, world, url)
    headers = api_key_headers(spec)  # the service refuses requests without the spec's API key
    try:
        frame, traffic = send_traffic(spec, url, lambda where, payload: post_json(where, payload, headers=headers))
    except OSError as error:  # URLError, refused or reset connections: the service is not there
        return stop(1, f"keel: the service at {url} does not answer ({getattr(error, 'reason', error)}); "
                       f"its log: {service_log}")
    except ValueError as error:  # something answered, but not with JSON: not keel's service
        return stop(1, f"keel: {url}/predict did not answer with JSON ({error}); its log: {service_log}")
    if traffic["answered"] < traffic["sent"]:
        refusal = traffic["first_error"] or {}
        return stop(1, f"keel: the service answered {traffic['answered']} of {traffic['sent']} simulated applications "
                       f"(first refusal: HTTP {refusal.get('status')} {refusal.get('body')}); the loop needs them "
                       f"all. Its log: {service_log}")
    mark("traffic", f"{traffic['answered']} of {traffic['sent']} applications scored by "
                    f"{', '.join(f'v{v}: {n}' for v, n in sorted(traffic['served_by'].items()))} "
                    f"(covariate_shift={world.covariate_shift} on {', '.join(world.shifted_features)}, "
                    f"concept_shift={world.concept_shift})")
    labels = write_labels(frame, spec.data.target.column, labels_file, now_utc())
    mark("labels", f"{len(frame)} outcomes delivered after the predictions: {labels}")
    # The loop judges the simulated (online) traffic: the portfolio is the unshifted world, scored before it.
    job.monitor = monitored = monitor_once(loop_spec(spec, labels, retraining_overrides(spec)), retrain=True,
                                           progress=progress, mark=mark, traffic="online")
    return stop(monitored.code, monitored.error)


def portfolio_path(spec: Spec) -> Path:
    """The main job's portfolio: drawn from the spec's generator, in the deployment folder."""
    from keel.deployment.deploy import deployment_folder

    return deployment_folder(spec) / "batch" / "portfolio.parquet"


def write_portfolio(spec: Spec) -> Path:
    """`batch.portfolio_rows` applications from the spec's generator (the next seed: rows the model never
    saw), without their outcome, as Parquet (written atomically)."""
    from keel.data.generator import generate_credit_applications
    from keel.files import write_atomically

    source = spec.data.source.model_copy(update={"rows": spec.batch.portfolio_rows, "seed": spec.data.source.seed + 1})
    frame = generate_credit_applications(source).drop(columns=[spec.data.target.column])
    path = portfolio_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, frame.to_parquet(index=False))
    return path


def score_portfolio(spec: Spec, version: int, progress: Progress) -> BatchJobResult:
    """Score the portfolio in batch with the job's version (the same pipeline as `run.py score`); the
    output is named by the version and the time, so a later job never meets an earlier one's file."""
    from keel.clock import utc_now
    from keel.lifecycle.batch import score_job

    portfolio = write_portfolio(spec)
    progress.batch_started(spec, portfolio)
    output = portfolio.with_name(f"scores-v{version}-{utc_now():%Y%m%dT%H%M%SZ}.parquet")
    result = score_job(spec, str(portfolio), str(output), version=version)
    progress.batch_scored(spec, result)
    return result


def evaluation_detail(spec: Spec, evaluated: EvaluationResult) -> str:
    """The timeline's line for an evaluation: its decision and where its model card is."""
    from keel.evaluation.gates import describe_decision
    from keel.lifecycle.evaluation import model_card_path

    record = evaluated.record
    return (f"v{evaluated.version} {describe_decision(record) if record else 'not evaluated'}; "
            f"model card {model_card_path(spec, evaluated.version)}")


def loop_spec(spec: Spec, labels: Path, overrides: list) -> Spec:
    """The spec for the loop's monitoring: labels from the delivered file, retraining on the new world."""
    from keel.spec.monitoring import CsvLabels

    monitoring = spec.monitoring.model_copy(update={
        "labels": spec.monitoring.labels.model_copy(update={"source": CsvLabels(kind="csv", path=labels)}),
        "retraining": spec.monitoring.retraining.model_copy(update={"data_overrides": overrides})})
    return Spec.model_validate({**spec.model_dump(mode="json"), "monitoring": monitoring.model_dump(mode="json")})

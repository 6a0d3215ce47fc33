"""Deploy one model version: run the deployment pipeline (staged rollout, health checks, promotion or
rollback) and return its evidence; serve the production version; roll back to the previous one."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from keel.artifacts import Artifact
from keel.spec.models import Spec

DEPLOYED = ("promoted", "awaiting approval")  # rollout outcomes a deploy command succeeds with
EXAMPLE_ROWS = 200  # validation rows tried for one the request contract accepts


@dataclass
class DeploymentResult:
    """What `deploy_version` came to: the rollout evidence of its own deployment run (strategy, champion,
    stages, outcome, what serves at which URL), or `error` and no evidence. `recovered`: what was done
    first about an interrupted earlier rollout."""

    version: Optional[int]
    run_name: Optional[str] = None
    evidence: Optional[dict] = None
    error: Optional[str] = None
    recovered: Optional[str] = None

    @property
    def outcome(self) -> Optional[str]:
        return (self.evidence or {}).get("outcome")

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None and self.outcome in DEPLOYED else 1

    @property
    def rolled_back_because(self) -> Optional[str]:
        """The stage a rolled-back rollout stopped at and its breaches ("stage 1 (5%): score PSI 0.865 >
        0.5"), or the reason it was rolled back; None when it was not."""
        evidence = self.evidence or {}
        if evidence.get("outcome") != "rolled back":
            return None
        breached = [s for s in evidence.get("stages") or [] if s.get("breaches")]
        if breached:
            return f"stage {breached[-1]['stage']} ({breached[-1]['step']}): {'; '.join(breached[-1]['breaches'])}"
        return evidence.get("reason")

    @property
    def report(self) -> Optional[str]:
        """Where this rollout's report is: the run's `rollout_timeline_html` artifact (in the dashboard)."""
        return f"artifact rollout_timeline_html of run {self.run_name}" if self.evidence is not None else None


@contextlib.contextmanager
def service_command(spec: Spec, command: str, by: Optional[str] = None,
                    port: Optional[int] = None) -> Iterator[Optional[str]]:
    """Hold the service's lock for `command` (ServiceBusy, naming the holder, if another live process
    has it, or if anything but this spec's service holds its port — anything at all for `serve`,
    which starts its own), finish an interrupted rollout first, and yield what was done about it."""
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.lock import ServiceBusy, service_lock
    from keel.deployment.recovery import finish_interrupted_rollout
    from keel.deployment.server import port_taken

    with service_lock(deployment_folder(spec), command), acting_as(by):
        taken = port_taken(spec, port, ours_too=command == "serve")  # before anything changes
        if taken is not None:
            raise ServiceBusy(taken)
        yield finish_interrupted_rollout(spec, by)


def deploy_version(spec: Spec, version: Optional[int], strategy: Optional[str] = None,
                   by: Optional[str] = None) -> DeploymentResult:
    """Roll `version` (None: the latest) out by the spec's strategy (or `strategy`) as `by`, holding
    the service's lock (an interrupted earlier rollout is finished first)."""
    from keel.lifecycle.pipeline_runs import run_for_version
    from keel.deployment.lock import ServiceBusy

    try:
        # Steps run in this process on the local orchestrator; `actor` reaches remote ones.
        with service_command(spec, "deploy", by) as recovered:
            version, outcome = run_for_version("pipelines.deployment:deployment_pipeline", spec, version,
                                               strategy=strategy, actor=by)
    except ServiceBusy as busy:
        return DeploymentResult(None, error=str(busy))
    if version is None:
        return DeploymentResult(None, error=outcome, recovered=recovered)
    return DeploymentResult(version, run_name=outcome.run.name, recovered=recovered,
                            evidence=outcome.run.steps["rollout_step"].outputs[Artifact.ROLLOUT_EVIDENCE][0].load())


@dataclass
class RollbackResult:
    """What `rollback_production` came to: `restored` serves all traffic at `url` and is production,
    `replaced` archived; or `error` and nothing changed in ZenML. `recovered`: what was done first
    about an interrupted rollout."""

    replaced: Optional[int] = None
    restored: Optional[int] = None
    url: Optional[str] = None
    error: Optional[str] = None
    recovered: Optional[str] = None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else 1


def rollback_production(spec: Spec, by: Optional[str] = None) -> RollbackResult:
    """Serve the previous production version again (bundle, routing, a running service answering
    with it), and only then make it production; change nothing in ZenML otherwise. Holds the
    service's lock; an interrupted rollout is finished first."""
    from keel.deployment.lock import ServiceBusy

    try:
        with service_command(spec, "rollback", by) as recovered:
            result = _roll_back(spec, by)
    except ServiceBusy as busy:
        return RollbackResult(error=str(busy))
    result.recovered = recovered
    return result


def _roll_back(spec: Spec, by: Optional[str]) -> RollbackResult:
    from keel.deployment.deploy import deployment_folder, serve_only
    from keel.deployment.recovery import local_trail
    from keel.deployment.server import ServiceNotAnswering
    from keel.deployment.service_settings import SettingsChangeFailed
    from keel.governance.audit import record_event
    from keel.governance.events import routing_recorder
    from keel.registration import DEPLOYMENT
    from keel.registry import (evaluation_outcome, get_model_version_metadata, load_version_model,
                               production_version, promote_to_production, record_deployment, version_artifacts)

    name = spec.problem.name
    current = production_version(name)
    if current is None:
        return RollbackResult(error=f"keel: '{name}' has no production version to roll back")
    previous = (get_model_version_metadata(name, current).get(DEPLOYMENT) or {}).get("archived")
    if previous is None:
        return RollbackResult(current, error=f"keel: v{current} replaced no earlier production version; "
                                             "nothing to roll back to")
    folder = deployment_folder(spec)
    record_routing = routing_recorder(name, current, None, folder, actor=by)  # the version rolled back
    versions = (previous, current)  # the current one stays loaded until the routing has switched
    models = {v: load_version_model(name, v) for v in versions}
    thresholds = {v: float(evaluation_outcome(name, v)["threshold"]) for v in versions}
    validation = version_artifacts(name, previous, [Artifact.VALIDATION])[Artifact.VALIDATION].load()
    try:
        url = serve_only(spec, previous, models, thresholds, validation, f"manual rollback from v{current}",
                         on_routing=record_routing, champion=current,
                         promote=lambda: promote_to_production(name, previous),
                         on_event=lambda event, details: record_event(event, name, previous, actor=by, details=details),
                         trail=local_trail(name))
    except (ServiceNotAnswering, SettingsChangeFailed) as error:
        return RollbackResult(current, previous, error=f"keel: rollback to v{previous} failed; v{current} "
                                                       f"stays production.\n{error}")
    record_deployment(name, previous, {"outcome": "restored by rollback", "replaced": current,
                                       "serving": previous, "url": url, "by": by})
    return RollbackResult(current, previous, url)


@dataclass
class ServingSetup:
    """The production version bundled alone in its deployment folder, ready for a foreground service.
    `recovered`: what was done first about an interrupted rollout."""

    version: Optional[int] = None
    folder: Optional[Path] = None
    error: Optional[str] = None
    recovered: Optional[str] = None


def prepare_serving(spec: Spec, recovered: Optional[str] = None) -> ServingSetup:
    """Bundle the production version alone (all traffic to it) and record that routing. The caller
    holds the service's lock (`service_command`), which finished an interrupted rollout: `recovered`."""
    from keel.deployment.bundle import write_bundle
    from keel.deployment.deploy import contract_refusal, deployment_folder, prediction_log_url
    from keel.governance.events import routing_recorder
    from keel.registry import evaluation_outcome, load_version_model, production_version, version_artifacts
    from keel.serving.routing import Arm, RoutingTable

    name = spec.problem.name
    version = production_version(name)
    if version is None:
        return ServingSetup(error=f"keel: '{name}' has no production version yet: python run.py deploy",
                            recovered=recovered)
    # The service validates requests and decides with this spec: it must be the contract the version was judged under.
    refusal = contract_refusal(version, evaluation_outcome(name, version), spec)
    if refusal is not None:
        return ServingSetup(version, error=f"keel: serve refused: {refusal}", recovered=recovered)
    folder = deployment_folder(spec)
    validation = version_artifacts(name, version, [Artifact.VALIDATION])[Artifact.VALIDATION].load()
    table = RoutingTable([Arm("champion", version, 1.0)], strategy="serve", salt=spec.deployment.salt)
    write_bundle(folder, spec, {version: load_version_model(name, version)},
                 {version: float(evaluation_outcome(name, version)["threshold"])},
                 table, prediction_log_url(spec), validation[spec.data.model_features], spec.deployment.api_key_env)
    routing_recorder(name, version, None, folder)(table)
    return ServingSetup(version, folder, recovered=recovered)


@contextlib.contextmanager
def acting_as(by: Optional[str]):
    """Attribute every audit record written meanwhile (stage changes, outcomes) to `by`: the audit
    trail resolves its actor from $KEEL_ACTOR when a call names none."""
    from keel.governance.audit import ACTOR_ENV

    if not by:
        yield
        return
    before = os.environ.get(ACTOR_ENV)
    os.environ[ACTOR_ENV] = by
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ACTOR_ENV, None)
        else:
            os.environ[ACTOR_ENV] = before


def _plain(value, integer: bool = False):
    """A frame's cell as JSON has it: missing -> null, NumPy scalars -> Python, whole integers as ints."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def example_record(spec: Spec, frame) -> dict:
    """A real record the service accepts, from `frame` (a version's validation split): its model features
    and its entity id, under the spec's id column when the split holds one (the service takes it as the
    entity id). LookupError when none of the first rows meets the request contract."""
    from pydantic import ValidationError

    from keel.serving.payload import record_model
    from keel.spec.data import NumericFeature

    contract = record_model(spec.data)
    id_column = spec.data.id_column if spec.data.id_column in frame.columns else None
    for position in range(min(len(frame), EXAMPLE_ROWS)):
        row = frame.iloc[position]
        record = {name: _plain(row[name], isinstance(spec.data.features[name], NumericFeature)
                               and spec.data.features[name].type == "integer")
                  for name in spec.data.model_features}
        if id_column:
            record[id_column] = _plain(row[id_column])
        else:
            record["entity_id"] = f"example-{frame.index[position]}"
        try:
            contract.model_validate(record)
        except ValidationError:
            continue
        return record
    raise LookupError(f"none of the first {min(len(frame), EXAMPLE_ROWS)} validation rows meets the request contract")


def validation_frame(spec: Spec, version: Optional[int] = None):
    """The validation split `version` was trained with (default: the production version's)."""
    from keel.registry import production_version, version_artifacts

    version = version if version is not None else production_version(spec.problem.name)
    if version is None:
        raise LookupError(f"'{spec.problem.name}' has no production version")
    return version_artifacts(spec.problem.name, version, [Artifact.VALIDATION])[Artifact.VALIDATION].load()

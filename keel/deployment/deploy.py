"""Deploy a version that passed evaluation: bundle it beside the champion, make sure the service
answers, roll out by the spec's strategy, and settle the routing by the outcome and the approval."""

from __future__ import annotations

import functools
import json
import os
import uuid
from pathlib import Path
from typing import Callable, Dict, Optional

import pandas as pd

from keel.deployment.bundle import write_bundle
from keel.deployment.rollout import ControllerLost, RolloutController, RolloutEvidence, replay_probe, run_rollout
from keel.deployment.server import ServiceNotAnswering, post_json, service_url, stop_service
from keel.deployment.service_settings import Check, Event, SettingsChangeFailed, install_bundle
from keel.deployment.strategies import champion_only, rollout_stages, stages_before_approval
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import Arm, RoutingTable
from keel.serving.layout import ROUTING_FILE
from keel.spec.models import Spec


class NotDeployable(RuntimeError):
    pass


def deployment_folder(spec: Spec) -> Path:
    return (Path(spec.deployment.folder) / spec.problem.name).resolve()


def prediction_log_url(spec: Spec) -> str:
    return spec.deployment.prediction_log_url or f"sqlite:///{deployment_folder(spec) / 'predictions.db'}"


def check_deployable(version: int, evaluation: Optional[dict], spec: Optional[Spec] = None) -> None:
    """Only a version whose latest evaluation finished with a deployable decision may be rolled out:
    of the scores keel serves (not recalibrated ones) and, given the `spec` it is served under, against
    that spec's gates."""
    from keel.evaluation.gates import INCOMPLETE, describe_decision, is_deployable
    from keel.evaluation.record import applied_gates

    if evaluation is None:
        raise NotDeployable(f"v{version} has not been evaluated: python run.py evaluate --model-version {version}")
    if is_deployable(evaluation):
        method = evaluation.get("calibration", "none")
        if method != "none":
            # The threshold and gates judged the recalibrated scores; the service and batch scoring
            # score with the version's model as trained, so they would decide otherwise.
            raise NotDeployable(
                f"v{version} was evaluated on {method}-recalibrated scores, which keel's service and batch scoring "
                "do not serve (they score with the model as trained): its decisions would not be the ones evaluated; "
                f"evaluate it with evaluation.calibration.method: none to deploy it")
        changed = contract_refusal(version, evaluation, spec) if spec is not None else None
        if changed:
            raise NotDeployable(changed)
        if spec is not None and evaluation.get("applied_gates") not in (None, applied_gates(spec.evaluation)):
            raise NotDeployable(
                f"v{version} was evaluated against other gates than this spec declares ({_gates(evaluation['applied_gates'])}"
                f" then; {_gates(applied_gates(spec.evaluation))} now); evaluate it under this spec: "
                f"python run.py evaluate --model-version {version}")
        return
    if evaluation.get("decision") == INCOMPLETE or not evaluation.get("complete"):
        raise NotDeployable(f"v{version}'s latest evaluation is not complete ({describe_decision(evaluation)}"
                            f"{'' if evaluation.get('decision') == INCOMPLETE else '; recorded before keel judged completeness'}); "
                            f"evaluate it again: python run.py evaluate --model-version {version}")
    raise NotDeployable(f"v{version} failed its gates ({'; '.join(evaluation.get('failed', []))}); "
                        "only versions that passed evaluation are deployable")


def contract_refusal(version: int, evaluation: Optional[dict], spec: Spec) -> Optional[str]:
    """Why `version` may not be released or served under `spec`'s release contract (None if it may):
    the spec changes what its latest evaluation judged (keel.evaluation.record.release_contract)."""
    from keel.evaluation.record import contract_changes

    changed = contract_changes((evaluation or {}).get("contract"), spec)
    if not changed:
        return None
    return (f"this spec changes {' and '.join(changed)} from what v{version} was evaluated under"
            f"{evaluated_contract_detail(evaluation, spec)}: what it decides, for whom and under whose approval "
            f"would not be what was judged; use the spec it was evaluated with, or evaluate it under this one: "
            f"python run.py evaluate --model-version {version}")


def evaluated_contract_detail(evaluation: dict, spec: Spec) -> str:
    """" (key: then -> now; ...)" naming what changed, from the spec the evaluation run recorded; empty
    when that spec cannot be read back (the sections changed are named either way)."""
    from keel.evaluation.record import contract_key_changes
    from keel.lifecycle.reproduction import recorded_spec
    from keel.spec import SpecError, validate_spec

    try:
        raw = recorded_spec(evaluation["run_id"]) if evaluation.get("run_id") else None
        changes = contract_key_changes(validate_spec(raw, "the evaluation run's spec"), spec) if raw else []
    except (SpecError, LookupError, KeyError, ValueError, RuntimeError):  # a run the store no longer holds
        changes = []
    return f" ({'; '.join(changes)})" if changes else ""


def _gates(gates: list) -> str:
    return ", ".join(f"{g['key']}{'' if g['min'] is None else ' >= %g' % g['min']}"
                     f"{'' if g['max'] is None else ' <= %g' % g['max']}" for g in gates) or "no gates"


def request_columns(spec: Spec, models: Dict[int, object]) -> list:
    """What keel's own requests send: the model features, plus the sensitive attributes a bundled
    (mitigated) version decides with, so probes reach that version as real traffic would."""
    decided_with = sorted({a for model in models.values() for a in getattr(model, "decision_attributes_", ())})
    return [*spec.data.model_features, *[a for a in decided_with if a not in spec.data.model_features]]


def approved(spec: Spec, approval: Optional[dict]) -> bool:
    rule = spec.deployment.approval
    return (not rule.required) or rule.auto_approve or bool(approval)


def api_key_headers(spec: Spec) -> dict:
    """The header keel's own requests (probes, checks) need when the spec asks for an API key."""
    key_env = spec.deployment.api_key_env
    key = os.environ.get(key_env) if key_env else None
    return {"X-API-Key": key} if key else {}


def controller_name(command: str) -> str:
    """Who runs a rollout, for the state file and the messages that name it."""
    import socket

    from keel.deployment.lock import user

    return f"{command} by {user()}@{socket.gethostname()}"


def answers_with(spec: Spec, version: int, record: dict) -> Check:
    """The check of a server: it answers `record` with `version`, and without the key it refuses."""

    def check(url: str) -> Optional[str]:
        answered = served_version(url, record, api_key_headers(spec))
        if answered != version:
            return f"it answers with {'v' + str(answered) if answered else 'no prediction'}, not v{version}"
        if api_key_headers(spec):
            status, _ = post_json(f"{url}/predict", record)
            if status != 401:
                return f"it answers {status}, not 401, to a request without the API key"
        return None

    return check


def live_version(folder: Path) -> Optional[int]:
    """The version the folder's routing gives most traffic (None when nothing was ever routed)."""
    path = Path(folder) / ROUTING_FILE
    if not path.exists():
        return None
    return max(RoutingTable.from_dict(json.loads(path.read_text())).arms, key=lambda arm: arm.weight).version


def first_record(spec: Spec, models: Dict[int, object], rows: pd.DataFrame) -> dict:
    columns = [c for c in request_columns(spec, models) if c in rows.columns]
    return json.loads(rows[columns].iloc[[0]].to_json(orient="records"))[0]


def deploy(spec: Spec, version: int, champion: Optional[int], models: Dict[int, object],
           thresholds: Dict[int, float], probe_rows: pd.DataFrame, approval: Optional[dict], *,
           background: pd.DataFrame, on_routing: Callable[[RoutingTable], None] = lambda table: None,
           promote: Callable[[], Optional[int]] = lambda: None,
           on_event: Event = lambda event, details: None, trail: Optional[str] = None,
           already_production: bool = False) -> RolloutEvidence:
    """Roll `version` out against `champion` (None for a first deployment); return the evidence.
    `on_routing` is told of every routing table written (the audit trail records it). `background`:
    the version's validation split, whose first `governance.explanation_background_rows` rows the
    service explains linear models against (as `serve`, `rollback` and `run.py explain` do); never
    the probe rows (test data). `promote` makes the version production in the registry (returns the version
    it archived); `on_event` records a service settings change or its failure; `trail`: the model's
    audit trail when it is a local folder, where the service records taking the rollout over;
    `already_production`: the version was production before this deployment (a redeploy), and stays.

    The rollout state is persisted (RolloutController): killed at any point, the service settles the
    routing within `deployment.controller_timeout_seconds` (back to the champion, or all to the
    challenger once it is being promoted) and the next command settles the registry the same way."""
    folder = deployment_folder(spec)
    url = service_url(spec.deployment.host, spec.deployment.port)
    if champion is None and not approved(spec, approval):
        # Nothing to fall back to: an unapproved first version serves no one.
        return {"outcome": "awaiting approval", "stages": [], "serving": None, "challenger": version,
                "champion": None, "strategy": "all-at-once", "url": url}
    start = RoutingTable([Arm("champion", champion, 1.0)] if champion is not None else [Arm("challenger", version, 1.0)],
                         strategy="before rollout", salt=spec.deployment.salt)
    # Before the first stage only the champion serves (or, first time, the approved challenger):
    # a routing table left by an earlier, rolled-back rollout may name a version not in this bundle.
    bundle = functools.partial(write_bundle, spec=spec, models=models, thresholds=thresholds, routing=start,
                               prediction_log_url=prediction_log_url(spec),
                               background=background[spec.data.model_features], api_key_env=spec.deployment.api_key_env)
    strategy = spec.deployment.strategy if champion is not None else "all-at-once"
    facts = {"strategy": strategy, "url": url, "challenger": version, "champion": champion,
             "redeploy": already_production}
    with RolloutController(folder, version, champion, spec.deployment.controller_timeout_seconds,
                           controller_name("deploy"), spec.problem.name, trail) as controller:
        if already_production:
            # Production before this deployment (a redeploy): already committed to it, so a silent
            # controller leaves it all the traffic, as the registry says.
            controller.promoting()
        try:
            install_bundle(spec, folder, bundle, answers_with(spec, start.arms[0].version,
                                                               first_record(spec, models, background)), on_event)
        except SettingsChangeFailed as error:
            controller.finish("settings change failed")
            return {"outcome": "settings change failed", "stages": [], "serving": live_version(folder),
                    "reason": str(error), **facts}
        on_routing(start)
        # A first version takes the traffic before the registry makes it production: killed before
        # that commit point, the service routes nothing (no champion to return to) and the registry
        # still says staging; after it, the version is production and keeps the traffic.
        result = _roll_out(spec, controller, version, champion, models, probe_rows, approval, url, on_routing, promote)
        if champion is None and not already_production and result["outcome"] == "rolled back":
            stop_service(folder)  # an unhealthy first version: not promoted, nothing serves
    result.update(facts)
    return result


def _roll_out(spec: Spec, controller: RolloutController, version: int, champion: Optional[int],
              models: Dict[int, object], probe_rows: pd.DataFrame, approval: Optional[dict], url: str,
              on_routing: Callable[[RoutingTable], None], promote: Callable[[], Optional[int]]) -> RolloutEvidence:
    """The stages, then the approval check and the promotion (registry first, routing after)."""
    folder = controller.folder
    log = PredictionLog(prediction_log_url(spec))
    stages = rollout_stages(spec.deployment, version, champion)
    if champion is not None and not approved(spec, approval):
        # Unapproved, the challenger may be tried on part of the traffic (or a mirror of it) but
        # never take all of it: the approval check below then returns everything to the champion.
        stages = stages_before_approval(stages, version, champion)
    probe = replay_probe(url, probe_rows[request_columns(spec, models)],
                         functools.partial(post_json, headers=api_key_headers(spec)))
    result = run_rollout(folder, stages, spec.deployment, log, version, champion, probe,
                         probe_labels=probe_rows[spec.data.target.column].astype(int).tolist(),
                         values=spec.evaluation.value_matrix, on_routing=on_routing, write=controller.write)
    if result["outcome"] != "completed":
        if "reason" not in result:  # not abandoned: the controller rolled back itself
            controller.finish(result["outcome"])
        return result
    try:
        if not approved(spec, approval):  # only with a champion: an unapproved first version never got here
            controller.finish("awaiting approval", waiting := champion_only(champion, spec.deployment.salt,
                                                                            "awaiting approval"))
            on_routing(waiting)
            result.update(outcome="awaiting approval", serving=champion)
            return result
        # The commit point, registry first: killed from here on, the rollout is completed, by the
        # service (the challenger keeps all traffic) and by the next command (keel.deployment.recovery).
        controller.promoting()
    except ControllerLost as lost:
        return {"outcome": "rolled back", "stages": result["stages"], "serving": champion, "reason": str(lost)}
    archived = promote()
    # Promoted: the version is now the champion (the prediction log's arm says so from here on).
    final = RoutingTable([Arm("champion", version, 1.0)], strategy="promoted", step="100%", salt=spec.deployment.salt)
    try:
        controller.finish("promoted", final)
        on_routing(final)
    except ControllerLost:  # the service took over while promoting: the challenger keeps all traffic, recorded
        pass
    result.update(outcome="promoted", serving=version, approval=approval or "auto-approved by the spec", archived=archived)
    return result


def served_version(url: str, record: dict, headers: dict) -> Optional[int]:
    """The model version the service answers one record with (None if it does not answer 200)."""
    try:
        status, body = post_json(f"{url}/predict", {**record, "entity_id": f"check-{uuid.uuid4().hex[:12]}"},
                                 headers=headers)
    except (OSError, ValueError):  # refused, timed out, or not a JSON answer: not serving
        return None
    return body["predictions"][0]["model_version"] if status == 200 else None


def serve_only(spec: Spec, version: int, models: Dict[int, object], thresholds: Dict[int, float],
               background: pd.DataFrame, reason: str,
               on_routing: Callable[[RoutingTable], None] = lambda table: None, champion: Optional[int] = None,
               promote: Callable[[], object] = lambda: None, on_event: Event = lambda event, details: None,
               trail: Optional[str] = None) -> str:
    """Bundle `models` (`version` and any still routed, so no request meets an unloaded version while
    the routing changes), route all traffic to `version`, start the service if none answers, check it
    answers with `version`, and only then `promote` it; returns the URL. A running service reloads the
    bundle on its next request (it watches deployment.json), so no restart is needed unless the
    service settings changed (keel.deployment.service_settings).

    A rollout of its own, with its state persisted: `champion` (the version being replaced) is what the
    service returns to if this controller goes silent, and what serves again when the check fails
    (ServiceNotAnswering, or SettingsChangeFailed with the previous settings live)."""
    folder = deployment_folder(spec)
    table = champion_only(version, spec.deployment.salt, reason)
    bundle = functools.partial(write_bundle, spec=spec, models=models, thresholds=thresholds, routing=table,
                               prediction_log_url=prediction_log_url(spec),
                               background=background[spec.data.model_features], api_key_env=spec.deployment.api_key_env)
    check = answers_with(spec, version, first_record(spec, models, background))
    with RolloutController(folder, version, champion, spec.deployment.controller_timeout_seconds,
                           controller_name("rollback"), spec.problem.name, trail) as controller:
        try:
            url = install_bundle(spec, folder, bundle, check, on_event)
            on_routing(table)
            problem = check(url)
            if problem:
                raise ServiceNotAnswering(f"the service at {url}: {problem}")
        except (ServiceNotAnswering, SettingsChangeFailed):
            back = champion_only(champion, spec.deployment.salt, "rollback failed") if champion is not None else None
            controller.finish("failed", back)
            if back is not None:
                on_routing(back)
            raise
        controller.promoting()
        promote()
        controller.finish("restored")
    return url

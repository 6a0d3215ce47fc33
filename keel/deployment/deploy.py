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

from keel.deployment.bundle import write_bundle, write_routing
from keel.deployment.rollout import replay_probe, run_rollout
from keel.deployment.server import ServiceNotAnswering, is_ready, post_json, service_url, start_service
from keel.deployment.strategies import champion_only, rollout_stages, stages_before_approval
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import Arm, RoutingTable
from keel.spec.models import Spec


class NotDeployable(RuntimeError):
    pass


def deployment_folder(spec: Spec) -> Path:
    return (Path(spec.deployment.folder) / spec.problem.name).resolve()


def prediction_log_url(spec: Spec) -> str:
    return spec.deployment.prediction_log_url or f"sqlite:///{deployment_folder(spec) / 'predictions.db'}"


def check_deployable(version: int, evaluation: Optional[dict]) -> None:
    """Only a version whose latest evaluation finished with a deployable decision may be rolled out."""
    from keel.evaluation.gates import INCOMPLETE, describe_decision, is_deployable

    if evaluation is None:
        raise NotDeployable(f"v{version} has not been evaluated: python run.py evaluate --model-version {version}")
    if is_deployable(evaluation):
        return
    if evaluation.get("decision") == INCOMPLETE or not evaluation.get("complete"):
        raise NotDeployable(f"v{version}'s latest evaluation is not complete ({describe_decision(evaluation)}"
                            f"{'' if evaluation.get('decision') == INCOMPLETE else '; recorded before keel judged completeness'}); "
                            f"evaluate it again: python run.py evaluate --model-version {version}")
    raise NotDeployable(f"v{version} failed its gates ({'; '.join(evaluation.get('failed', []))}); "
                        "only versions that passed evaluation are deployable")


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


def ensure_service(spec: Spec, folder: Path) -> str:
    url = service_url(spec.deployment.host, spec.deployment.port)
    if not is_ready(url):
        start_service(folder, spec.deployment.host, spec.deployment.port)
    return url


def deploy(spec: Spec, version: int, champion: Optional[int], models: Dict[int, object],
           thresholds: Dict[int, float], probe_rows: pd.DataFrame, approval: Optional[dict],
           on_routing: Callable[[RoutingTable], None] = lambda table: None,
           background: Optional[pd.DataFrame] = None) -> dict:
    """Roll `version` out against `champion` (None for a first deployment); return the evidence.
    `on_routing` is told of every routing table written (the audit trail records it). `background`:
    the version's validation split, whose first `governance.explanation_background_rows` rows the
    service explains linear models against (as `serve`, `rollback` and `run.py explain` do); without
    it, the probe rows."""
    folder = deployment_folder(spec)
    if champion is None and not approved(spec, approval):
        # Nothing to fall back to: an unapproved first version serves no one.
        return {"outcome": "awaiting approval", "stages": [], "serving": None, "challenger": version,
                "champion": None, "strategy": "all-at-once", "url": service_url(spec.deployment.host, spec.deployment.port)}
    start = RoutingTable([Arm("champion", champion, 1.0)] if champion is not None else [Arm("challenger", version, 1.0)],
                         strategy="before rollout", salt=spec.deployment.salt)
    # Before the first stage only the champion serves (or, first time, the approved challenger):
    # a routing table left by an earlier, rolled-back rollout may name a version not in this bundle.
    reference = probe_rows if background is None else background
    write_bundle(folder, spec, models, thresholds, start, prediction_log_url(spec),
                 reference[spec.data.model_features], spec.deployment.api_key_env)
    on_routing(start)
    url = ensure_service(spec, folder)
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
                         values=spec.evaluation.value_matrix, on_routing=on_routing)
    result.update(strategy=spec.deployment.strategy if champion is not None else "all-at-once", url=url,
                  challenger=version, champion=champion)
    if result["outcome"] != "completed":
        return result
    if not approved(spec, approval):
        if champion is not None:
            write_routing(folder, waiting := champion_only(champion, spec.deployment.salt, "awaiting approval"))
            on_routing(waiting)
        result.update(outcome="awaiting approval", serving=champion)
        return result
    # Promoted: the version is now the champion (the prediction log's arm says so from here on).
    write_routing(folder, final := RoutingTable([Arm("champion", version, 1.0)], strategy="promoted", step="100%",
                                                salt=spec.deployment.salt))
    on_routing(final)
    result.update(outcome="promoted", serving=version, approval=approval or "auto-approved by the spec")
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
               on_routing: Callable[[RoutingTable], None] = lambda table: None) -> str:
    """Bundle `models` (`version` and any still routed, so no request meets an unloaded version while
    the routing changes), route all traffic to `version`, start the service if none answers, and
    check it answers with `version`; returns the URL or raises ServiceNotAnswering. A running service
    reloads the bundle on its next request (it watches deployment.json), so no restart is needed."""
    folder = deployment_folder(spec)
    table = champion_only(version, spec.deployment.salt, reason)
    features = background[spec.data.model_features]
    write_bundle(folder, spec, models, thresholds, table, prediction_log_url(spec), features,
                 spec.deployment.api_key_env)
    on_routing(table)
    url = ensure_service(spec, folder)
    columns = [c for c in request_columns(spec, models) if c in background.columns]
    record = json.loads(background[columns].iloc[[0]].to_json(orient="records"))[0]
    answered = served_version(url, record, api_key_headers(spec))
    if answered != version:
        raise ServiceNotAnswering(f"the service at {url} answers with "
                                  f"{'v' + str(answered) if answered else 'no prediction'}, not v{version}")
    return url

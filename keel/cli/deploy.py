"""`run.py deploy | serve | rollback | approve`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Optional

from keel.cli.console import fail, say
from keel.spec.models import Spec


EXAMPLE_ROWS = 200  # validation rows tried for one the request contract accepts


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
    from keel.spec.models import NumericFeature

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


def curl_example(url: str, spec: Spec, record: dict) -> str:
    """A `curl` command for a POSIX shell that posts `record` to the service: every argument quoted (a
    record's text may hold an apostrophe), the API key read from its environment variable."""
    import json
    import re
    import shlex

    body = json.dumps(record, allow_nan=False)
    words = ["curl", "-s", "-X", "POST", f"{url}/predict", "-H", "Content-Type: application/json", "-d", body]
    curl = " ".join(shlex.quote(word) for word in words)
    # The key header when the service wants one; the key itself stays in the environment variable.
    variable = spec.deployment.api_key_env
    if not variable:
        return curl
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
        return f'{curl} -H "X-API-Key: ${variable}"'
    return f"{curl} -H {shlex.quote(f'X-API-Key: <the key in the environment variable {variable}>')}"


def validation_frame(spec: Spec, version: Optional[int] = None):
    """The validation split `version` was trained with (default: the production version's)."""
    from keel.registry import production_version, version_artifacts

    version = version if version is not None else production_version(spec.problem.name)
    if version is None:
        raise LookupError(f"'{spec.problem.name}' has no production version")
    return version_artifacts(spec.problem.name, version, ["validation"])["validation"].load()


def try_it(url: str, spec: Spec, version: Optional[int] = None) -> str:
    """The `curl` example with a record of `version`'s validation split (default: the production
    version's), or why there is none."""
    try:
        return curl_example(url, spec, example_record(spec, validation_frame(spec, version)))
    except (LookupError, KeyError, ValueError, OSError) as error:
        return f"(no example record: {error})"


def deploy(spec: Spec, version: Optional[int], strategy: Optional[str], by: Optional[str] = None) -> int:
    say(f"keel: deploying '{spec.problem.name}' (loading ZenML takes a few seconds) ...")
    from keel.cli.pipeline_runs import run_for_version

    with acting_as(by):  # steps run in this process on the local orchestrator; `actor` reaches remote ones
        version, outcome = run_for_version("pipelines.deployment:deployment_pipeline", spec, version,
                                           strategy=strategy, actor=by)
    if version is None:
        return fail(outcome, 1)
    result = outcome.run.steps["rollout_step"].outputs["rollout_evidence"][0].load()
    say()
    say(f"deployment run: {outcome.run.name}")
    say(f"rollout of v{version} ({result['strategy']}) against "
        f"{'v' + str(result['champion']) if result['champion'] else 'no champion'}: {result['outcome']}")
    for stage in result["stages"]:
        health = "healthy" if stage["healthy"] else "BREACH: " + "; ".join(stage["breaches"])
        say(f"  stage {stage['stage']} {stage['step']:>18}: {stage['challenger']['requests']} challenger requests, "
            f"{stage['challenger']['errors']} errors -> {health}")
    if result["serving"] is not None:
        say(f"now serving:    v{result['serving']} at {result['url']}")
        say(f"try it:         {try_it(result['url'], spec, result['serving'])}")
    if result["outcome"] == "awaiting approval":
        say(f"approve with:   python run.py approve --model {spec.problem.name} --version {version} "
            "--by YOU --reason TICKET, then deploy again")
    return 0 if result["outcome"] in ("promoted", "awaiting approval") else 1


def approve(spec: Spec, model: str, version: int, by: str, reason: str) -> int:
    from keel.registry import evaluation_outcome, record_approval, resolve_version

    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return fail(f"keel: {error}", 1)
    from keel.deployment.deploy import NotDeployable, check_deployable

    try:
        check_deployable(version, evaluation_outcome(model, version))
    except NotDeployable as error:
        return fail(f"keel: {model} {error}; it cannot be approved for production", 1)
    approval = record_approval(model, version, by, reason)
    say(f"approved {model} v{version} by {approval['by']} at {approval['at']}: {approval['reason']}")
    return 0


def serve(spec: Spec, port: Optional[int]) -> int:
    """Serve the production version in the foreground (Ctrl+C stops it)."""
    import os

    from keel.deployment.bundle import write_bundle
    from keel.deployment.deploy import deployment_folder, prediction_log_url
    from keel.provenance import PROJECT_ROOT
    from keel.registry import evaluation_outcome, load_version_model, production_version, version_artifacts
    from keel.serving.routing import Arm, RoutingTable

    name = spec.problem.name
    version = production_version(name)
    if version is None:
        return fail(f"keel: '{name}' has no production version yet: python run.py deploy", 1)
    folder = deployment_folder(spec)
    background = version_artifacts(name, version, ["validation"])["validation"].load()[spec.data.model_features]
    write_bundle(folder, spec, {version: load_version_model(name, version)},
                 {version: float(evaluation_outcome(name, version)["threshold"])},
                 table := RoutingTable([Arm("champion", version, 1.0)], strategy="serve", salt=spec.deployment.salt),
                 prediction_log_url(spec), background, spec.deployment.api_key_env)
    from keel.governance.events import routing_recorder
    routing_recorder(name, version, None, folder)(table)
    port = port or spec.deployment.port
    say(f"serving {name} v{version} on http://{spec.deployment.host}:{port} (Ctrl+C to stop)")
    env = {**os.environ, "KEEL_DEPLOYMENT_DIR": str(folder), "PYTHONPATH": str(PROJECT_ROOT)}
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    return subprocess.call([bentoml, "serve", "serving.service:KeelService", "--host", spec.deployment.host,
                            "--port", str(port)], cwd=PROJECT_ROOT, env=env)


def rollback(spec: Spec, by: Optional[str] = None) -> int:
    """Serve the previous production version again (bundle, routing, a running service answering
    with it), and only then make it production; exit 1 and change nothing in ZenML otherwise."""
    from keel.deployment.bundle import write_routing
    from keel.deployment.deploy import deployment_folder, serve_only
    from keel.deployment.server import ServiceNotAnswering
    from keel.deployment.strategies import champion_only
    from keel.governance.events import routing_recorder
    from keel.registry import (evaluation_outcome, get_model_version_metadata, load_version_model,
                               production_version, promote_to_production, record_deployment, version_artifacts)

    name = spec.problem.name
    current = production_version(name)
    if current is None:
        return fail(f"keel: '{name}' has no production version to roll back", 1)
    previous = (get_model_version_metadata(name, current).get("deployment") or {}).get("archived")
    if previous is None:
        return fail(f"keel: v{current} replaced no earlier production version; nothing to roll back to", 1)
    folder = deployment_folder(spec)
    record_routing = routing_recorder(name, current, None, folder, actor=by)  # the version rolled back
    versions = (previous, current)  # the current one stays loaded until the routing has switched
    models = {v: load_version_model(name, v) for v in versions}
    thresholds = {v: float(evaluation_outcome(name, v)["threshold"]) for v in versions}
    background = version_artifacts(name, previous, ["validation"])["validation"].load()
    with acting_as(by):
        try:
            url = serve_only(spec, previous, models, thresholds, background, f"manual rollback from v{current}",
                             on_routing=record_routing)
        except ServiceNotAnswering as error:
            write_routing(folder, back := champion_only(current, spec.deployment.salt, "rollback failed"))
            record_routing(back)
            return fail(f"keel: rollback to v{previous} failed; v{current} stays production.\n{error}", 1)
        promote_to_production(name, previous)
        record_deployment(name, previous, {"outcome": "restored by rollback", "replaced": current,
                                           "serving": previous, "url": url, "by": by})
    say(f"rolled back: v{previous} is production and answers all traffic at {url}; v{current} is archived")
    return 0


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

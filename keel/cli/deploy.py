"""`run.py deploy | serve | rollback | approve`."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, say
from keel.spec.models import Spec


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


def try_it(url: str, spec: Spec, version: Optional[int] = None) -> str:
    """The `curl` example with a record of `version`'s validation split (default: the production
    version's), or why there is none."""
    from keel.lifecycle.deployment import example_record, validation_frame

    try:
        return curl_example(url, spec, example_record(spec, validation_frame(spec, version)))
    except (LookupError, KeyError, ValueError, OSError) as error:
        return f"(no example record: {error})"


def deploy(spec: Spec, version: Optional[int], strategy: Optional[str], by: Optional[str] = None) -> int:
    from keel.cli.authorize import authorize
    from keel.lifecycle.approval import deploy_clearance
    from keel.lifecycle.deployment import deploy_version

    announce_deployment(spec)
    authorization = authorize(spec, "deploy", by, version)
    if authorization.refused:
        return authorization.exit_code
    clearance = deploy_clearance(spec.governance, spec.problem.name, version, authorization.identity)
    if clearance.refusal is not None:
        return fail(clearance.refusal, 1)
    from keel.evaluation.mitigation import reasons_refusal
    from keel.registry import ModelUnavailable, load_version_model

    # Every unfavourable decision owes its principal reasons (data.target.favourable declared). A version
    # whose registration was interrupted is refused by deploy_version, with why.
    try:
        model = load_version_model(spec.problem.name, clearance.version)
    except ModelUnavailable as unavailable:
        return fail(f"keel: deploy refused: {unavailable}", 1)
    except LookupError:
        model = None
    refusal = reasons_refusal(model, spec.data, spec.problem.name, clearance.version) if model is not None else None
    if refusal is not None:
        return fail(refusal, 1)
    return print_deployment(spec, deploy_version(spec, clearance.version, strategy, authorization.actor))


def announce_deployment(spec: Spec) -> None:
    say(f"keel: deploying '{spec.problem.name}' (loading ZenML takes a few seconds) ...")


def print_deployment(spec: Spec, deployment) -> int:
    """Print a rollout (a keel.lifecycle.deployment.DeploymentResult); its exit code."""
    if deployment.recovered is not None:
        say(f"keel: first, {deployment.recovered}")
    if deployment.error is not None:
        return fail(deployment.error, deployment.exit_code)
    version, result = deployment.version, deployment.evidence
    say()
    say(f"deployment run: {deployment.run_name}")
    say(f"rollout of v{version} ({result['strategy']}) {rollout_counterpart(result)}: {result['outcome']}")
    for stage in result["stages"]:
        health = "healthy" if stage["healthy"] else "BREACH: " + "; ".join(stage["breaches"])
        say(f"  stage {stage['stage']} {stage['step']:>18}: {stage['challenger']['requests']} challenger requests, "
            f"{stage['challenger']['errors']} errors -> {health}")
        for note in stage.get("not_judged") or []:
            say(f"  {'':>26}  {note}")
    if result["serving"] is not None:
        say(f"now serving:    v{result['serving']} at {result['url']}")
        say(f"try it:         {try_it(result['url'], spec, result['serving'])}")
    if result["outcome"] == "awaiting approval":
        say(f"approve with:   python run.py approve --model {spec.problem.name} --version {version} "
            "--by YOU --reason TICKET, then deploy again")
    if result.get("reason"):
        say(f"why:            {result['reason']}")
    return deployment.exit_code


def rollout_counterpart(result: dict) -> str:
    """What the version was rolled out against: the champion, or why there was none."""
    if result.get("champion"):
        return f"against v{result['champion']}"
    if result.get("redeploy"):
        return "again as the production version (no other version to compare with)"
    return "against no champion (no production version before it)"


def approve(spec: Spec, model: str, version: int, by: Optional[str], reason: str) -> int:
    from keel.cli.authorize import authorize
    from keel.lifecycle.approval import approve_version

    if model != spec.problem.name:  # its governance (roles, approvals required) is declared in its own spec
        return fail(f"keel: approve: --model {model!r} is not this spec's model ({spec.problem.name!r}); approve it "
                    "under the spec that governs it (--config)", 2)
    authorization = authorize(spec, "approve", by, version)
    if authorization.refused:
        return authorization.exit_code
    if by is None and authorization.identity is None:  # as before roles: $KEEL_ACTOR, else the ZenML user
        from keel.governance.audit import resolve_actor

        by = resolve_actor(None)
    result = approve_version(model, version, by, reason, spec.governance, authorization.identity)
    if result.error is not None:
        return fail(result.error, 1)
    approval = result.approval
    who = approval['by'] if authorization.identity is None else f"{authorization.identity.actor} ({approval['by']})"
    say(f"approved {model} v{result.version} by {who} at {approval['at']}: {approval['reason']}")
    say(f"  on evaluation run {approval['evaluation_run']}, gate results sha256 {approval['gates_digest'][:16]}")
    if result.status is not None:
        say(f"  {result.status.summary()}: {'APPROVED for production' if result.status.approved else 'not yet approved'}")
    return 0


def serve(spec: Spec, port: Optional[int]) -> int:
    """Serve the production version in the foreground (Ctrl+C stops it), holding the service's lock
    all the while; an interrupted rollout is finished first."""
    from keel.deployment.lock import ServiceBusy
    from keel.deployment.server import ServiceNotAnswering, serve_foreground
    from keel.lifecycle.deployment import prepare_serving, service_command

    try:
        with service_command(spec, "serve", port=port) as recovered:
            setup = prepare_serving(spec, recovered)
            if setup.recovered is not None:
                say(f"keel: first, {setup.recovered}")
            if setup.error is not None:
                return fail(setup.error, 1)
            return serve_foreground(setup.folder, spec.deployment.host, port or spec.deployment.port,
                                    lambda url: say(f"serving {spec.problem.name} v{setup.version} on {url} (Ctrl+C to stop)"))
    except ServiceBusy as busy:
        return fail(str(busy), 1)
    except ServiceNotAnswering as failed:  # it did not start, or (PortTaken) its port was taken meanwhile
        return fail(f"keel: {failed}", 1)


def rollback(spec: Spec, by: Optional[str] = None, break_glass: Optional[str] = None) -> int:
    """Serve the previous production version again, and only then make it production; exit 1 and
    change nothing in ZenML otherwise. With roles, the version restored must be approved now, unless
    an operator breaks the glass (`break_glass`: the reason), which is recorded as such."""
    from keel.cli.authorize import authorize
    from keel.lifecycle.approval import rollback_clearance
    from keel.lifecycle.deployment import rollback_production

    authorization = authorize(spec, "rollback", by)
    if authorization.refused:
        return authorization.exit_code
    clearance = rollback_clearance(spec.governance, spec.problem.name, authorization.identity, authorization.actor,
                                   break_glass, spec=spec)
    if clearance.broke_glass:
        say(f"keel: BREAK-GLASS rollback to v{clearance.version} by {authorization.actor or by or 'this user'}: "
            f"{break_glass} (recorded in the audit trail)")
    elif clearance.refusal is not None:
        return fail(clearance.refusal, 1)
    result = rollback_production(spec, authorization.actor)
    if result.recovered is not None:
        say(f"keel: first, {result.recovered}")
    if result.error is not None:
        return fail(result.error, result.exit_code)
    say(f"rolled back: v{result.restored} is production and answers all traffic at {result.url}; "
        f"v{result.replaced} is archived")
    return 0

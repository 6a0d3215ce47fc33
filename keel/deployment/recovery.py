"""Finishing an interrupted rollout: what the next `deploy`, `rollback` or `serve` does first.

A controller killed mid-rollout leaves its state in `rollout.json` (keel.serving.rollout_state); the
service has settled the routing once the controller went silent, or will. The next command (holding
the service lock, so that controller is surely gone) settles routing and registry on the same answer
as the service: a rollout still in progress is rolled back to the champion (made production again if
the kill fell inside the registry's archive-then-promote); a first version's rollout still in progress
(not yet production: nothing to return to) is stopped, nothing routed; a rollout that was promoting
(every stage healthy: the commit point) is completed, the challenger made production if the kill came
before the registry did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from keel.serving import rollout_state
from keel.serving.rollout_state import RolloutState
from keel.spec.models import Spec

COMPLETE, ROLL_BACK, STOP = "complete", "roll back", "stop"


@dataclass(frozen=True)
class Resolution:
    action: str                 # COMPLETE | ROLL_BACK | STOP (nothing may serve)
    serving: Optional[int]      # the version that serves all traffic afterwards
    restore_production: bool    # `serving` must be made production (again)
    message: str


def resolution(state: Optional[RolloutState], production: Optional[int]) -> Optional[Resolution]:
    """How to finish the rollout `state` describes, given the registry's production version; None
    when there is nothing to finish (no rollout, or it ended or was resolved)."""
    if state is None or state["stage"] not in (*rollout_state.ACTIVE, rollout_state.ABANDONED):
        return None
    challenger, champion = state["challenger"], state["champion"]
    what = (f"the rollout of v{challenger} ({state['controller']}, pid {state['controller_pid']}, started "
            f"{state['started']}) was interrupted at {state['step']}")
    stage = state["stage"]
    if stage == rollout_state.ABANDONED:
        what += f"; {state['reason']}"
        stage = state.get("abandoned_in") or rollout_state.IN_PROGRESS
    if stage == rollout_state.PROMOTING or production == challenger:
        return Resolution(COMPLETE, challenger, production != challenger,
                          f"{what}. Completed: v{challenger} is production and serves all traffic")
    if champion is None:
        return Resolution(STOP, None, False, f"{what}. {rollout_state.no_production(challenger).capitalize()}, "
                                             "so nothing is routed: the service was stopped")
    return Resolution(ROLL_BACK, champion, production != champion,
                      f"{what}. Rolled back: v{champion} serves all traffic"
                      + (" and is production again" if production != champion else ""))


def _routes_only(folder, version: Optional[int]) -> bool:
    """Whether the folder's routing sends all traffic to `version`."""
    import json

    from keel.serving.layout import ROUTING_FILE

    path = folder / ROUTING_FILE
    if version is None or not path.exists():
        return False
    return [(a["version"], a["weight"]) for a in json.loads(path.read_text())["arms"]] == [(version, 1.0)]


def local_trail(model: str) -> Optional[str]:
    """The model's audit trail when it is a local folder (the service can record a take-over there);
    None for a remote store, whose take-over the next command records."""
    from keel.governance.audit import audit_location

    location = audit_location(model)
    return None if "://" in location else location


def finish_interrupted_rollout(spec: Spec, by: Optional[str] = None) -> Optional[str]:
    """Finish the service's interrupted rollout, if any (the caller holds the service lock, so its
    controller is gone); what was done, for the command to say, or None. Safe to repeat: killed
    midway, the state is still unresolved and the next command does it again."""
    import json
    import time

    from keel.deployment.bundle import write_routing
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.server import stop_service
    from keel.deployment.strategies import champion_only
    from keel.governance.audit import ROLLBACK, ROUTING_CHANGED, record_event
    from keel.registry import production_version, promote_to_production, record_deployment
    from keel.serving.routing import Arm, RoutingTable
    from keel.serving.layout import ROUTING_FILE

    folder = deployment_folder(spec)
    name = spec.problem.name
    if resolution(rollout_state.read_state(folder), None) is None:
        return None
    production = production_version(name)
    with rollout_state.locked(folder):  # the service's dead-man's switch writes under it too
        state = rollout_state.read_state(folder)
        decision = resolution(state, production)
        if decision is None:
            return None
        # The service's switch already routes all traffic to the version the resolution serves (or,
        # stopping, nothing).
        taken_over = state["stage"] == rollout_state.ABANDONED and (
            not (folder / ROUTING_FILE).exists() if decision.action == STOP else _routes_only(folder, decision.serving))
        if decision.action == STOP:
            (folder / ROUTING_FILE).unlink(missing_ok=True)
        elif decision.action == ROLL_BACK and not taken_over:
            write_routing(folder, champion_only(decision.serving, spec.deployment.salt, "interrupted rollout rolled back"))
        elif decision.action == COMPLETE and not taken_over:
            write_routing(folder, RoutingTable([Arm("champion", decision.serving, 1.0)], strategy="promoted",
                                               step="interrupted rollout completed", salt=spec.deployment.salt))
    if decision.action == STOP:
        stop_service(folder)
    routing = folder / ROUTING_FILE
    routed = decision.action != STOP and routing.exists()
    # When the service took over, the routing changed at that moment, not now.
    effective = state.get("abandoned_at") if taken_over else rollout_state.iso(
        routing.stat().st_mtime_ns / 1e9 if routed else time.time())
    if not (taken_over and state.get("recorded")):  # the service's own record of its switch stands
        record_event(ROUTING_CHANGED if decision.action == COMPLETE else ROLLBACK, name, state["challenger"], actor=by,
                     details={"routing": json.loads(routing.read_text()) if routed
                              else rollout_state.nothing_routed("interrupted rollout stopped"),
                              "effective_at": effective, "folder": str(folder), "interrupted": dict(state),
                              "resolution": decision.message})
    if decision.restore_production:
        promote_to_production(name, decision.serving)
    record_deployment(name, state["challenger"], {
        "outcome": f"interrupted ({decision.action})", "serving": decision.serving, "champion": state["champion"],
        "challenger": state["challenger"], "reason": decision.message, "stages": [], "by": by})
    with rollout_state.locked(folder):
        state.update(stage=rollout_state.RESOLVED, resolution=decision.message)
        rollout_state.write_state(folder, state)
    return decision.message

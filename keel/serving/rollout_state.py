"""The persisted state of a rollout (`rollout.json` in the deployment folder), shared by the controller
that walks its stages and the service that holds its dead-man's switch.

The controller (`deploy`, `rollback`) writes the state before it changes the routing and reports a
heartbeat while it works. The service checks the state with every request: an active rollout whose
controller has been silent for `timeout_seconds` is abandoned — the service routes everything to the
champion (for a first version, with no champion, to nothing: the service answers 503) and records
why, here. The next `deploy`, `rollback` or `serve` finishes it
(`keel.deployment.recovery`). Every read-modify-write holds `rollout.lock` (fcntl.flock), so a
heartbeat and a take-over never interleave."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, TypedDict

from typing_extensions import NotRequired

from keel.clock import utc_from_epoch
from keel.files import write_atomically
from keel.serving.routing import Arm, RoutingTable

ROLLOUT_FILE = "rollout.json"
LOCK_FILE = "rollout.lock"

IN_PROGRESS = "in progress"   # the controller walks the stages: if it goes silent, back to the champion
PROMOTING = "promoting"       # committed to the challenger (every check passed, the registry promotion is
                              # under way): if it goes silent, the challenger keeps all traffic
FINISHED = "finished"         # the controller ended the rollout itself (`outcome` says how)
ABANDONED = "abandoned"       # the controller went silent and the service returned to the champion
RESOLVED = "resolved"         # a later command finished an interrupted rollout (`resolution` says how)
ACTIVE = (IN_PROGRESS, PROMOTING)
NOTHING_ROUTED = "nothing routed"  # the strategy of an audit record's routing with no arms: nothing serves


class RolloutState(TypedDict):
    stage: str
    challenger: int
    champion: Optional[int]
    step: str                  # the routing step last written, e.g. "5%"
    controller_pid: int
    controller: str            # "deploy by USER@HOST": who runs the controller
    started: str               # ISO times, UTC
    heartbeat: float           # epoch seconds of the controller's last report
    timeout_seconds: float
    outcome: NotRequired[Optional[str]]       # FINISHED: promoted, rolled back, awaiting approval, ...
    reason: NotRequired[Optional[str]]        # ABANDONED: why the service took over
    abandoned_at: NotRequired[Optional[str]]  # ABANDONED: when the service settled the routing
    abandoned_in: NotRequired[Optional[str]]  # ABANDONED: the stage it was in (IN_PROGRESS or PROMOTING)
    resolution: NotRequired[Optional[str]]    # RESOLVED: what the later command did
    model: NotRequired[str]
    trail: NotRequired[Optional[str]]         # the model's audit trail, when a local folder: the switch records there
    recorded: NotRequired[Optional[int]]      # ABANDONED: the audit record (seq) of the switch, if it made one


def iso(epoch: float) -> str:
    return utc_from_epoch(epoch).isoformat()


def read_state(folder: Path) -> Optional[RolloutState]:
    try:
        return json.loads((Path(folder) / ROLLOUT_FILE).read_text())
    except FileNotFoundError:
        return None


def write_state(folder: Path, state: RolloutState) -> None:
    write_atomically(Path(folder) / ROLLOUT_FILE, json.dumps(state, indent=2))


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the state's lock for one read-modify-write (the kernel drops it if the holder dies)."""
    descriptor = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def no_production(challenger: int) -> str:
    return f"no production version: the first rollout of v{challenger} was interrupted"


def nothing_routed(step: str) -> dict:
    """The routing an audit record names when nothing serves (who-served: nothing), e.g. after a
    first rollout was interrupted before its promotion."""
    return {"arms": [], "shadow": None, "strategy": NOTHING_ROUTED, "step": step}


def no_route_problem(folder: Path) -> str:
    """Why a service without routing answers nothing, for its 503."""
    state = read_state(folder)
    if state is not None and state["champion"] is None and state["stage"] in (ABANDONED, RESOLVED):
        return no_production(state["challenger"])
    return "no routing: no version is deployed here"


def deadline(state: RolloutState) -> float:
    return state["heartbeat"] + state["timeout_seconds"]


def is_silent(state: Optional[RolloutState], now: float) -> bool:
    """An active rollout whose controller has not reported within its timeout."""
    return state is not None and state["stage"] in ACTIVE and now > deadline(state)


def abandon(folder: Path, now: Optional[float] = None, failure: Optional[str] = None) -> Optional[RolloutState]:
    """The dead-man's switch: if the rollout's controller is silent (or, with `failure`, reports its
    own failure), settle the routing and record why, in the state and, when the state names a local
    audit trail, there too (so `audit who-served` agrees without waiting for the next command); the
    new state, or None when the controller is alive (or nothing is rolling out).

    In progress, everything goes back to the champion; with none (a first version's rollout, not yet
    production), nothing is routed: the routing file goes and the service answers 503 naming the
    interrupted rollout. Promoting, the challenger keeps all traffic, as the registry has made it (or
    is making it) production."""
    from keel.serving.layout import ROUTING_FILE

    now = time.time() if now is None else now
    folder = Path(folder)
    with locked(folder):
        state = read_state(folder)
        if state is None or state["stage"] not in ACTIVE or (failure is None and not is_silent(state, now)):
            return None
        reason = failure or (f"the controller of the rollout of v{state['challenger']} ({state['controller']}, pid "
                             f"{state['controller_pid']}) stopped reporting at {state['step']} (last report "
                             f"{iso(state['heartbeat'])}, timeout {state['timeout_seconds']:g} s)")
        routing = folder / ROUTING_FILE
        salt = RoutingTable.from_dict(json.loads(routing.read_text())).salt if routing.exists() else None
        why = "controller failed" if failure else "controller silent"
        if salt is None:  # killed before anything was routed: nothing to settle
            routed = None
            reason += ": nothing was routed yet; the next deploy, rollback or serve resolves it"
        elif state["stage"] == PROMOTING:
            routed = RoutingTable([Arm("champion", state["challenger"], 1.0)], strategy="promoted",
                                  step=f"{why} while promoting", salt=salt).to_dict()
            reason += f": it was promoting v{state['challenger']}, which keeps all traffic"
        elif state["champion"] is not None:
            routed = RoutingTable([Arm("champion", state["champion"], 1.0)], strategy="rollback", step=why,
                                  salt=salt).to_dict()
            reason += f": the service routed all traffic to the champion v{state['champion']}"
        else:  # a first version, not production yet: nothing to return to, so nothing serves
            routed = nothing_routed(why)
            reason += (f": {no_production(state['challenger'])}; the service routes nothing until the next "
                       "deploy, rollback or serve resolves it")
        if routed is not None and routed["arms"]:
            write_atomically(routing, json.dumps(routed, indent=2))
        elif routed is not None:
            routing.unlink()
        state.update(abandoned_in=state["stage"], stage=ABANDONED, abandoned_at=iso(now), reason=reason)
        if routed is not None:
            state["recorded"] = _record(folder, state, routed)
        write_state(folder, state)
        return state


def _record(folder: Path, state: RolloutState, routing: dict) -> Optional[int]:
    """Append the switch to the model's local audit trail; None (the next command records it) when
    the trail is remote or cannot be written."""
    from keel.governance.audit import ROLLBACK, ROUTING_CHANGED, AuditError, append
    from keel.governance.store import FolderStore

    if not state.get("trail") or not state.get("model"):
        return None
    try:
        event = ROUTING_CHANGED if state["abandoned_in"] == PROMOTING else ROLLBACK
        record = append(FolderStore(state["trail"]), event=event, model=state["model"], version=state["challenger"],
                        actor="keel service (rollout dead-man's switch)",
                        details={"routing": routing, "effective_at": state["abandoned_at"],
                                 "folder": str(folder), "reason": state["reason"]})
    except (OSError, AuditError):
        return None
    return record["seq"]


_seen: Dict[Path, Tuple[int, Optional[RolloutState]]] = {}  # state file -> (its stamp, the state read then)
_timers: Dict[Path, threading.Timer] = {}  # folder -> the check due at its rollout's deadline


def obey_dead_mans_switch(folder: Path) -> None:
    """The service's check before routing a request: one stat of the state file; the file is read
    again only when it changed (a heartbeat rewrites it). While a rollout is active a check is also
    due at its deadline, so the switch happens on time when no request comes."""
    folder = Path(folder)
    path = folder / ROLLOUT_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return
    seen = _seen.get(path)
    if seen is None or seen[0] != stamp:
        seen = _seen[path] = (stamp, read_state(folder))
    state = seen[1]
    if is_silent(state, time.time()):
        abandon(folder)
    elif state is not None and state["stage"] in ACTIVE:
        _check_at(folder, deadline(state))


def _check_at(folder: Path, when: float) -> None:
    timer = _timers.get(folder)
    if timer is not None and timer.is_alive() and getattr(timer, "due", None) == when:
        return
    if timer is not None:
        timer.cancel()
    timer = _timers[folder] = threading.Timer(max(when - time.time(), 0.0) + 0.05, obey_dead_mans_switch, [folder])
    timer.due, timer.daemon = when, True
    timer.start()

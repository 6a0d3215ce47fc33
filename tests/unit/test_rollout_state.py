"""The rollout's persisted state machine: the controller's writes, the service's dead-man's switch, the
next command's resolution at every crash point, and the service lock."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keel.deployment.lock import ServiceBusy, service_lock
from keel.deployment.recovery import COMPLETE, ROLL_BACK, STOP, resolution
from keel.deployment.rollout import ControllerLost, RolloutController
from keel.deployment.strategies import rollout_stages
from keel.serving import rollout_state
from keel.serving.routing import Arm, RoutingTable
from tests.conftest import ROOT

CHAMPION, CHALLENGER = 1, 2


def _routing(folder):
    return [(a["version"], a["weight"]) for a in json.loads((folder / "routing.json").read_text())["arms"]]


def _start(folder, timeout=0.5, champion=CHAMPION, trail=None):
    """A controller that has written the state and its first routing (the champion alone)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "routing.json").write_text(json.dumps(RoutingTable([Arm("champion", champion or CHALLENGER, 1.0)]).to_dict()))
    return RolloutController(folder, CHALLENGER, champion, timeout, "deploy by tester@host", "m", trail)


def _kill(controller):
    """What SIGKILL does to a controller: its heartbeat stops, nothing else is written."""
    controller._stop.set()
    controller._thread.join()


def test_the_heartbeat_keeps_a_slow_stage_alive_and_a_killed_controller_is_abandoned_to_the_champion(tmp_path):
    from keel.governance.audit import read_records
    from keel.governance.store import FolderStore
    from keel.governance.timeline import parse_time, served_at

    trail = FolderStore(tmp_path / "trail")
    controller = _start(tmp_path, timeout=0.4, trail=trail.location).__enter__()
    canary = RoutingTable([Arm("champion", CHAMPION, 0.95), Arm("challenger", CHALLENGER, 0.05)], step="5%")
    controller.write(canary)
    time.sleep(1.2)  # three timeouts: only the heartbeat thread reports meanwhile
    rollout_state.obey_dead_mans_switch(tmp_path)
    assert _routing(tmp_path) == [(CHAMPION, 0.95), (CHALLENGER, 0.05)]
    assert rollout_state.read_state(tmp_path)["step"] == "5%"

    _kill(controller)
    rollout_state.obey_dead_mans_switch(tmp_path)  # within the timeout: nothing yet
    assert _routing(tmp_path) == [(CHAMPION, 0.95), (CHALLENGER, 0.05)]
    time.sleep(0.6)
    rollout_state.obey_dead_mans_switch(tmp_path)  # what the service does before routing a request
    assert _routing(tmp_path) == [(CHAMPION, 1.0)]
    state = rollout_state.read_state(tmp_path)
    assert state["stage"] == rollout_state.ABANDONED and state["abandoned_at"]
    assert "stopped reporting at 5%" in state["reason"] and f"champion v{CHAMPION}" in state["reason"]
    # The service recorded its switch in the trail itself: who-served agrees before any next command.
    (record,) = read_records(trail)
    assert (record["event"], record["seq"], state["recorded"]) == ("rollback", 1, 1)
    assert record["details"]["effective_at"] == state["abandoned_at"]
    after = served_at([record], parse_time(state["abandoned_at"]))
    assert [(a["version"], a["weight"]) for a in after["arms"]] == [(CHAMPION, 1.0)]
    # A controller that was only slow learns it lost the rollout at its next write, and writes nothing.
    with pytest.raises(ControllerLost, match="stopped reporting"):
        controller.write(RoutingTable([Arm("challenger", CHALLENGER, 1.0)], step="100%"))
    assert _routing(tmp_path) == [(CHAMPION, 1.0)]


def test_the_switch_happens_at_the_deadline_when_no_request_comes(tmp_path):
    controller = _start(tmp_path, timeout=0.4).__enter__()
    controller.write(RoutingTable([Arm("champion", CHAMPION, 0.95), Arm("challenger", CHALLENGER, 0.05)], step="5%"))
    rollout_state.obey_dead_mans_switch(tmp_path)  # the service saw the rollout once (a probe)
    time.sleep(1.0)  # heartbeats meanwhile: the check due at each deadline finds the controller alive
    assert _routing(tmp_path) == [(CHAMPION, 0.95), (CHALLENGER, 0.05)]
    _kill(controller)
    time.sleep(0.8)  # no request: the check due at the deadline switches anyway
    assert _routing(tmp_path) == [(CHAMPION, 1.0)]
    assert rollout_state.read_state(tmp_path)["stage"] == rollout_state.ABANDONED


def test_a_controller_that_fails_mid_rollout_returns_to_the_champion_at_once(tmp_path):
    with pytest.raises(OSError, match="probe refused"):
        with _start(tmp_path, timeout=30) as controller:
            controller.write(RoutingTable([Arm("champion", CHAMPION, 0.5), Arm("challenger", CHALLENGER, 0.5)],
                                          step="50%"))
            raise OSError("probe refused")
    assert _routing(tmp_path) == [(CHAMPION, 1.0)]  # not after the 30 s timeout: now
    state = rollout_state.read_state(tmp_path)
    assert state["stage"] == rollout_state.ABANDONED and "failed at 50%: OSError: probe refused" in state["reason"]
    assert resolution(state, CHAMPION).action == ROLL_BACK


def test_a_finished_rollout_is_left_alone_by_the_switch(tmp_path):
    with _start(tmp_path, timeout=0.2) as controller:
        controller.finish("promoted", RoutingTable([Arm("champion", CHALLENGER, 1.0)], step="100%"))
    time.sleep(0.4)
    assert rollout_state.abandon(tmp_path) is None
    assert _routing(tmp_path) == [(CHALLENGER, 1.0)]
    assert resolution(rollout_state.read_state(tmp_path), CHALLENGER) is None


def test_the_resolution_of_each_stage(tmp_path):
    state = {"stage": rollout_state.IN_PROGRESS, "challenger": CHALLENGER, "champion": CHAMPION, "step": "5%",
             "controller_pid": 9, "controller": "deploy by x@y", "started": "t", "heartbeat": 0.0,
             "timeout_seconds": 30.0}
    assert resolution(None, CHAMPION) is None
    rolled = resolution(state, CHAMPION)
    assert (rolled.action, rolled.serving, rolled.restore_production) == (ROLL_BACK, CHAMPION, False)
    assert "interrupted at 5%" in rolled.message and "Rolled back: v1 serves all traffic" in rolled.message
    # Promoting, it is completed: killed before the registry promoted (or between its archive of the
    # champion and its promotion of the challenger), the challenger is made production.
    for production in (CHAMPION, None):
        promoting = resolution({**state, "stage": rollout_state.PROMOTING}, production)
        assert (promoting.action, promoting.serving, promoting.restore_production) == (COMPLETE, CHALLENGER, True)
    # Killed after the promotion, before the rollout was marked finished: only the last writes are missing.
    assert resolution({**state, "stage": rollout_state.PROMOTING}, CHALLENGER).restore_production is False
    assert resolution({**state, "stage": rollout_state.ABANDONED, "abandoned_in": rollout_state.PROMOTING,
                       "reason": "silent"}, CHAMPION).action == COMPLETE
    # A first version killed before its promotion began: it never took traffic, nothing serves.
    assert resolution({**state, "champion": None}, None).action == STOP
    abandoned = resolution({**state, "stage": rollout_state.ABANDONED, "reason": "silent for 30 s"}, CHAMPION)
    assert abandoned.action == ROLL_BACK and "silent for 30 s" in abandoned.message
    for ended in (rollout_state.FINISHED, rollout_state.RESOLVED):
        assert resolution({**state, "stage": ended}, CHAMPION) is None


@pytest.fixture
def spec(tmp_path):
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "problem.name=crash_points", "deployment.strategy=canary", "deployment.canary_steps=[0.05, 1.0]",
        f"deployment.folder={tmp_path / 'deployments'}", "deployment.allow_folder_outside_project=true",
        "deployment.controller_timeout_seconds=0.2"])


class FakeRegistry:
    """The registry and audit calls recovery makes, in memory."""

    def __init__(self, monkeypatch, production):
        import keel.governance.audit
        import keel.registry

        self.production, self.events = production, []
        monkeypatch.setattr(keel.registry, "production_version", lambda name: self.production)
        monkeypatch.setattr(keel.registry, "promote_to_production", self.promote)
        monkeypatch.setattr(keel.registry, "record_deployment", lambda name, version, record: None)
        monkeypatch.setattr(keel.governance.audit, "record_event",
                            lambda event, *args, **kwargs: self.events.append((event, kwargs.get("details"))))

    def promote(self, name, version):
        self.production = version


# Each point a SIGKILL can fall at in a promoted canary rollout, as the writes deploy() makes before it.
CRASH_POINTS = ["state written", "canary 5%", "100% challenger", "promoting", "champion archived",
                "challenger production"]


@pytest.mark.parametrize("point", range(len(CRASH_POINTS)), ids=CRASH_POINTS)
@pytest.mark.parametrize("service_switched", [True, False], ids=["service switched", "service down"])
def test_every_crash_point_resolves_to_one_answer_for_registry_and_routing(spec, monkeypatch, point, service_switched):
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.recovery import finish_interrupted_rollout

    folder = deployment_folder(spec)
    registry = FakeRegistry(monkeypatch, CHAMPION)
    controller = _start(folder, timeout=0.2).__enter__()
    stages = rollout_stages(spec.deployment, CHALLENGER, CHAMPION)
    steps = [lambda: None, lambda: controller.write(stages[0]), lambda: controller.write(stages[1]),
             controller.promoting, lambda: setattr(registry, "production", None),
             lambda: setattr(registry, "production", CHALLENGER)]
    for write in steps[:point + 1]:
        write()
    _kill(controller)
    time.sleep(0.3)
    promoting = point >= CRASH_POINTS.index("promoting")
    expected = CHALLENGER if promoting else CHAMPION
    if service_switched:  # a request reached the service after the timeout
        rollout_state.obey_dead_mans_switch(folder)
        assert _routing(folder) == [(expected, 1.0)]
    message = finish_interrupted_rollout(spec, by="next-command")
    assert message is not None and "interrupted" in message
    assert registry.production is not None
    assert _routing(folder) == [(registry.production, 1.0)]  # registry = routing
    (event, details), = registry.events
    assert details["routing"]["arms"][0]["version"] == registry.production  # = the audit trail (who-served)
    assert registry.production == expected
    assert rollout_state.read_state(folder)["stage"] == rollout_state.RESOLVED
    assert finish_interrupted_rollout(spec) is None  # resolved once


HOLD = """
import sys, time
from keel.deployment.lock import service_lock
with service_lock(sys.argv[1], "deploy"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_command_names_the_holder_and_a_dead_holder_s_lock_is_taken(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(ServiceBusy, match=rf"locked by pid {holder.pid} \(user .+, since 20.+\); "):
            with service_lock(tmp_path, "rollback"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with service_lock(tmp_path, "rollback"):  # the kernel dropped the dead holder's lock
        with service_lock(tmp_path, "deploy"):  # re-entrant: the rollout step inside `deploy`
            assert json.loads((tmp_path / "service.lock").read_text())["pid"] == os.getpid()


def test_a_first_version_killed_before_its_promotion_began_leaves_nothing_serving(spec, monkeypatch):
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.recovery import finish_interrupted_rollout

    folder = deployment_folder(spec)
    folder.mkdir(parents=True)
    registry = FakeRegistry(monkeypatch, None)
    controller = RolloutController(folder, CHALLENGER, None, 0.2, "deploy by tester@host").__enter__()
    _kill(controller)  # before promoting: nothing was routed, the registry was not touched
    time.sleep(0.3)
    assert rollout_state.abandon(folder)["reason"].endswith("nothing was routed yet; the next deploy, rollback or "
                                                            "serve resolves it")
    message = finish_interrupted_rollout(spec)
    assert "No production version: the first rollout of v2 was interrupted" in message
    assert registry.production is None
    (event, details), = registry.events
    assert event == "rollback" and details["routing"]["arms"] == []  # who-served: nothing


# Each point a SIGKILL can fall at in a first rollout (no champion), as the writes deploy() makes: the
# version takes all traffic (checked, probed) before the registry makes it production, the commit point.
FIRST_CRASH_POINTS = ["state written", "100% challenger", "promoting", "challenger production"]


@pytest.mark.parametrize("point", range(len(FIRST_CRASH_POINTS)), ids=FIRST_CRASH_POINTS)
@pytest.mark.parametrize("service_switched", [True, False], ids=["service switched", "service down"])
def test_every_crash_point_of_a_first_rollout_leaves_one_view_of_serving(spec, monkeypatch, point,
                                                                         service_switched):
    """Before the commit point the service routes nothing (503, saying why) and records it, the registry
    still says staging; after it, the version keeps all traffic and is production."""
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.recovery import finish_interrupted_rollout
    from keel.governance.audit import read_records
    from keel.governance.store import FolderStore
    from keel.governance.timeline import parse_time, served_at

    monkeypatch.setattr("keel.deployment.server.stop_service", lambda folder: None)
    folder = deployment_folder(spec)
    trail = FolderStore(folder.parent / "trail")
    registry = FakeRegistry(monkeypatch, None)
    folder.mkdir(parents=True)
    controller = RolloutController(folder, CHALLENGER, None, 0.2, "deploy by tester@host", "m",
                                   trail.location).__enter__()
    steps = [lambda: None, lambda: controller.write(RoutingTable([Arm("challenger", CHALLENGER, 1.0)], step="100%")),
             controller.promoting, lambda: setattr(registry, "production", CHALLENGER)]
    for write in steps[:point + 1]:
        write()
    _kill(controller)
    time.sleep(0.3)
    committed = point >= FIRST_CRASH_POINTS.index("promoting")
    routed = point >= FIRST_CRASH_POINTS.index("100% challenger")
    if service_switched and routed:  # a request reached the service after the timeout
        rollout_state.obey_dead_mans_switch(folder)
        state = rollout_state.read_state(folder)
        (record,) = read_records(trail)
        served = served_at([record], parse_time(state["abandoned_at"]))
        if committed:
            assert _routing(folder) == [(CHALLENGER, 1.0)] and served["arms"][0]["version"] == CHALLENGER
        else:
            assert not (folder / "routing.json").exists() and served["arms"] == []  # who-served: nothing
            assert "no production version: the first rollout of v2 was interrupted" in state["reason"]
            assert rollout_state.no_route_problem(folder) == "no production version: the first rollout of v2 " \
                                                            "was interrupted"
    message = finish_interrupted_rollout(spec, by="next-command")
    assert message is not None and "interrupted" in message
    assert registry.production == (CHALLENGER if committed else None)  # registry = routing = who-served
    if committed:
        assert _routing(folder) == [(CHALLENGER, 1.0)]
    else:
        assert not (folder / "routing.json").exists()
    if not (service_switched and routed):  # the service recorded its own switch, else the next command
        (event, details), = registry.events
        assert [a["version"] for a in details["routing"]["arms"]] == ([CHALLENGER] if committed else [])
    assert rollout_state.read_state(folder)["stage"] == rollout_state.RESOLVED


def test_a_service_whose_first_rollout_was_interrupted_answers_503_saying_why(tmp_path):
    """The dead-man's switch with no champion: the service stays up (ready, its identity on /readyz)
    but routes nothing, and its answer names the interrupted rollout; nothing is scored or logged."""
    from keel.data.generator import generate_credit_applications
    from keel.deployment.bundle import write_bundle
    from keel.serving.scorer import Scorer
    from keel.spec import load_spec
    from keel.training.in_process import train_in_process

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=1000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=10"])
    result = train_in_process(generate_credit_applications(spec.data.source), spec)
    controller = RolloutController(tmp_path, CHALLENGER, None, 0.2, "deploy by tester@host").__enter__()
    write_bundle(tmp_path, spec, {CHALLENGER: result.selected.pipeline}, {CHALLENGER: 0.3},
                 RoutingTable([Arm("challenger", CHALLENGER, 1.0)]), f"sqlite:///{tmp_path / 'log.db'}",
                 result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    record = json.loads(result.test[spec.data.model_features].head(1).to_json(orient="records"))[0]
    body = json.dumps({**record, "entity_id": "a"}).encode()
    assert scorer.predict(body, {}).status == 200  # in progress: the first version takes the traffic
    _kill(controller)
    time.sleep(0.3)
    answer = scorer.predict(body, {})
    assert answer.status == 503
    assert answer.body["errors"][0]["problem"] == "no production version: the first rollout of v2 was interrupted"
    assert scorer.ready() and len(scorer.log.read()) == 1  # up, and the refused request scored nothing

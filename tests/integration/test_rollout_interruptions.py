"""Interrupted rollouts, one command at a time, settings changes as rollouts — against a real BentoML
service on a free port, with `deploy` killed as an operator (or the OOM killer) would."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from keel.deployment.server import port_holder_pid, post_json, running_pid, service_url, stop_service
from keel.provenance import collect_provenance
from keel.serving import rollout_state
from keel.spec import load_spec, spec_hash
from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

NAME = "interrupted_model"
TIMEOUT = 4  # deployment.controller_timeout_seconds
KEY_ENV, UNSET_KEY_ENV = "KEEL_ROLLOUT_TEST_KEY", "KEEL_ROLLOUT_TEST_UNSET_KEY"


@pytest.fixture(scope="module")
def overrides(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rollouts") / "deployments"
    return [
        f"problem.name={NAME}", "data.source.rows=4000", "training.candidate.trials=1",
        "training.candidate.params.n_estimators=40", "evaluation.latency.single_row_calls=20",
        "evaluation.explainability.sample_size=50", "evaluation.comparison.bootstrap_samples=200",
        "evaluation.comparison.margin=0.1", "evaluation.gates[expected_calibration_error].max=0.1",
        "evaluation.gates[p95_latency_ms].max=1000", "evaluation.gates[p95_latency_ratio].max=1000",
        "evaluation.gates[value_uplift_vs_baseline].min=-1000000",
        "deployment.strategy=canary", "deployment.canary_steps=[0.05, 1.0]", "deployment.hold_seconds=0",
        "deployment.probe_requests=100", "deployment.health.min_requests=10", "deployment.health.min_scores_for_psi=10",
        "deployment.health.max_score_psi=100", "deployment.health.max_p95_latency_ratio=1000",
        "deployment.approval.auto_approve=true", f"deployment.controller_timeout_seconds={TIMEOUT}",
        f"deployment.port={free_port()}", f"deployment.folder={folder}", "deployment.allow_folder_outside_project=true"]


@pytest.fixture(scope="module")
def lifecycle(overrides):
    """Two evaluated versions; the first deployed (production, served), the service left running."""
    from keel.lifecycle.pipeline_runs import run_pipeline
    from keel.data.sources import source_stamp
    from keel.deployment.deploy import deployment_folder
    from keel.lifecycle.deployment import deploy_version
    from pipelines.evaluation import evaluation_pipeline
    from pipelines.training import training_pipeline

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", overrides)
    versions = []
    for seed in (1, 2):
        seeded = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
        trained = run_pipeline(training_pipeline, spec=seeded, spec_hash=spec_hash(seeded),
                               source_stamp=source_stamp(seeded.data), provenance=collect_provenance())
        versions.append(trained.run.steps["register_model_step"].output.load())
        assert run_pipeline(evaluation_pipeline, spec=seeded, model_version=versions[-1]).error is None
    try:
        first = deploy_version(spec, versions[0])
        assert first.outcome == "promoted", first.error or first.evidence
        yield spec, versions
    finally:
        stop_service(deployment_folder(spec))


def _predict(spec, entity: str, key=None):
    from keel.data.generator import generate_credit_applications

    record = generate_credit_applications(spec.data.source.model_copy(update={"rows": 1}))
    body = {k: (None if v != v else v) for k, v in record[spec.data.model_features].iloc[0].to_dict().items()}
    return post_json(f"{service_url('127.0.0.1', spec.deployment.port)}/predict", {**body, "entity_id": entity},
                     headers={"X-API-Key": key} if key else None)


def _served_versions(spec, prefix: str, count: int = 200, key=None) -> set:
    served = set()
    for index in range(count):
        status, answer = _predict(spec, f"{prefix}-{index}", key)
        assert status == 200, answer
        served.add(answer["predictions"][0]["model_version"])
    return served


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_deploy_killed_in_its_canary_returns_to_the_champion_and_the_next_deploy_finishes_it(
        lifecycle, overrides, tmp_path):
    from keel.deployment.deploy import deployment_folder
    from keel.governance.audit import audit_store, read_records
    from keel.governance.timeline import served_at
    from keel.lifecycle.deployment import deploy_version
    from keel.registry import production_version

    spec, (champion, challenger) = lifecycle
    folder = deployment_folder(spec)
    sets = [word for override in [*overrides, "deployment.hold_seconds=300"] for word in ("--set", override)]
    log = open(tmp_path / "deploy.log", "wb")
    controller = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(ROOT / "configs" / "credit_risk.yaml"),
                                   *sets, "deploy", "--model-version", str(challenger)],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def in_canary():
            state = rollout_state.read_state(folder)
            return state if state and state["controller_pid"] == controller.pid and state["step"] == "5%" else None

        _wait_for(lambda: controller.poll() is not None or in_canary(), 300, "the deploy to reach its 5% canary")
        assert controller.poll() is None, (tmp_path / "deploy.log").read_text()[-3000:]
        assert challenger in _served_versions(spec, "during-canary", 300)  # it was live on part of the traffic

        # One rollout at a time: a second deploy is refused and names the holder.
        busy = deploy_version(spec, challenger)
        assert busy.exit_code == 1 and busy.version is None
        assert f"locked by pid {controller.pid} (user " in busy.error and "run.py" in busy.error and "deploy" in busy.error
    finally:
        with contextlib.suppress(ProcessLookupError):  # it ended early: the assertion above says why
            os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
        log.close()
    killed = time.time()

    # The dead-man's switch: within the timeout of its last heartbeat all traffic is the champion's.
    time.sleep(TIMEOUT + 0.5)
    assert _served_versions(spec, "after-kill") == {champion}
    state = rollout_state.read_state(folder)
    assert state["stage"] == rollout_state.ABANDONED and state["controller_pid"] == controller.pid
    assert "stopped reporting at 5%" in state["reason"] and f"champion v{champion}" in state["reason"]
    switched = datetime.fromisoformat(state["abandoned_at"])
    assert switched.timestamp() - killed <= TIMEOUT + 1
    assert production_version(NAME) == champion
    # The service recorded its switch: `audit who-served` agrees with the registry without waiting for a command.
    now = served_at(read_records(audit_store(NAME)), datetime.now(timezone.utc))
    assert [(a["version"], a["weight"]) for a in now["arms"]] == [(champion, 1.0)] and now["production"] == champion

    # The next deploy takes the dead controller's lock, finishes (rolls back) the interrupted rollout first, and proceeds.
    result = deploy_version(spec, challenger)
    assert result.recovered is not None and "interrupted at 5%" in result.recovered
    assert f"Rolled back: v{champion} serves all traffic" in result.recovered
    assert result.outcome == "promoted" and production_version(NAME) == challenger
    assert _served_versions(spec, "after-redeploy") == {challenger}
    assert rollout_state.read_state(folder)["stage"] == rollout_state.FINISHED

    # The audit trail agrees with what served: the champion from the moment the service switched.
    records = read_records(audit_store(NAME))
    (taken_over,) = [r for r in records if r["actor"] == "keel service (rollout dead-man's switch)"]
    assert taken_over["event"] == "rollback" and taken_over["seq"] == state["recorded"]
    assert taken_over["details"]["effective_at"] == state["abandoned_at"]
    moment = served_at(records, datetime.fromtimestamp(switched.timestamp() + 0.5, timezone.utc))
    assert [(a["version"], a["weight"]) for a in moment["arms"]] == [(champion, 1.0)]
    now = served_at(records, datetime.now(timezone.utc))
    assert [a["version"] for a in now["arms"]] == [challenger] and now["production"] == challenger


def test_a_settings_change_is_checked_before_it_goes_live_and_a_failing_one_leaves_the_old_live(
        lifecycle, monkeypatch):
    from keel.deployment.deploy import deployment_folder
    from keel.governance.audit import audit_store, read_records
    from keel.lifecycle.deployment import deploy_version
    from keel.registry import production_version

    spec, _ = lifecycle
    version = production_version(NAME)
    folder = deployment_folder(spec)
    assert _served_versions(spec, "before-key", 5) == {version}  # no key asked yet

    monkeypatch.setenv(KEY_ENV, "s3cret-key")
    keyed = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"api_key_env": KEY_ENV})})
    changed = deploy_version(keyed, version)
    assert changed.outcome == "promoted", changed.error or changed.evidence
    assert _predict(spec, "no-key")[0] == 401
    assert _served_versions(spec, "with-key", 20, key="s3cret-key") == {version}
    assert running_pid(folder) == port_holder_pid(spec.deployment.port)  # service.pid names the live server

    monkeypatch.delenv(UNSET_KEY_ENV, raising=False)
    broken = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"api_key_env": UNSET_KEY_ENV})})
    failed = deploy_version(broken, version)
    assert failed.exit_code == 1 and failed.outcome == "settings change failed"
    assert UNSET_KEY_ENV in failed.evidence["reason"] and "previous settings stay live" in failed.evidence["reason"]
    # The previous settings answer, as before: the key is still asked for and still works.
    assert _predict(spec, "no-key-again")[0] == 401
    assert _served_versions(spec, "still-with-key", 20, key="s3cret-key") == {version}
    assert running_pid(folder) == port_holder_pid(spec.deployment.port)

    events = [r for r in read_records(audit_store(NAME)) if r["event"].startswith("service_settings")]
    assert [r["event"] for r in events] == ["service_settings_changed", "service_settings_change_failed"]
    assert events[0]["details"]["to"]["api_key_env"] == KEY_ENV and events[0]["details"]["from"]["api_key_env"] is None
    assert UNSET_KEY_ENV in events[1]["details"]["problem"]
    assert "s3cret-key" not in str(events)  # the key itself is never recorded

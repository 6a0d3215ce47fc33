"""A retraining killed without recording an outcome (SIGKILL, the OOM killer) is treated as interrupted
once its process is gone, while a running one still blocks; the maximum frequency counts retraining
attempts that started (never one skipped by --no-retrain) and says what they came to."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta

import psutil
import pytest

from keel.monitoring.policy import (INTERRUPTED, SKIPPED, STARTED, decide, last_interrupted, process_alive,
                                    read_history, this_process)
from keel.spec import load_spec
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "credit_risk.yaml"
DRIFTED = {"features": {"drifted": ["income", "credit_utilization"]}, "prediction": {}, "performance": {}}

# A retraining in its own process whose training never ends: killed with SIGKILL, it writes nothing more.
RETRAINER = textwrap.dedent("""
    import sys, time
    import keel.lifecycle.training
    from keel.lifecycle.retraining import retrain_and_roll_out
    from keel.spec import load_spec

    spec = load_spec(sys.argv[1], [f"deployment.folder={sys.argv[2]}", "deployment.allow_folder_outside_project=true"])
    keel.lifecycle.training.train_version = lambda spec: time.sleep(600)
    retrain_and_roll_out(spec, {"time": sys.argv[3], "fired": ["drift"]}, champion=1)
""")


@pytest.fixture
def spec(tmp_path):
    return load_spec(CONFIG, [f"deployment.folder={tmp_path}", "deployment.allow_folder_outside_project=true"])


def _wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_retraining_stops_counting_once_its_process_is_gone(spec, tmp_path):
    from keel.monitoring.monitor import monitoring_folder

    folder, decided = monitoring_folder(spec), datetime.now().astimezone()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "decisions.jsonl").open("w") as handle:
        handle.write(json.dumps({"kind": "decision", "time": decided.isoformat(), "retrain": True,
                                 "fired": ["drift"]}) + "\n")
    child = subprocess.Popen([sys.executable, "-c", RETRAINER, str(CONFIG), str(tmp_path), decided.isoformat()],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait_for(lambda: any(r.get("kind") == STARTED for r in read_history(folder)))
        policy, later = spec.monitoring.retraining, decided + timedelta(minutes=1)
        running = decide(later, DRIFTED, 0, decided - timedelta(days=1), read_history(folder), policy, 1)
        assert not running["retrain"] and running["suppressed_by"].startswith("cooldown")  # still running: blocks
        assert last_interrupted(read_history(folder)) is None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    history = read_history(folder)
    assert not any(r.get("kind") == "retraining" for r in history)  # SIGKILL: no outcome written
    after = decide(decided + timedelta(minutes=2), DRIFTED, 0, decided - timedelta(days=1), history,
                   spec.monitoring.retraining, 1)
    assert after["retrain"] and after["suppressed_by"] is None and after["last_retrain"] is None
    died = last_interrupted(history)
    assert died["outcome"] == INTERRUPTED and f"pid {child.pid}" in died["interrupted_during"]


def test_a_reused_pid_or_another_host_is_told_apart():
    me = this_process()
    assert process_alive(me)
    assert not process_alive({**me, "process_started": me["process_started"] - 3600})  # another process now
    assert process_alive({**me, "host": "another-machine"})  # cannot be checked from here: counts (fail closed)
    assert psutil.Process().create_time() == me["process_started"]


def _attempt(decided, outcome):
    decision = {"kind": "decision", "time": decided.isoformat(), "retrain": True, "fired": ["drift"]}
    return [decision, {"kind": "retraining", "decision_time": decided.isoformat(), "time": decided.isoformat(),
                       "outcome": outcome}]


def test_the_maximum_frequency_counts_attempts_that_started_and_names_them(spec):
    policy = spec.monitoring.retraining.model_copy(update={"cooldown_hours": 1.0, "max_retrains": 3})
    start = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    outcomes = ["rolled out", SKIPPED, "failed", "rejected by evaluation"]
    history = [r for hour, outcome in enumerate(outcomes) for r in _attempt(start + timedelta(hours=2 * hour), outcome)]
    now = start + timedelta(hours=10)
    decision = decide(now, DRIFTED, 0, start - timedelta(days=1), history, policy, 1, alive=lambda who: False)
    assert not decision["retrain"]
    assert decision["suppressed_by"] == ("maximum frequency: 3 retraining attempts in the last 168 h (1 rolled out, "
                                         "1 failed, 1 rejected by evaluation), at most 3")
    two_attempts_and_a_skip = history[:6]  # rolled out, skipped, failed: one more attempt is allowed
    assert decide(now, DRIFTED, 0, start, two_attempts_and_a_skip, policy, 1, alive=lambda who: False)["retrain"]

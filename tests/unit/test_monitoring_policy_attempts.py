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


def _scheduled(decision):
    return next(t for t in decision["triggers"] if t["trigger"] == "scheduled")


def test_the_schedule_counts_from_the_monitored_version_or_the_last_retraining_that_started(spec):
    """helper-61: a version deployed by hand 0.03 h ago was retrained by a 0.045 h schedule counted from an
    older decision; a decision skipped by --no-retrain reset the schedule (and the new labels) though
    nothing was trained. The cooldown still counts every decision to retrain."""
    policy = spec.monitoring.retraining.model_copy(update={"schedule_hours": 24.0, "cooldown_hours": 0.0,
                                                           "max_retrains": 10})
    start = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    retrained = _attempt(start, "rolled out")                      # a retraining that ran, 30 h before now
    skipped = _attempt(start + timedelta(hours=20), SKIPPED)       # --no-retrain, 10 h before now
    now = start + timedelta(hours=30)
    quiet = {"features": {"drifted": []}, "prediction": {}, "performance": {}}
    old_version = start - timedelta(days=3)
    due = decide(now, quiet, 0, old_version, retrained + skipped, policy, 1, alive=lambda who: False)
    assert _scheduled(due)["fired"] and _scheduled(due)["evidence"]["hours_since_last_training"] == 30.0
    assert due["retrain"] and due["last_retrain"] == (start + timedelta(hours=20)).isoformat()  # the cooldown's anchor
    deployed_by_hand = now - timedelta(hours=2)  # the monitored version, newer than any retraining
    fresh = decide(now, quiet, 0, deployed_by_hand, retrained + skipped, policy, 2, alive=lambda who: False)
    assert not _scheduled(fresh)["fired"] and _scheduled(fresh)["evidence"]["hours_since_last_training"] == 2.0
    assert not fresh["retrain"]


def test_labels_are_new_since_the_last_training_not_since_a_skipped_decision(spec):
    from keel.monitoring.policy import last_training

    start = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    history = _attempt(start, "rolled out") + _attempt(start + timedelta(hours=20), SKIPPED)
    assert last_training(history, start - timedelta(days=3), alive=lambda who: False) == start
    assert last_training(history, start + timedelta(hours=5), alive=lambda who: False) == start + timedelta(hours=5)
    assert last_training([], start, alive=lambda who: False) == start


def test_a_torn_last_line_neither_swallows_the_next_record_nor_goes_unsaid(tmp_path, caplog):
    """helper-61: a line torn mid-write had the next decision written onto it; both were then skipped
    without a word, and the cooldown counted from an older decision."""
    from keel.monitoring.policy import append_record

    first = {"kind": "decision", "time": "2026-12-04T13:12:32+00:00", "retrain": True, "fired": ["drift"]}
    append_record(tmp_path, first)
    with (tmp_path / "decisions.jsonl").open("a") as handle:
        handle.write('{"kind": "decision", "time": "2026-12-04T13:2')  # a crash mid-write
    latest = {**first, "time": "2026-12-04T13:17:18+00:00"}
    append_record(tmp_path, latest)
    with caplog.at_level("WARNING", logger="keel.monitoring"):
        assert read_history(tmp_path) == [first, latest]
    assert "decisions.jsonl: line(s) 2 cannot be read and are left out of the retraining history" in caplog.text

"""Runs of killed processes: `run.py train` killed mid-run leaves a ZenML run "running"; the next command
that runs or lists pipelines marks it interrupted (the step it was running failed, the run stopped, which
ZenML counts as finished) and says so. A run whose process
still runs is never touched; nor is a process's pid taken by another process later."""

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from keel.lifecycle.interrupted_runs import RunProcess, is_running, mark_interrupted_runs, this_machine, this_process
from tests.conftest import ROOT
from tests.support.forked_commands import run_command

pytestmark = pytest.mark.integration

TRAIN = ["train", "--set", "data.source.rows=1500", "--set", "training.candidate.trials=2",
         "--set", "monitoring.simulation=null"]
SLOW_SEARCH = ["--set", "training.candidate.trials=200"]  # the step it is killed in lasts minutes


def _cli(tmp_path, *args, **popen):
    # INFO, plain: the test waits for a step to start. The module's store (conftest) is shared with this test.
    env = {**os.environ, "ZENML_LOGGING_VERBOSITY": "INFO", "ZENML_LOGGING_COLORS_DISABLED": "true"}
    command = [sys.executable, str(ROOT / "run.py"), *args]
    if popen:
        return subprocess.Popen(command, cwd=tmp_path, env=env, text=True, **popen)
    return run_command(command, cwd=tmp_path, env=env, timeout=600)


def _wait_for(path, text, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert process.poll() is None, f"ended before {text!r}: {path.read_text()[-2000:]}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout} s: {path.read_text()[-2000:]}")


def _runs(client):
    return client.list_pipeline_runs(hydrate=True, sort_by="asc:created").items


def test_the_run_of_a_killed_train_is_marked_interrupted_by_the_next_command(tmp_path):
    from zenml.client import Client

    log = tmp_path / "train.out"
    with open(log, "w") as out:
        train = _cli(tmp_path, *TRAIN, *SLOW_SEARCH, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(log, "Step `search_candidate_step` has started", train)
        client = Client()
        [run] = _runs(client)
        assert str(run.status) == "running"
        assert [t.name for t in run.tags] == [RunProcess(socket.gethostname(), this_machine(), train.pid,
                                                         psutil.Process(train.pid).create_time()).tag]
        assert mark_interrupted_runs(client) == []  # its process is alive: left alone
        assert str(client.get_pipeline_run(run.id).status) == "running"
    finally:
        train.send_signal(signal.SIGKILL)
        train.wait(30)  # reaped: no zombie left behind

    listed = _cli(tmp_path, "runs")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "keel: marked 1 run(s) of dead processes as interrupted" in listed.stderr
    assert f"{run.name} (left running in search_candidate_step; pid {train.pid}, started " in listed.stderr

    marked = client.get_pipeline_run(run.id, hydrate=True)
    assert str(marked.status) == "stopped" and marked.end_time is not None
    assert not client.list_pipeline_runs(id=str(run.id), in_progress=True).items
    assert f"pid {train.pid} on {socket.gethostname()}" in marked.body.status_reason
    assert not [name for name, step in marked.steps.items() if not step.status.is_finished]
    assert marked.steps["search_candidate_step"].status.value == "failed"
    assert marked.tags == []  # the dead process's tag is gone with it

    again = _cli(tmp_path, "runs")
    assert again.returncode == 0 and "marked" not in again.stderr  # marked once


def test_a_finished_run_keeps_no_process_tag_and_a_later_train_marks_nothing(tmp_path):
    from zenml.client import Client

    done = _cli(tmp_path, *TRAIN)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "marked" not in done.stderr  # the first test's run was marked already
    last = _runs(Client())[-1]
    assert str(last.status) == "completed" and last.tags == []
    assert not Client().list_tags(name="startswith:keel-process:").items


def test_a_process_is_its_pid_and_its_start_time():
    me = this_process()
    assert is_running(me) and RunProcess.from_tag(me.tag) == me and me.is_here()
    assert not is_running(RunProcess(me.host, me.machine, me.pid, me.started - 60))  # the pid, reused
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not is_running(RunProcess(me.host, me.machine, gone.pid, me.started))
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(RunProcess(me.host, me.machine, zombie.pid, psutil.Process(zombie.pid).create_time()))
    zombie.wait()
    assert RunProcess.from_tag("keel-process:host-a:0a1b2c:12:1.5") == RunProcess("host-a", "0a1b2c", 12, 1.5)
    assert RunProcess.from_tag("keel-process:h:1:2") is None and RunProcess.from_tag("other:h:m:1:2") is None
    # the same host name in another container or on another machine: not here, whatever its pid
    assert not RunProcess(me.host, "another", me.pid, me.started).is_here()

"""Stage changes are serialised: keel.locks lets one holder in at a time, names the holder to whoever
waits too long, and a killed holder's lock is free at once. On a real ZenML store, two evaluations that
stage their versions at the same time leave exactly one staged, the other archived, and the trail says so."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from keel.locks import LockBusy, file_lock, lock_path
from tests.conftest import ROOT


def test_one_holder_at_a_time(tmp_path):
    """Two threads each read a counter, wait, write it plus one: with the lock neither update is lost."""
    counter = tmp_path / "counter"
    counter.write_text("0")

    def bump():
        with file_lock("m.stages", "the stages of m", folder=tmp_path / "locks"):
            value = int(counter.read_text())
            time.sleep(0.3)  # the other thread would read the same value now, were it let in
            counter.write_text(str(value + 1))

    threads = [threading.Thread(target=bump) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.read_text() == "2"
    assert time.monotonic() - started >= 0.6  # one after the other


def test_the_holder_is_visible_while_held_and_named_to_a_waiter(tmp_path):
    folder = tmp_path / "locks"
    with file_lock("m.stages", "the stages of m", folder=folder) as path:
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid() and held["user"] and held["since"] and held["command"]
        waiter = subprocess.run(
            [sys.executable, "-c", "from pathlib import Path; from keel.locks import file_lock\n"
             f"with file_lock('m.stages', 'changing the stages of m', wait_seconds=0.3, folder=Path({str(folder)!r})):\n"
             "    pass"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert waiter.returncode == 1
        assert "LockBusy: changing the stages of m is locked by pid " + str(os.getpid()) in waiter.stderr
    assert path.read_text() == ""  # released: nobody holds it


def test_a_killed_holders_lock_is_free_at_once(tmp_path):
    folder = tmp_path / "locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from pathlib import Path; from keel.locks import file_lock\n"
         f"with file_lock('m.stages', 'x', folder=Path({str(folder)!r})):\n"
         "    print('held', flush=True); time.sleep(600)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=f"pid {holder.pid} "):
            with file_lock("m.stages", "x", wait_seconds=0.2, folder=folder):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        started = time.monotonic()
        with file_lock("m.stages", "x", wait_seconds=5, folder=folder) as path:
            assert json.loads(path.read_text())["pid"] == os.getpid()  # the dead holder's text overwritten
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert lock_path("m.stages", folder).exists()


@pytest.fixture
def two_versions(tmp_path, monkeypatch):
    from keel.registry import register_model_version

    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    monkeypatch.chdir(tmp_path)  # the lock lives under the project's .keel/locks
    name = "stage_lock_model"
    metadata = {"model_family": "lightgbm", "run_id": None}
    return name, [register_model_version(name, "test model", metadata, [], None) for _ in range(2)]


def test_two_evaluations_at_once_stage_one_version_and_say_what_happened(two_versions):
    from keel.governance.audit import audit_store, read_records
    from keel.registry import current_stage, record_evaluation

    name, versions = two_versions
    returned, errors = {}, []

    def evaluate(version):
        try:
            returned[version] = record_evaluation(name, version, {"decision": "promote to staging"}, [], promote=True)
        except Exception as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=evaluate, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stages = {v: current_stage(name, v) for v in versions}
    assert sorted(stages.values()) == ["archived", "staging"]
    assert set(returned.values()) == {"staging"}  # each was staging when its change was done ...
    # ... and the trail, replayed, ends where the registry is: the archiving is recorded too.
    replayed = {}
    for record in read_records(audit_store(name)):
        if record["event"] == "stage_changed":
            replayed[record["version"]] = record["details"]["stage"]
    assert replayed == stages
    [staged] = [v for v, stage in stages.items() if stage == "staging"]
    [archived] = [v for v in versions if v != staged]
    last = [r for r in read_records(audit_store(name)) if r["event"] == "stage_changed"][-1]
    assert last["version"] == staged and last["details"] == {"stage": "staging", "replaced": archived}


def test_archiving_a_version_says_nothing_false_about_one_archived_before(two_versions):
    """ZenML's store keeps one version per stage, archived included: archiving v2 it "archives" v1 (archived
    before) again and logs "Model version 1 has been set to archived." keel drops that false line; the
    trail names the version archived, and the registry has both archived."""
    import logging

    from keel.governance.audit import audit_store, read_records
    from keel.registry import current_stage, promote_to_production, register_model_version

    name, (first, second) = two_versions
    third = register_model_version(name, "test model", {"model_family": "lightgbm", "run_id": None}, [], None)
    store_logger = logging.getLogger("zenml.zen_stores.sql_zen_store")
    said = []
    listener = logging.Handler(logging.INFO)
    listener.emit = lambda record: said.append(record.getMessage())
    level = store_logger.level
    store_logger.setLevel(logging.INFO)  # the tests run ZenML at WARN: the line would not be made at all
    store_logger.addHandler(listener)
    try:
        for version in (first, second, third):
            promote_to_production(name, version)
    finally:
        store_logger.removeHandler(listener)
        store_logger.setLevel(level)
    assert not [line for line in said if "has been set to archived" in line], said
    assert [current_stage(name, v) for v in (first, second, third)] == ["archived", "archived", "production"]
    archived = [r["version"] for r in read_records(audit_store(name))
                if r["event"] == "stage_changed" and r["details"]["stage"] == "archived"]
    assert archived == [first, second]

"""A `train` killed inside its registration leaves a version nothing may use: evaluate, deploy, lineage and
runs refuse it as an interrupted registration, `audit verify` reports it as interrupted (exit 3, not
tampering), and the next `train` makes a usable version.

The kill is a real SIGKILL of a real `run.py train`, at a named point of `register_model_version`
(keel.registry's test hook): "started" (the version and its start written, nothing else) and
"registered" (everything written but the completion mark).
"""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

MODEL = "atomic_registration"
SMALL = ["--set", f"problem.name={MODEL}", "--set", "data.source.rows=1500", "--set", "training.candidate.trials=2"]


def _cli(project, *args, kill_at=None):
    env = {**os.environ, "ZENML_CONFIG_PATH": str(project / "zenml"), "KEEL_AUDIT_ROOT": str(project / "audit")}
    env.pop("KEEL_TEST_KILL_REGISTRATION_AT", None)
    if kill_at:
        env["KEEL_TEST_KILL_REGISTRATION_AT"] = kill_at
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          cwd=project, env=env, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """v1 killed right after its registration started; v2 killed just before its completion mark."""
    project = tmp_path_factory.mktemp("project")
    for kill_at in ("started", "registered"):
        killed = _cli(project, "train", *SMALL, kill_at=kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    return project


def _interrupted(version: int) -> str:
    return f"{MODEL} v{version} is an interrupted registration (started "


def test_every_command_refuses_an_interrupted_version(project):
    """One command per version number given (they all pick it through keel.registry.resolve_version);
    `evaluate` with none picks the latest complete version: there is none."""
    for command, version in ((["evaluate"], 2), (["deploy", "--model-version", "1"], 1),
                             (["lineage", "--model-version", "2"], 2)):
        done = _cli(project, *command, *SMALL[:2])
        assert done.returncode == 1, (command, done.stdout[-1000:], done.stderr[-2000:])
        assert _interrupted(version) in done.stderr and "never completed" in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr
    listed = _cli(project, "runs", *SMALL[:2])
    assert listed.returncode == 0
    for version in (1, 2):
        assert _interrupted(version) in listed.stderr
        assert f"v{version} " not in listed.stdout  # not listed as a training run


def test_audit_verify_says_interrupted_not_tampered(project):
    done = _cli(project, "audit", "verify", *SMALL[:2])
    assert done.returncode == 3, done.stdout + done.stderr
    assert "INTERRUPTED" in done.stderr and "TAMPERED" not in done.stdout + done.stderr
    assert "v1: registration interrupted" in done.stderr and "registration_started at" in done.stderr
    assert "v2: registration interrupted" in done.stderr and "the trail records it registered" in done.stderr
    assert "hash chain intact" in done.stdout


def test_the_next_train_makes_a_usable_version(project):
    trained = _cli(project, "train", *SMALL)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert f"model version:  {MODEL} v3" in trained.stdout  # numbering continues past the interrupted ones
    lineage = _cli(project, "lineage", "--model-version", "3", *SMALL[:2])
    assert lineage.returncode == 0, lineage.stderr[-2000:]
    assert "training run" in lineage.stdout and "(id None)" not in lineage.stdout
    verified = _cli(project, "audit", "verify", *SMALL[:2])
    assert verified.returncode == 3  # v1 and v2 stay interrupted; v3 is in the trail
    assert "v3" not in verified.stderr
    from keel.registry import resolve_version

    with _store_of(project):  # this process on the commands' store
        assert resolve_version(MODEL, None) == 3


@contextlib.contextmanager
def _store_of(project):
    from tests.conftest import _use_zenml_config

    before = Path(os.environ["ZENML_CONFIG_PATH"])
    _use_zenml_config(project / "zenml")
    try:
        yield
    finally:
        _use_zenml_config(before)

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
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, new_zenml_store
from tests.support.forked_commands import run_command

pytestmark = pytest.mark.integration

MODEL = "atomic_registration"
SMALL = ["--set", f"problem.name={MODEL}", "--set", "data.source.rows=1500", "--set", "training.candidate.trials=2"]


def _cli(project, *args, kill_at=None):
    env = {**os.environ, "ZENML_CONFIG_PATH": new_zenml_store(project / "zenml"), "KEEL_AUDIT_ROOT": str(project / "audit")}
    env.pop("KEEL_TEST_KILL_REGISTRATION_AT", None)
    if kill_at:
        env["KEEL_TEST_KILL_REGISTRATION_AT"] = kill_at
    return run_command([sys.executable, str(ROOT / "run.py"), *args], cwd=project, env=env, timeout=600)


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


def _command(project, monkeypatch, capsys, *args):
    """A command in this process on the project's store (quicker than a process each): (exit code, out, err)."""
    from keel.cli.main import main

    monkeypatch.chdir(project)
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(project / "audit"))
    capsys.readouterr()
    with _store_of(project):
        code = main([*args, *SMALL[:2]])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_refuses_an_interrupted_version(project, monkeypatch, capsys):
    """One command per version number given (they all pick it through keel.registry.resolve_version);
    `evaluate` with none picks the latest complete version: there is none."""
    for command, version in ((["evaluate"], 2), (["deploy", "--model-version", "1"], 1),
                             (["lineage", "--model-version", "2"], 2)):
        code, out, err = _command(project, monkeypatch, capsys, *command)
        assert code == 1, (command, out[-1000:], err[-2000:])
        assert _interrupted(version) in err and "never completed" in err, (command, err)
        assert "Traceback" not in err
    code, out, err = _command(project, monkeypatch, capsys, "runs")
    assert code == 0
    for version in (1, 2):
        assert _interrupted(version) in err
        assert f"v{version} " not in out  # not listed as a training run


def test_audit_verify_says_interrupted_not_tampered(project, monkeypatch, capsys):
    code, out, err = _command(project, monkeypatch, capsys, "audit", "verify")
    assert code == 3, out + err
    assert "INTERRUPTED" in err and "TAMPERED" not in out + err
    assert "v1: registration interrupted" in err and "registration_started at" in err
    assert "v2: registration interrupted" in err and "the trail records it registered" in err
    assert "hash chain intact" in out


def test_the_next_train_makes_a_usable_version(project, monkeypatch, capsys):
    trained = _cli(project, "train", *SMALL)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert f"model version:  {MODEL} v3" in trained.stdout  # numbering continues past the interrupted ones
    code, out, err = _command(project, monkeypatch, capsys, "lineage", "--model-version", "3")
    assert code == 0, err[-2000:]
    assert "training run" in out and "(id None)" not in out
    code, out, err = _command(project, monkeypatch, capsys, "audit", "verify")
    assert code == 3 and "v3" not in err  # v1 and v2 stay interrupted; v3 is in the trail
    from keel.registry import resolve_version

    with _store_of(project):
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

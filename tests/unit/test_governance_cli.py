"""`run.py audit verify | log | who-served` in process, on a log under $KEEL_AUDIT_ROOT.

The model has a name of its own: the registry cross-check must not meet versions other tests registered."""

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from keel.cli.main import main
from keel.governance.audit import append, record_name
from keel.governance.store import FolderStore

MODEL = "audit_cli_model"


@pytest.fixture
def audit_root(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path))
    store = FolderStore(tmp_path / MODEL)
    start = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    for minute, arms in ((0, [("challenger", 1, 1.0)]), (10, [("champion", 1, 0.75), ("challenger", 2, 0.25)]),
                         (20, [("challenger", 2, 1.0)])):
        append(store, event="deployment_step", model=MODEL, version=arms[-1][1], actor="ci",
               time=start + timedelta(minutes=minute),
               details={"routing": {"arms": [{"name": n, "version": v, "weight": w} for n, v, w in arms],
                                    "shadow": None, "strategy": "canary", "step": ""}})
    append(store, event="approved", model=MODEL, version=2, actor="ann", details={"by": "ann", "reason": "T-1"},
           time=start + timedelta(minutes=5))
    return tmp_path / MODEL


def test_verify_passes_then_names_the_tampered_record(audit_root, capsys):
    assert main(["audit", "verify", "--model", MODEL]) == 0
    assert "4 record(s), hash chain intact" in capsys.readouterr().out
    path = audit_root / record_name(2)
    path.write_bytes(path.read_bytes().replace(b'"weight":0.25', b'"weight":0.35'))
    assert main(["audit", "verify", "--model", MODEL]) == 1
    err = capsys.readouterr().err
    assert "TAMPERED" in err and record_name(2) in err


def test_log_lists_the_timeline_and_filters_by_event(audit_root, capsys):
    assert main(["audit", "log", "--model", MODEL]) == 0
    out = capsys.readouterr().out
    assert out.count("deployment_step") == 3 and "by ann: T-1" in out and "chain: intact" in out
    assert main(["audit", "log", "--model", MODEL, "--event", "approved"]) == 0
    assert "deployment_step" not in capsys.readouterr().out


def test_who_served_answers_for_a_moment(audit_root, capsys):
    assert main(["audit", "who-served", "--model", MODEL, "--at", "2026-03-01T09:15:00Z"]) == 0
    out = capsys.readouterr().out
    assert "v1 75% (champion) / v2 25% (challenger)" in out
    assert main(["audit", "who-served", "--model", MODEL, "--at", "2026-03-01T08:00:00"]) == 0
    assert "nothing was being served" in capsys.readouterr().out
    assert main(["audit", "who-served", "--model", MODEL, "--at", "last tuesday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_who_served_refuses_to_answer_from_a_tampered_log(audit_root, capsys):
    os.unlink(audit_root / record_name(3))
    assert main(["audit", "who-served", "--model", MODEL, "--at", "2026-03-01T10:00:00Z"]) == 1
    assert "cannot be trusted" in capsys.readouterr().err


def test_governance_commands_need_their_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lineage"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["audit", "who-served"])
    assert "--at" in capsys.readouterr().err


def test_lineage_and_explain_without_a_prediction_log_say_so(tmp_path, capsys):
    for command in (["lineage", "--prediction", "abc"], ["explain", "--prediction", "abc"]):
        assert main([*command, "--set", f"deployment.folder={tmp_path / 'nowhere'}",
                     "--set", "deployment.allow_folder_outside_project=true"]) == 1
        assert "there is no prediction log" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_a_model_is_approved_under_its_own_spec_only(audit_root, capsys):
    """helper-40: `approve --model other` ran under this spec's governance (roles, quorum) and recorded a
    refusal in this model's trail."""
    before = sorted(p.name for p in audit_root.iterdir())
    demo = str(Path(__file__).resolve().parents[2] / "configs" / "credit_risk.yaml")
    assert main(["approve", "--config", demo, "--model", MODEL, "--version", "2", "--reason", "T-2"]) == 2
    assert f"--model '{MODEL}' is not this spec's model ('credit_risk')" in capsys.readouterr().err
    assert sorted(p.name for p in audit_root.iterdir()) == before
    assert not (audit_root.parent / "credit_risk").exists()


def test_explain_of_a_batch_id_points_to_the_batchs_lineage(tmp_path, capsys):
    from keel.serving.prediction_log import PredictionLog

    log = tmp_path / "deployments" / "credit_risk" / "predictions.db"
    log.parent.mkdir(parents=True)
    PredictionLog(f"sqlite:///{log}").close()
    demo = str(Path(__file__).resolve().parents[2] / "configs" / "credit_risk.yaml")
    assert main(["explain", "--config", demo, "--prediction", "batch-20261203T221222Z-e3ef67", "--row", "7",
                 "--set", f"deployment.folder={tmp_path / 'deployments'}",
                 "--set", "deployment.allow_folder_outside_project=true"]) == 1
    assert "python run.py lineage --batch batch-20261203T221222Z-e3ef67 --row ROW" in capsys.readouterr().err

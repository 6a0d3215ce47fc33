"""The governance commands refuse what they cannot vouch for: records edited out of shape, a rewritten tail,
a tampered trail behind lineage and docs, a version the registry does not hold, a `--model` that is a path,
a prediction-log URL that is not one. Plus: the Annex IV risk controls are what was applied, the cached
validation is recorded once per run, and reproduce's seed check says what it compares.

The model has a name of its own: the test ZenML store holds no version of it."""

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from keel.cli.main import main
from keel.governance.audit import append, read_records, record_name, verify
from keel.governance.store import FolderStore

MODEL = "trail_guard_model"


@pytest.fixture
def audit_root(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    store = FolderStore(tmp_path / "audit" / MODEL)
    for minute, version in ((0, 1), (10, 1)):
        append(store, event="deployment_step", model=MODEL, version=version, actor="ci",
               time=datetime(2026, 3, 1, 9, minute, tzinfo=timezone.utc),
               details={"routing": {"arms": [{"name": "challenger", "version": version, "weight": 1.0}],
                                    "shadow": None, "strategy": "all-at-once", "step": "100%"}})
    return tmp_path / "audit" / MODEL


def _spec_args(tmp_path, *extra):
    return ["--set", f"problem.name={MODEL}", "--set", f"deployment.folder={tmp_path / 'deployments'}",
            "--set", "deployment.allow_folder_outside_project=true", *extra]


def _log_prediction(tmp_path, version, request_id="req-1"):
    from keel.serving.prediction_log import PredictionLog

    (tmp_path / "deployments" / MODEL).mkdir(parents=True, exist_ok=True)
    PredictionLog(f"sqlite:///{tmp_path / 'deployments' / MODEL / 'predictions.db'}").append([{
        "request_id": request_id, "row": 0, "entity_id": "e-1", "time": datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc),
        "model_name": MODEL, "model_version": version, "arm": "challenger", "shadow": False, "inputs": {"income": 1.0},
        "score": 0.25, "decision": 0, "latency_ms": 2.0}])
    return request_id


# --- finding 2: records edited out of shape ----------------------------------------------------------------


@pytest.mark.parametrize("edited", [b"{}", b"[1,2]", b'"text"', b"null"])
def test_audit_log_reports_a_record_edited_out_of_shape(audit_root, capsys, edited):
    (audit_root / record_name(1)).write_bytes(edited)
    assert [r["seq"] for r in read_records(FolderStore(audit_root))] == [2]
    assert main(["audit", "log", "--model", MODEL]) == 1
    captured = capsys.readouterr()
    assert "TAMPERED" in captured.err and record_name(1) in captured.err and "Traceback" not in captured.err


def test_a_record_with_every_field_but_the_wrong_types_is_not_a_record(audit_root, capsys):
    path = audit_root / record_name(2)
    record = json.loads(path.read_bytes())
    path.write_text(json.dumps({**record, "details": [1, 2], "seq": "2"}))
    assert [r["seq"] for r in read_records(FolderStore(audit_root))] == [1]
    assert not verify(FolderStore(audit_root)).ok
    assert main(["audit", "log", "--model", MODEL]) == 1
    assert "TAMPERED" in capsys.readouterr().err


def test_a_log_whose_only_record_was_emptied_is_not_reported_as_fine(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path))
    store = FolderStore(tmp_path / MODEL)
    append(store, event="approved", model=MODEL, version=1, actor="ann", details={"by": "ann", "reason": "T"})
    (tmp_path / MODEL / record_name(1)).write_bytes(b"{}")
    assert main(["audit", "log", "--model", MODEL]) == 1
    captured = capsys.readouterr()
    assert "no records" in captured.out and "TAMPERED" in captured.err


# --- finding 7: a kept head hash detects a rewritten tail --------------------------------------------------


def test_expect_head_passes_on_a_grown_log_and_fails_on_a_rewritten_tail(audit_root, capsys):
    kept = verify(FolderStore(audit_root)).head_hash
    store = FolderStore(audit_root)
    append(store, event="approved", model=MODEL, version=1, actor="ann", details={"by": "ann", "reason": "T-1"})
    assert main(["audit", "verify", "--model", MODEL, "--expect-head", kept]) == 0
    assert "is in the chain" in capsys.readouterr().out
    # Rewrite the tail consistently: drop the last two records and append a different one. The chain is intact.
    for seq in (3, 2):
        (audit_root / record_name(seq)).unlink()
    append(store, event="approved", model=MODEL, version=1, actor="mallory", details={"by": "mallory", "reason": "x"})
    assert verify(store).ok
    assert main(["audit", "verify", "--model", MODEL]) == 0  # without the kept hash the rewrite goes unseen
    capsys.readouterr()
    assert main(["audit", "verify", "--model", MODEL, "--expect-head", kept]) == 1
    err = capsys.readouterr().err
    assert "REWRITTEN" in err and kept in err


def test_expect_head_names_a_rewrite_and_refuses_what_is_not_a_hash(audit_root, capsys):
    kept = verify(FolderStore(audit_root)).head_hash
    (audit_root / record_name(2)).unlink()
    append(FolderStore(audit_root), event="approved", model=MODEL, version=1, actor="x", details={"by": "x"})
    assert main(["audit", "verify", "--model", MODEL, "--expect-head", kept.upper()]) == 1
    err = capsys.readouterr().err
    assert "REWRITTEN" in err and kept in err
    assert main(["audit", "verify", "--model", MODEL, "--expect-head", "abc"]) == 2
    assert "64 hex digits" in capsys.readouterr().err


# --- finding 9: --model is a problem name, not a path ------------------------------------------------------


@pytest.mark.parametrize("action", [["verify"], ["log"], ["who-served", "--at", "2026-03-01T09:00:00Z"]])
def test_model_must_be_a_problem_name(tmp_path, monkeypatch, capsys, action):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / record_name(1)).write_text("{}")
    assert main(["audit", *action[:1], "--model", "../secret", *action[1:]]) == 2
    err = capsys.readouterr().err
    assert "is not a model name" in err and "Traceback" not in err


# --- finding 8 and 5: docs, lineage and explain refuse a tampered trail ------------------------------------


def test_docs_refuse_to_render_from_a_tampered_trail(audit_root, tmp_path, monkeypatch, capsys):
    import keel.registry

    monkeypatch.setattr(keel.registry, "resolve_version", lambda model, version: 1)
    monkeypatch.setattr(keel.registry, "get_model_version_metadata", lambda model, version: {"run_id": None})
    (audit_root / record_name(1)).unlink()
    folder = tmp_path / "docs"
    assert main(["docs", *_spec_args(tmp_path, "--set", f"governance.documentation_folder={folder}")]) == 1
    assert "TAMPERED" in capsys.readouterr().err
    assert not folder.exists()


def test_lineage_and_explain_refuse_a_tampered_trail(audit_root, tmp_path, capsys):
    request_id = _log_prediction(tmp_path, version=1)
    path = audit_root / record_name(2)
    path.write_bytes(path.read_bytes().replace(b'"version":1', b'"version":2'))
    assert main(["lineage", "--prediction", request_id, *_spec_args(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "TAMPERED" in captured.err and "consistent" not in captured.out
    assert main(["explain", "--prediction", request_id, *_spec_args(tmp_path, "--set", "governance.high_stakes=true")]) == 1
    assert "TAMPERED" in capsys.readouterr().err


def test_lineage_verifies_the_trail_before_reading_it(audit_root, monkeypatch):
    from keel.cli import lineage

    assert [r["seq"] for r in lineage.verified_records(MODEL)] == [1, 2]
    (audit_root / record_name(1)).unlink()
    with pytest.raises(lineage.TamperedTrail, match="TAMPERED"):
        lineage.verified_records(MODEL)


# --- finding 3: a version the active registry does not hold ------------------------------------------------


def test_a_prediction_of_a_version_not_in_the_registry_is_a_message(audit_root, tmp_path, capsys):
    request_id = _log_prediction(tmp_path, version=7)
    for command in (["lineage", "--prediction", request_id], ["explain", "--prediction", request_id]):
        assert main([*command, *_spec_args(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert f"v7 of {MODEL} is not in the registry of the active stack" in err and "Traceback" not in err


def test_registry_lookups_raise_lookup_errors():
    from keel.registry import get_model_version_metadata, resolve_version, version_artifacts

    with pytest.raises(LookupError, match="not in the registry of the active stack"):
        get_model_version_metadata(MODEL, 7)
    with pytest.raises(LookupError, match="not in the registry of the active stack"):
        version_artifacts(MODEL, 7, ["model"])
    with pytest.raises(LookupError) as error:
        resolve_version(MODEL, None)
    assert str(error.value).startswith(f"there is no version of model '{MODEL}' in the registry")


# --- finding 4: the prediction log URL -----------------------------------------------------------------------


def test_a_prediction_log_url_that_is_not_one_is_a_spec_error(tmp_path, capsys):
    assert main(["lineage", "--prediction", "x", *_spec_args(tmp_path, "--set", "deployment.prediction_log_url=garbage")]) == 2
    err = capsys.readouterr().err
    assert "deployment.prediction_log_url" in err and "not a SQLAlchemy database URL" in err and "Traceback" not in err


def test_a_prediction_log_without_its_driver_is_a_message(audit_root, tmp_path, capsys):
    pytest.importorskip("sqlalchemy")
    try:
        import psycopg2  # noqa: F401
        pytest.skip("psycopg2 is installed here")
    except ImportError:
        pass
    # psycopg2 named explicitly: a bare postgresql:// URL is served by psycopg 3, which keel ships.
    url = "postgresql+psycopg2://keel:secret@127.0.0.1:1/predictions"
    for command in (["lineage", "--prediction", "x"], ["explain", "--prediction", "x"]):
        assert main([*command, *_spec_args(tmp_path, "--set", f"deployment.prediction_log_url={url}")]) == 1
        err = capsys.readouterr().err
        assert "driver is not installed" in err and "secret" not in err and "Traceback" not in err


def test_lineage_reads_an_unknown_dialect_as_a_lookup_error():
    from keel.governance.lineage import find_prediction

    with pytest.raises(LookupError, match="cannot be read"):
        find_prediction("nosuchdialect://host/db", "x")


# --- finding 6: Annex IV risk controls as applied -------------------------------------------------------------


def _risk_controls(spec, metadata):
    from keel.governance.annex_iv import documentation_sections

    sections = documentation_sections(spec, "m", 3, metadata, {}, [])
    return {item: (value, evidence) for item, value, evidence in
            next(s for s in sections if s["title"] == "5. Risk controls")["rows"]}


def test_risk_controls_are_what_was_applied_not_what_the_spec_declares(default_spec):
    assert default_spec.deployment.strategy == "canary"
    metadata = {"evaluation": {"decision": "promote to staging", "run_name": "evaluation-9", "gates": [
                    {"gate": "roc_auc >= 0.6", "value": 0.7, "passed": True},
                    {"gate": "brier <= 0.1", "value": 0.2, "passed": False}]},
                "deployment": {"strategy": "blue-green", "outcome": "rolled back", "serving": 2,
                               "stages": [{"stage": 1, "step": "green 100%", "healthy": False,
                                           "breaches": ["error rate 0.200 > 0.01"]}]}}
    rows = _risk_controls(default_spec, metadata)
    gates, evidence = rows["Gates applied"]
    assert "roc_auc >= 0.6: pass" in gates and "brier <= 0.1: FAIL" in gates and "evaluation-9" in evidence
    assert "roc_auc >= 0.75" not in gates  # the spec's gate, not the one applied
    rollout, evidence = rows["Rollout"]
    assert rollout.startswith("blue-green green 100%: rolled back") and "canary" not in rollout
    assert evidence == "model version metadata"
    assert "BREACH: error rate 0.200 > 0.01" in rows["Health checks (automatic rollback on breach)"][0]


def test_risk_controls_of_a_version_never_deployed_say_so(default_spec):
    rows = _risk_controls(default_spec, {})
    assert rows["Rollout"][0] == "not deployed" and rows["Approval before production"][0] == "not deployed"
    assert rows["Health checks (automatic rollback on breach)"][0] == "not deployed"
    assert rows["Gates applied"][0].startswith("not evaluated; the training spec declares: roc_auc >= 0.75")


def test_risk_controls_name_the_recorded_approval(default_spec):
    approval = {"by": "ann", "reason": "TICKET-4", "at": "2026-01-01T11:00:00+00:00"}
    rows = _risk_controls(default_spec, {"approval": approval, "deployment": {
        "strategy": "canary", "outcome": "promoted", "serving": 3, "approval": approval,
        "stages": [{"stage": 1, "step": "5%", "healthy": True, "breaches": []}]}})
    assert rows["Approval before production"][0] == "approved by ann at 2026-01-01T11:00:00+00:00: TICKET-4"
    assert rows["Rollout"][0].startswith("canary 5%: promoted, served v3")  # the trail (none here) says what serves now
    assert rows["Health checks (automatic rollback on breach)"][0] == "stage 1 5%: healthy"


# --- finding 1 and 12: one validation record per training run ------------------------------------------------


def test_a_cached_validation_is_recorded_for_the_run_that_reused_it(tmp_path, monkeypatch):
    from zenml.enums import ExecutionStatus

    from keel.governance.events import record_cached_validation

    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path))
    report = {"passed": True, "rows": 100, "columns": 20, "failures": []}
    ran = SimpleNamespace(status=ExecutionStatus.COMPLETED, original_step_run_id=None)
    assert not record_cached_validation(MODEL, "run-1", ran, report, "artifact-1")
    assert read_records(FolderStore(tmp_path / MODEL)) == []
    cached = SimpleNamespace(status=ExecutionStatus.CACHED, original_step_run_id=None)
    assert record_cached_validation(MODEL, "run-2", cached, report, "artifact-2")
    [record] = read_records(FolderStore(tmp_path / MODEL))
    assert (record["event"], record["run_id"], record["evidence"]) == ("data_validated", "run-2", ["artifact-2"])
    assert record["details"]["passed"] and "100 rows, 20 columns" in record["details"]["summary"]


# --- finding 11: the seed check says what it compares --------------------------------------------------------


def test_the_seed_check_is_labelled_a_consistency_check_of_the_records(default_spec):
    from keel.governance.reproduce import FAIL, OK, Reproduction, check_seed

    same, other = Reproduction(), Reproduction()
    check_seed(same, {"seed": default_spec.training.seed}, default_spec)
    check_seed(other, {"seed": default_spec.training.seed + 1}, default_spec)
    assert same.checks[0].status == OK and "consistency of the records" in same.checks[0].detail
    assert other.checks[0].status == FAIL and "the records disagree" in other.checks[0].detail

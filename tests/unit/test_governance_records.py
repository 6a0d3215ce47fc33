"""Governance logic without ZenML services: reproduce's checks and diagnoses, lineage links, the
Annex IV document, content-addressed data versions, the artifact-store (fileio) audit store."""

from datetime import datetime, timezone

from pathlib import Path

import pandas as pd
import pytest

from keel.governance.reproduce import (FAIL, OK, WARN, Reproduction, changed_keys, check_code, check_data,
                                       check_environment, compare)


def test_code_check_names_the_files_that_differ():
    result = Reproduction()
    check_code(result, {"git_commit": "a" * 40, "git_dirty": True, "git_changed_files": ["keel/x.py"]},
               {"git_commit": "b" * 40, "git_dirty": False, "git_changed_files": []},
               diff_names=lambda commit: ["keel/training/fit.py", "pipelines/training.py"])
    [check] = result.checks
    assert check.status == WARN
    assert "keel/x.py" in check.detail and "keel/training/fit.py" in check.detail and "aaaaaaaaaaaa" in check.detail
    clean = Reproduction()
    check_code(clean, {"git_commit": "a" * 40, "git_dirty": False}, {"git_commit": "a" * 40, "git_dirty": False},
               diff_names=lambda commit: [])
    assert clean.checks[0].status == OK


def test_a_clean_checkout_whose_source_differs_by_content_is_not_called_clean():
    """helper-57: an untracked package beside a module of its name (`keel/training/estimators/__init__.py`)
    changed the model; git saw nothing, so reproduce said "clean checkout" and blamed non-determinism."""
    clean = {"git_commit": "a" * 40, "git_dirty": False, "source_sha256": "1" * 64, "source_files": 249}
    shadowed = Reproduction()
    check_code(shadowed, {**clean, "source_sha256": "7" * 64, "source_files": 250}, clean, diff_names=lambda c: [])
    [check] = shadowed.checks
    assert check.status == WARN and check.detail.startswith("git sees no change, but keel's source files differ")
    assert "777777777777 over 250 files then, 111111111111 over 249 now" in check.detail
    same = Reproduction()
    check_code(same, clean, dict(clean), diff_names=lambda c: [])
    assert same.checks[0].status == OK


def test_a_commit_missing_from_the_clone_is_said_so():
    result = Reproduction()
    check_code(result, {"git_commit": "a" * 40}, {"git_commit": "b" * 40}, diff_names=lambda commit: None)
    assert "not in this clone" in result.checks[0].detail


def test_environment_check_names_changed_packages_and_lock():
    result = Reproduction()
    check_environment(result, {"lock_sha256": "1" * 64, "packages": {"lightgbm": "4.6.0", "numpy": "1.26.4"}},
                      "2" * 64, {"lightgbm": "4.7.0", "numpy": "1.26.4"})
    assert result.checks[0].status == WARN
    assert "lightgbm 4.6.0 -> 4.7.0" in result.checks[0].detail and "requirements.lock" in result.checks[0].detail
    assert "numpy" not in result.checks[0].detail


def test_each_difference_carries_the_warned_cause():
    result = Reproduction()
    result.add("dependency lock", WARN, "lightgbm 4.6.0 -> 4.7.0")
    result.retrained = True
    compare(result, {"model_sha256": "x", "validation_metrics": {"roc_auc": 0.8, "f1": 0.5}, "model_family": "lightgbm"},
            {"model_sha256": "y", "validation_metrics": {"roc_auc": 0.81, "f1": 0.5}, "model_family": "lightgbm"})
    assert [d["what"] for d in result.differences] == ["validation_metrics.roc_auc", "model_sha256"]
    assert all("lightgbm 4.6.0 -> 4.7.0" in d["cause"] for d in result.differences)
    assert not result.identical
    unexplained = Reproduction(retrained=True)
    compare(unexplained, {"model_sha256": "x"}, {"model_sha256": "y"})
    assert "non-determinism" in unexplained.differences[0]["cause"]


def test_changed_data_is_refused_before_training(default_spec):
    from keel.data.fingerprint import fingerprint_frame
    from keel.data.generator import generate_credit_applications
    from keel.data.schema import validate_frame

    source = default_spec.data.source.model_copy(update={"rows": 300})
    raw = generate_credit_applications(source)
    recorded = {"data_fingerprint": fingerprint_frame(validate_frame(raw, default_spec.data)[0]), "data_source": "file"}
    same = Reproduction()
    assert check_data(same, recorded, lambda: raw.copy(), default_spec) is not None and same.checks[0].status == OK
    changed = raw.copy()
    changed.loc[5, "income"] += 1
    result = Reproduction()
    assert check_data(result, recorded, lambda: changed, default_spec) is None
    assert result.checks[0].status == FAIL and "fingerprint mismatch" in result.checks[0].detail

    def unreachable():
        from keel.data.sources import DataSourceError

        raise DataSourceError("/data/x.csv: no such data file")

    gone = Reproduction()
    assert check_data(gone, recorded, unreachable, default_spec) is None
    assert "not reachable" in gone.checks[0].detail and "no such data file" in gone.checks[0].detail


def test_changed_data_names_the_rows_and_columns_that_differ_from_the_stored_training_rows(default_spec):
    """helper-62: reproduce said only "fingerprint mismatch" for a Parquet directory with a file added; it
    now says which rows (by id) are not in the training data, and which are gone, from the data version."""
    from keel.data.fingerprint import rows_difference
    from keel.data.generator import generate_credit_applications
    from keel.data.schema import validate_frame
    from keel.data.fingerprint import fingerprint_frame

    raw = generate_credit_applications(default_spec.data.source.model_copy(update={"rows": 300}))
    trained = validate_frame(raw, default_spec.data)[0]
    recorded = {"data_fingerprint": fingerprint_frame(trained), "data_source": "parts/"}
    more = generate_credit_applications(default_spec.data.source.model_copy(update={"rows": 305, "seed": 99}))
    grown = pd.concat([raw.iloc[2:], more.tail(5).assign(application_id=[90000 + i for i in range(5)])],
                      ignore_index=True)
    result = Reproduction()
    assert check_data(result, recorded, lambda: grown, default_spec, lambda: trained) is None
    first_two = ", ".join(map(str, trained["application_id"].head(2)))
    assert result.checks[0].detail.endswith(
        "What differs from the stored training data: 5 row(s) not in the training data (90000, 90001, 90002, ...); "
        f"2 row(s) of the training data no longer there ({first_two})")
    assert rows_difference(trained, trained.assign(extra=1).drop(columns="income")) == (
        "columns added: 'extra'; columns gone: 'income'")
    assert rows_difference(trained, trained.iloc[::-1]) == "the same rows, in another order or with other column types"
    lost = Reproduction()  # the data version cannot be read: the mismatch is said as before
    assert check_data(lost, recorded, lambda: grown, default_spec, lambda: 1 / 0) is None
    assert lost.checks[0].detail.endswith("not retraining on other data")


def test_changed_keys_name_nested_settings():
    assert changed_keys({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 4}}) == ["a.c", "a.d"]


def _records():
    return [
        {"seq": 1, "time": "2026-01-01T10:00:00+00:00", "event": "training_run_registered", "actor": "zenml:ci",
         "model": "m", "version": 1, "details": {}},
        {"seq": 2, "time": "2026-01-01T11:00:00+00:00", "event": "approved", "actor": "ann", "model": "m",
         "version": 1, "details": {"by": "ann", "reason": "TICKET-9", "at": "2026-01-01T11:00:00+00:00"}},
        {"seq": 3, "time": "2026-01-01T12:00:00+00:00", "event": "deployment_step", "actor": "zenml:ci", "model": "m",
         "version": 1, "details": {"routing": {"arms": [{"name": "challenger", "version": 1, "weight": 1.0}],
                                               "shadow": None, "strategy": "all-at-once", "step": "100%"}}},
        {"seq": 4, "time": "2026-01-01T12:00:01+00:00", "event": "stage_changed", "actor": "zenml:ci", "model": "m",
         "version": 1, "details": {"stage": "production"}},
    ]


METADATA = {"model_family": "lightgbm", "model_sha256": "f" * 64, "run_name": "training-1", "run_id": "r-1",
            "data_fingerprint": "d" * 64, "data_source": "csv:/data/a.csv", "rows": {"train": 6, "validation": 2, "test": 2},
            "spec_sha256": "s" * 64, "seed": 42, "git_commit": "c" * 40, "git_dirty": False, "lock_sha256": "l" * 64,
            "validation_metrics": {"roc_auc": 0.8}, "test_metrics": {"roc_auc": 0.79}, "primary_metric": "roc_auc",
            "evaluation": {"decision": "promote to staging", "run_name": "evaluation-1", "threshold": 0.3,
                           "threshold_rule": "max_f1", "gates": [{"gate": "roc_auc >= 0.75", "value": 0.79, "passed": True}]}}


def test_lineage_of_a_prediction_reaches_the_commit():
    from keel.governance.lineage import prediction_lineage, version_lineage

    row = {"request_id": "abc", "row": 0, "entity_id": "e-1", "time": datetime(2026, 1, 1, 13, tzinfo=timezone.utc),
           "score": 0.2, "decision": 0, "latency_ms": 3.0, "shadow": False, "model_name": "m", "model_version": 1,
           "arm": "challenger"}
    links = dict(prediction_lineage(row, _records()))
    assert "consistent" in links["routing then (audit trail)"] and "v1 100%" in links["routing then (audit trail)"]
    links = dict(version_lineage("m", 1, METADATA, _records(), "/store/d.parquet", "verified"))
    assert links["git commit"] == "c" * 40 and links["data fingerprint"] == "d" * 64
    assert "ann" in links["approvals"] and "TICKET-9" in links["approvals"] and "production" in links["stage history"]
    early = dict(prediction_lineage({**row, "time": datetime(2026, 1, 1, 9, tzinfo=timezone.utc)}, _records()))
    assert "no routing change recorded" in early["routing then (audit trail)"]


def _evaluated(seq: int, time: str, decision: str, run: str, version: int = 1, model: str = "m",
               status: str = "finished") -> dict:
    return {"seq": seq, "time": time, "event": "evaluated", "actor": "zenml:ci", "model": model, "version": version,
            "details": {"decision": decision, "run_name": run, "status": status}}


def test_lineage_of_a_prediction_cites_the_evaluation_that_held_when_it_was_made():
    """A version evaluated again after it answered (other gates, a changed spec) keeps, for that answer,
    the evaluation recorded before it; the later ones are named as later. Running records, other
    versions and other models are not evaluations of the serving version."""
    from keel.governance.lineage import prediction_lineage

    records = [*_records(),
               _evaluated(5, "2026-01-01T10:30:00+00:00", "promote to staging", "evaluation-1"),
               _evaluated(6, "2026-01-01T12:30:00+00:00", "incomplete", "evaluation-2", status="running"),
               _evaluated(7, "2026-01-01T12:40:00+00:00", "reject", "evaluation-9", version=2),
               _evaluated(8, "2026-01-01T12:45:00+00:00", "reject", "evaluation-8", model="other"),
               _evaluated(9, "2026-01-01T14:00:00+00:00", "reject (1 gate(s) failed: roc_auc >= 0.9)", "evaluation-3"),
               _evaluated(10, "2026-01-01T15:00:00+00:00", "incomplete", "evaluation-4", status="failed")]
    row = {"request_id": "abc", "row": 0, "entity_id": "e-1", "time": datetime(2026, 1, 1, 13, tzinfo=timezone.utc),
           "score": 0.2, "decision": 0, "latency_ms": 3.0, "shadow": False, "model_name": "m", "model_version": 1,
           "arm": "champion"}
    then = dict(prediction_lineage(row, records))["evaluation then (audit trail)"]
    assert then == ("promote to staging (run evaluation-1, recorded 2026-01-01T10:30:00+00:00, audit record 5); "
                    "evaluated 2 time(s) since, latest: incomplete (run evaluation-4, "
                    "recorded 2026-01-01T15:00:00+00:00, audit record 10)")
    early = dict(prediction_lineage({**row, "time": datetime(2026, 1, 1, 10, tzinfo=timezone.utc)}, records))
    assert early["evaluation then (audit trail)"].startswith("none recorded before this time; evaluated 3 time(s) since")
    later = dict(prediction_lineage({**row, "time": datetime(2026, 1, 1, 16, tzinfo=timezone.utc)}, records))
    assert later["evaluation then (audit trail)"].startswith("incomplete (run evaluation-4")
    assert "since" not in later["evaluation then (audit trail)"]
    # A row of another model is judged by that model's own trail, not the spec's model's.
    other = dict(prediction_lineage({**row, "model_name": "other"}, records, version_records=records))
    assert other["evaluation then (audit trail)"].startswith("reject (run evaluation-8")
    assert dict(prediction_lineage({**row, "model_name": "other"}, records, version_records=[]))[
        "evaluation then (audit trail)"] == "none recorded before this time"


def test_annex_iv_document_is_drawn_from_the_records(default_spec):
    from keel.governance.annex_iv import documentation_html, documentation_markdown, documentation_sections

    sections = documentation_sections(default_spec, "m", 1, METADATA, {}, _records())
    titles = [s["title"] for s in sections]
    assert titles[0].startswith("1. General description") and titles[-1] == "8. Change log"
    assert any(t.startswith("7. Post-market monitoring") for t in titles)
    markdown = documentation_markdown("m", 1, sections, "h" * 64)
    assert "| roc_auc >= 0.75 | 0.79 | pass |" in markdown
    assert "2026-01-01T11:00:00+00:00 by ann: TICKET-9" in markdown and "c" * 40 in markdown
    assert "| 3 | 2026-01-01T12:00:00+00:00 | deployment_step | zenml:ci | routing v1 100% |" in markdown
    page = documentation_html("m", 1, sections, "h" * 64)
    assert "<script" not in page and "TICKET-9" in page


def test_spec_settings_render_generically():
    from pydantic import Field

    from keel.governance.annex_iv import settings_rows
    from keel.spec.base import StrictModel

    class Inner(StrictModel):
        threshold: float = Field(0.25, description="PSI above this is drift")

    class Outer(StrictModel):
        inner: Inner = Inner()
        features: list = ["a", "b"]

    assert settings_rows(Outer(), "monitoring", "spec") == [
        ("monitoring.inner.threshold", "0.25 — PSI above this is drift", "spec"), ("monitoring.features", "a, b", "spec")]


def test_data_versions_are_content_addressed(tmp_path):
    from keel.data.fingerprint import fingerprint_frame
    from keel.governance.data_versions import list_data_versions, load_data_version, store_data_version

    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    fingerprint = fingerprint_frame(frame)
    uri, written = store_data_version(frame, fingerprint, str(tmp_path))
    assert written and uri.endswith(f"{fingerprint}.parquet")
    assert store_data_version(frame, fingerprint, str(tmp_path)) == (uri, False)  # stored once
    assert fingerprint_frame(load_data_version(uri)) == fingerprint
    rows = list_data_versions(str(tmp_path), [
        {"number": 1, "metadata": {"data_fingerprint": fingerprint, "data_source": "csv:a"}},
        {"number": 2, "metadata": {"data_fingerprint": fingerprint, "data_source": "csv:a"}},
        {"number": 3, "metadata": {"data_fingerprint": "0" * 64, "data_source": "csv:b"}}])
    assert [(r["fingerprint"], r["stored"], r["content"], r["model_versions"]) for r in rows] == [
        (fingerprint, True, "verified", [1, 2]), ("0" * 64, False, None, [3])]


def test_a_data_version_edited_or_broken_under_its_name_is_not_verified(tmp_path, monkeypatch, capsys, default_spec):
    """Stored under its fingerprint is not proof: `data versions` and lineage re-hash the rows, and
    `data versions` exits 1 naming what changed."""
    from keel.cli.data_versions import data_versions
    from keel.data.fingerprint import fingerprint_frame
    from keel.governance.data_versions import ROOT_ENV, verify_data_version, store_data_version
    from keel.lifecycle import lineage

    frame = pd.DataFrame({"income": [1.5, None, 3.0], "label": ["yes", "no", "yes"]})
    fingerprint = fingerprint_frame(frame)
    uri, _ = store_data_version(frame, fingerprint, str(tmp_path / default_spec.problem.name))
    assert verify_data_version(uri, fingerprint) == "verified"
    edited = frame.assign(label=["yes", "yes", "yes"])
    Path(uri).write_bytes(edited.to_parquet(index=False))
    assert verify_data_version(uri, fingerprint) == f"CHANGED: its rows hash to {fingerprint_frame(edited)}"

    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    monkeypatch.setattr("keel.registry.list_model_versions",
                        lambda model: [{"number": 1, "metadata": {"data_fingerprint": fingerprint}}])
    assert data_versions(default_spec) == 1
    printed = capsys.readouterr().out
    assert "NOT VERIFIED" in printed and f"data version {fingerprint} is not the data its model versions" in printed

    monkeypatch.setattr("keel.registry.registered_metadata", lambda model, version: {"data_fingerprint": fingerprint})
    links = dict(lineage.version_links(default_spec.problem.name, 1, []))
    assert links["data version"] == f"{uri} (stored, content CHANGED: its rows hash to {fingerprint_frame(edited)})"

    Path(uri).write_bytes(b"not parquet")
    assert verify_data_version(uri, fingerprint).startswith("UNREADABLE (")


def test_the_fileio_store_keeps_the_same_chain(tmp_path):
    from keel.governance.audit import append, verify
    from keel.governance.store import FileioStore, RecordExists

    store = FileioStore(str(tmp_path / "remote"))
    for number in range(3):
        append(store, event="evaluated", model="m", version=number, actor="t")
    assert verify(store).ok and verify(store).records == 3
    with pytest.raises(RecordExists):
        store.create("0000000001.json", b"{}")


def test_the_registry_cross_check_finds_a_deleted_last_record():
    from keel.governance.audit import missing_from_trail

    versions = [{"number": 1, "metadata": {"evaluation": {"passed": True}, "approval": {"by": "ann"},
                                           "deployment": {"outcome": "restored by rollback", "url": "http://x"}}},
                {"number": 2, "metadata": {"evaluation": {"passed": True}}}]
    records = [{"seq": 1, "event": "training_run_registered", "version": 1, "details": {}},
               {"seq": 2, "event": "evaluated", "version": 1, "details": {"passed": True}},
               {"seq": 3, "event": "approved", "version": 1, "details": {"by": "ann"}},
               {"seq": 4, "event": "deployment_outcome", "version": 1, "details": {"outcome": "promoted"}},
               {"seq": 5, "event": "training_run_registered", "version": 2, "details": {}},
               {"seq": 6, "event": "evaluated", "version": 2, "details": {"passed": True}},
               {"seq": 7, "event": "deployment_outcome", "version": 1, "details": {"outcome": "restored by rollback"}}]
    assert missing_from_trail(records, versions) == []
    [problem] = missing_from_trail(records[:-1], versions)  # the last record deleted
    assert problem.startswith("v1: the registry's latest deployment differs") and "0000000004.json" in problem
    assert missing_from_trail(records[:5], versions)[1:] == [
        "v2: the registry records its evaluation, the trail has no evaluated record"]


def test_routing_changes_are_named_by_what_they_do():
    from keel.deployment.strategies import champion_only, rollout_stages
    from keel.governance.events import routing_event
    from keel.serving.routing import Arm, RoutingTable
    from keel.spec.deployment import DeploymentSpec

    stages = rollout_stages(DeploymentSpec(strategy="canary", canary_steps=[0.5, 1.0]), 2, 1)
    assert [routing_event(t) for t in stages] == ["deployment_step", "deployment_step"]
    assert routing_event(champion_only(1, "s", "rolled back at stage 1")) == "rollback"
    assert routing_event(champion_only(1, "s", "awaiting approval")) == "routing_changed"
    assert routing_event(RoutingTable([Arm("challenger", 2, 1.0)], strategy="promoted")) == "routing_changed"

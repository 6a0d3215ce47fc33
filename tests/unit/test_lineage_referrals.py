"""Lineage of referred answers (keel.governance.lineage): a batch row or a logged prediction answered
`refer` shows the answer as given, the threshold's decision and the person's decision once made; an id a
batch scored twice shows every row that has it. Batches are keel's real scoring of a small Parquet or CSV
input with a stand-in model; the review queue and prediction log real SQLite files in a temporary folder."""

import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from keel.governance.lineage import (batch_row_lineage, batch_rows_heading, logged_rows, prediction_lineage,
                                     queued_review)
from keel.lifecycle.batch import batch_rows, record_batch, score_input
from keel.serving.prediction_log import PredictionLog
from keel.serving.reviews import record_decision
from keel.spec import load_spec
from tests.conftest import ROOT
from tests.support.income_model import IncomeModel

DECIDED = datetime(2026, 5, 2, 9, tzinfo=timezone.utc)


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    monkeypatch.setenv("KEEL_ACTOR", "batch-operator")
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "problem.name=lineage_unit", f"deployment.folder={tmp_path / 'deployments'}",
        "deployment.allow_folder_outside_project=true", "batch.max_reject_fraction=0.05",
        "decisions.reasons={}", "decisions.refer_band=[0.25, 0.35]"])


def _batch(spec, tmp_path, fmt, duplicate=None):
    """60 applications scored with the spec's refer band; `duplicate`: (row, row) given the same id."""
    from keel.batch.inputs import batch_source, fingerprint_input
    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=60, seed=3)).drop(columns="default")
    frame["region"] = frame["region"].astype(str)
    if duplicate:
        frame.loc[duplicate[1], "application_id"] = frame.loc[duplicate[0], "application_id"]
    path = tmp_path / "portfolio.parquet"
    frame.to_parquet(path, index=False)
    outcome = score_input(spec=spec, model=IncomeModel(spec.data.model_features), threshold=0.3, model_version=4,
                          batch_id="batch-1", location=str(path), query=None,
                          input_fingerprint=fingerprint_input(batch_source(str(path), spec.data)),
                          output=str(tmp_path / f"scores.{fmt}"), fmt=fmt, new_batch=False, say=lambda text: None)
    return record_batch(outcome, spec=spec, location=str(path), query=None), frame


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_referred_batch_row_shows_the_answer_given_and_the_persons_decision(spec, tmp_path, fmt):
    from keel.deployment.deploy import prediction_log_url

    record, frame = _batch(spec, tmp_path, fmt)
    url = prediction_log_url(spec)
    output = pd.read_parquet(tmp_path / "scores.parquet") if fmt == "parquet" else pd.read_csv(tmp_path / "scores.csv")
    referred = output.loc[output["decision"].astype(str) == "refer", "row"].tolist()
    assert referred, "the stand-in model must score some rows inside the refer band"
    [row] = batch_rows(record, str(frame.loc[referred[0], "application_id"]), "application_id")
    pending = dict(batch_row_lineage(row, record, "application_id", queued_review(url, "batch-1", row["row"])))
    threshold_said = int(row["score"] >= 0.3)
    assert pending["answer"] == f"score {row['score']:.6f}, decision refer (the threshold's decision {threshold_said})"
    assert pending["human decision"].startswith("pending")
    record_decision(url, "batch-1", int(row["row"]), 0, "income verified by phone", "os:ana", DECIDED)
    links = dict(batch_row_lineage(row, record, "application_id", queued_review(url, "batch-1", row["row"])))
    assert links["human decision"].startswith("class 0 by os:ana at 2026-05-02T09:00:00+00:00")
    assert links["human decision"].endswith(f"the threshold's decision {threshold_said}: income verified by phone")
    assert "consistent with the batch record" in links["scored by"]


def test_an_unfavourable_batch_row_shows_its_principal_reasons():
    reasons = [{"statement": "Income too low", "feature": "income", "contribution": 0.8123}]
    row = {"row": 7, "score": 0.9, "decision": "1", "model_decision": 1, "model_version": 4, "batch_id": "b",
           "reasons": json.dumps(reasons)}
    links = dict(batch_row_lineage(row, {"batch_id": "b", "model_version": 4}, None))
    assert links["answer"] == "score 0.900000, decision 1"
    assert links["principal reasons"] == "1. Income too low (income, +0.8123 log-odds towards the unfavourable decision)"
    assert "referral" not in links and "principal reasons" not in dict(batch_row_lineage(
        {**row, "reasons": ""}, {"batch_id": "b", "model_version": 4}, None))  # a CSV output's empty cell


def test_an_id_scored_twice_shows_both_rows_and_says_it_is_not_unique(spec, tmp_path):
    record, frame = _batch(spec, tmp_path, "parquet", duplicate=(5, 6))
    wanted = str(frame.loc[5, "application_id"])
    rows = batch_rows(record, wanted, "application_id")
    assert [r["row"] for r in rows] == [5, 6] and rows[0]["score"] != rows[1]["score"]
    assert batch_rows_heading(wanted, "application_id", rows, "batch-1", 5) == [
        f"application_id {wanted} is not unique in batch batch-1: 2 scored rows have it (input rows 5, 6); "
        "each is shown"]
    assert batch_rows_heading(wanted, "application_id", rows * 3, "batch-1", 5)[0].endswith(
        "(input rows 5, 6, 5, 6, 5, ...); the first 5 are shown")
    assert batch_rows_heading(wanted, "application_id", rows[:1], "batch-1", 5) == []


def test_a_referred_prediction_shows_refer_the_threshold_and_the_persons_decision(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    row = {"request_id": "r1", "row": 0, "entity_id": "e1", "time": datetime(2026, 5, 1, 9, tzinfo=timezone.utc),
           "model_name": "m", "model_version": 3, "arm": "champion", "shadow": False, "inputs": "{}",
           "score": 0.461254, "decision": 1, "latency_ms": 1.0}
    PredictionLog(url, refer_band=(0.4, 0.6)).append([row])
    record_decision(url, "r1", 0, 0, "income verified by phone", "os:ana", DECIDED)
    answered = logged_rows(url, "r1", answered_only=True)[0]
    links = dict(prediction_lineage(answered, [], queued_review(url, "r1", 0)))
    assert links["answer"].startswith("score 0.461254, decision refer (the threshold's decision 1)")
    assert links["human decision"] == ("class 0 by os:ana at 2026-05-02T09:00:00+00:00, overrides the threshold's "
                                       "decision 1: income verified by phone")
    assert links["referral"].startswith("referred to a person")
    unreferred = dict(prediction_lineage({**answered, "request_id": "r2"}, [], queued_review(url, "r2", 0)))
    assert unreferred["answer"].startswith("score 0.461254, decision 1,") and "human decision" not in unreferred
    assert queued_review(f"sqlite:///{tmp_path / 'none.db'}", "r1", 0) is None
    assert not (tmp_path / "none.db").exists()  # looking did not create a queue


def test_run_py_lineage_of_a_batch_row_shows_each_row_of_its_id_and_the_referral(spec, tmp_path, monkeypatch, capsys):
    """`run.py lineage --batch ID --row ROW` end to end but for the registry (the version's own links)."""
    from keel.cli import lineage as cli
    from keel.governance.events import BATCH_SCORED

    record, frame = _batch(spec, tmp_path, "csv", duplicate=(5, 6))
    monkeypatch.setattr(cli, "verified_records", lambda model: [{"event": BATCH_SCORED, "details": record}])
    monkeypatch.setattr(cli, "version_links", lambda model, version, records: [("model version", f"v{version}")])
    assert cli.lineage(spec, None, None, batch="batch-1", row_id=str(frame.loc[5, "application_id"])) == 0
    shown = capsys.readouterr().out
    assert "2 scored rows have it (input rows 5, 6); each is shown" in shown
    assert "input row 5 of batch batch-1:" in shown and "input row 6 of batch batch-1:" in shown
    output = pd.read_csv(tmp_path / "scores.csv")
    referred = output.loc[output["decision"] == "refer", "row"].tolist()[0]
    assert cli.lineage(spec, None, None, batch="batch-1", row_id=str(frame.loc[referred, "application_id"])) == 0
    shown = capsys.readouterr().out
    assert "decision refer (the threshold's decision" in shown and "human decision  pending" in shown

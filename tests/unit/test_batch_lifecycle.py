"""The batch lifecycle without ZenML (issue 16): which output format and files, which version may score
(its evaluation must be deployable), re-run detection from the audit trail's batch records, the record
itself (counts, reject limit, who), outputs keel replaces only when it wrote them, and one batch row
read back for lineage. Scoring is keel.batch's real score_batch; the audit trail a real one in a
temporary folder ($KEEL_AUDIT_ROOT)."""

import pandas as pd
import pytest

from keel.lifecycle.batch import (BatchRefused, batch_key, batch_rows, build_record, check_outputs,
                                  completed_batches, deployable_threshold, earlier_batch, find_batch, new_batch_id,
                                  output_format, record_batch, recorded_batches, rejects_path, score_input)
from keel.spec import load_spec, spec_hash
from tests.conftest import ROOT
from tests.support.income_model import IncomeModel


@pytest.fixture
def trail(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    monkeypatch.setenv("KEEL_ACTOR", "batch-operator")
    return tmp_path / "audit"


@pytest.fixture
def spec(tmp_path):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "problem.name=batch_unit", f"deployment.folder={tmp_path / 'deployments'}",
        "deployment.allow_folder_outside_project=true", "batch.chunk_rows=150", "batch.max_reject_fraction=0.05",
        "decisions.reasons={}"])  # a stand-in model has no contributions to give reasons from


@pytest.fixture
def portfolio(tmp_path):
    """300 applications as a Parquet file; rows 3 and 250 break the contract (negative income, an
    unknown region)."""
    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=300, seed=3)).drop(columns="default")
    frame["region"] = frame["region"].astype(str)
    frame.loc[3, "income"] = -5.0
    frame.loc[250, "region"] = "atlantis"
    path = tmp_path / "portfolio.parquet"
    frame.to_parquet(path, index=False)
    return path, frame


def _score(spec, portfolio, output, batch_id="batch-1", new_batch=False):
    from keel.batch.inputs import batch_source, fingerprint_input

    path, _ = portfolio
    outcome = score_input(spec=spec, model=IncomeModel(spec.data.model_features), threshold=0.5, model_version=4,
                          batch_id=batch_id, location=str(path), query=None,
                          input_fingerprint=fingerprint_input(batch_source(str(path), spec.data)), output=str(output),
                          fmt="parquet", new_batch=new_batch, say=lambda text: None)
    return outcome


def test_output_format_from_the_flag_the_suffix_or_the_spec(tmp_path):
    assert output_format(tmp_path / "out.csv", None, "parquet") == "csv"
    assert output_format(tmp_path / "out.parquet", None, "csv") == "parquet"
    assert output_format(tmp_path / "out", None, "csv") == "csv"
    assert output_format(tmp_path / "out", "parquet", "csv") == "parquet"
    with pytest.raises(BatchRefused, match="make them agree") as refused:
        output_format(tmp_path / "out.csv", "parquet", "parquet")
    assert refused.value.code == 2
    assert rejects_path(tmp_path / "scores.parquet", "parquet").name == "scores.rejects.parquet"
    assert rejects_path(tmp_path / "scores", "csv").name == "scores.rejects.csv"
    assert new_batch_id() != new_batch_id() and new_batch_id().startswith("batch-")


def test_only_a_version_whose_latest_evaluation_is_deployable_scores():
    passed = {"decision": "promote to staging", "complete": True, "deployable": True, "threshold": 0.37}
    with pytest.raises(LookupError, match="has not been evaluated"):
        deployable_threshold(3, None)
    with pytest.raises(LookupError, match="failed its gates"):
        deployable_threshold(3, {"decision": "reject", "complete": True, "deployable": False, "failed": ["roc_auc"]})
    with pytest.raises(LookupError, match="not complete"):
        deployable_threshold(3, {"decision": "incomplete", "complete": False, "deployable": False})
    try:
        assert deployable_threshold(3, passed) == 0.37
    except LookupError as error:  # the deployability rule is keel.evaluation.gates.is_deployable's
        pytest.fail(f"a passed evaluation was refused: {error}")


def test_a_batch_is_scored_recorded_and_its_rerun_is_recognised(spec, portfolio, tmp_path, trail):
    output = tmp_path / "out" / "scores.parquet"
    outcome = _score(spec, portfolio, output)
    assert outcome["skipped_for"] is None and outcome["rescored_from"] is None
    record = record_batch(outcome, spec=spec, location=str(portfolio[0]), query=None, run_id="run-1",
                          run_name="batch_inference-1")
    assert (record["rows_read"], record["scored"], record["rejected"]) == (300, 298, 2)
    assert record["reject_fraction"] == pytest.approx(2 / 300) and not record["over_reject_limit"]
    assert record["actor"] == "batch-operator" and record["spec_sha256"] == spec_hash(spec)
    assert record["source"].startswith("parquet:") and record["output_uri"] == str(output.resolve())
    assert recorded_batches("batch_unit") == [record]  # in the audit trail, verified

    again = _score(spec, portfolio, output, batch_id="batch-2")
    assert again["skipped_for"] == record and again["result"] is None  # nothing scored, nothing written
    rescored = _score(spec, portfolio, output, batch_id="batch-3", new_batch=True)
    assert rescored["rescored_from"] == "batch-1" and rescored["result"]["batch_id"] == "batch-3"
    # The other spec (a different reject limit) is other work: not the same batch.
    looser = spec.model_copy(update={"batch": spec.batch.model_copy(update={"max_reject_fraction": 0.5})})
    assert _score(looser, portfolio, tmp_path / "other.parquet", batch_id="batch-4")["skipped_for"] is None


def test_a_rerun_is_scored_again_when_the_earlier_batchs_output_was_replaced(spec, portfolio, tmp_path, trail):
    """helper-58: another batch wrote over batch-1's output; re-scoring batch-1's input was skipped "for
    batch-1", pointing at a file that now held the other batch's scores."""
    output = tmp_path / "out" / "scores.parquet"
    record_batch(_score(spec, portfolio, output), spec=spec, location=str(portfolio[0]), query=None)
    looser = spec.model_copy(update={"batch": spec.batch.model_copy(update={"max_reject_fraction": 0.5})})
    record_batch(_score(looser, portfolio, output, batch_id="batch-2"), spec=looser, location=str(portfolio[0]),
                 query=None)  # other work (another spec), written over the same file: keel wrote it
    again = _score(spec, portfolio, tmp_path / "again.parquet", batch_id="batch-3")
    assert again["skipped_for"] is None and again["rescored_from"] == "batch-1"
    assert again["result"]["batch_id"] == "batch-3" and (tmp_path / "again.parquet").exists()


def test_over_the_reject_limit_is_recorded_as_such(spec, portfolio, tmp_path, trail):
    strict = spec.model_copy(update={"batch": spec.batch.model_copy(update={"max_reject_fraction": 0.0})})
    record = record_batch(_score(strict, portfolio, tmp_path / "scores.parquet"), spec=strict,
                          location=str(portfolio[0]), query=None)
    assert record["over_reject_limit"] and record["max_reject_fraction"] == 0.0
    empty = build_record({"key": batch_key("sha256:x", 1, "s"), "skipped_for": None, "started_at": "t0",
                          "finished_at": "t1", "rescored_from": None, "monitoring_replaced": [],
                          "result": {"batch_id": "b", "model_version": 1, "input_fingerprint": "sha256:x",
                                     "rows_read": 0, "scored": 0, "rejected": 0, "output_uri": "o",
                                     "output_fingerprint": "f", "rejects_uri": "r", "rejects_fingerprint": "g",
                                     "output_format": "csv", "chunk_rows": 10, "seconds": 0.0,
                                     "rows_without_mitigation": {}, "mitigation_attribute": None}},
                         model="m", source="csv:x", max_reject_fraction=0.0, actor="a", run_id=None, run_name=None)
    assert empty["reject_fraction"] == 0.0 and not empty["over_reject_limit"]  # an empty input rejects nothing


def test_keel_replaces_only_an_unchanged_output_it_wrote(spec, portfolio, tmp_path, trail):
    foreign = tmp_path / "report.parquet"
    foreign.write_bytes(b"someone else's file")
    with pytest.raises(BatchRefused, match="no batch of this model wrote it"):
        _score(spec, portfolio, foreign)
    assert foreign.read_bytes() == b"someone else's file"

    output = tmp_path / "scores.parquet"
    first = record_batch(_score(spec, portfolio, output), spec=spec, location=str(portfolio[0]), query=None)
    batches = recorded_batches("batch_unit")
    check_outputs(output, rejects_path(output, "parquet"), batches, {})  # ours, unchanged: may be replaced
    output.write_bytes(output.read_bytes() + b"edited")
    with pytest.raises(BatchRefused, match="changed since"):
        check_outputs(output, rejects_path(output, "parquet"), batches, {})
    with pytest.raises(BatchRefused, match="would be the same file"):
        check_outputs(output, output, batches, {})
    # Published by a batch killed before its record (known from its monitoring marker): ours too.
    check_outputs(output, rejects_path(output, "parquet"), [], {str(output.resolve()): _fingerprint(output),
                                                                  first["rejects_uri"]: first["rejects_fingerprint"]})


def _fingerprint(path):
    from keel.lifecycle.batch import file_fingerprint

    return file_fingerprint(path)


def test_one_batch_row_is_read_back_from_the_output_by_its_id(spec, portfolio, tmp_path, trail):
    _, frame = portfolio
    record = record_batch(_score(spec, portfolio, tmp_path / "scores.parquet"), spec=spec,
                          location=str(portfolio[0]), query=None)
    wanted = frame.loc[120, "application_id"]
    [row] = batch_rows(record, str(wanted), "application_id")
    expected = IncomeModel(spec.data.model_features).predict_proba(frame.loc[[120]])[0, 1]
    assert row["row"] == 120 and row["score"] == pytest.approx(expected)
    assert row["decision"] == int(expected >= 0.5) and row["batch_id"] == "batch-1" and row["model_version"] == 4
    assert batch_rows(record, "120", None)[0]["application_id"] == str(wanted)  # no id column: the input row number
    with pytest.raises(LookupError, match="it was rejected, income: Input should be greater than or equal to 0"):
        batch_rows(record, str(frame.loc[3, "application_id"]), "application_id")  # rejected, not scored
    with pytest.raises(LookupError, match="nor rejected one"):
        batch_rows(record, "no-such-id", "application_id")
    (tmp_path / "scores.parquet").write_bytes(b"tampered")
    with pytest.raises(LookupError, match="changed since it was written"):
        batch_rows(record, str(wanted), "application_id")


def test_a_row_scored_with_an_empty_id_is_traced_by_its_input_row_number(spec, portfolio, tmp_path, trail):
    """helper-58: README said such a row's output row number still traces it; `lineage --batch ID --row 7`
    answered "scored no row with application_id '7'"."""
    path, frame = portfolio
    frame = frame.astype({"application_id": object})
    frame.loc[7, "application_id"] = None
    frame.to_parquet(path, index=False)
    record = record_batch(_score(spec, (path, frame), tmp_path / "scores.parquet"), spec=spec, location=str(path),
                          query=None)
    [row] = batch_rows(record, "7", "application_id")
    assert row["row"] == 7 and row["application_id"] is None
    wanted = frame.loc[120, "application_id"]
    assert [r["row"] for r in batch_rows(record, str(wanted), "application_id")] == [120]  # ids as before


def test_batches_are_found_by_id_and_by_their_input_in_the_trail_records():
    from keel.governance.events import BATCH_SCORED

    def record(batch_id, fingerprint, version=1):
        return {"event": BATCH_SCORED, "details": {"batch_id": batch_id, "input_fingerprint": fingerprint,
                                                   "model_version": version, "spec_sha256": "s"}}

    batches = completed_batches([record("a", "sha256:1"), {"event": "approved", "details": {}},
                                 record("b", "sha256:1"), record("c", "sha256:1", version=2)])
    assert [b["batch_id"] for b in batches] == ["a", "b", "c"]
    assert earlier_batch(batches, batch_key("sha256:1", 1, "s"))["batch_id"] == "b"  # the latest of the same work
    assert earlier_batch(batches, batch_key("sha256:1", 1, "other spec")) is None
    assert find_batch(batches, "c")["model_version"] == 2
    with pytest.raises(LookupError, match="no completed batch 'zz'"):
        find_batch(batches, "zz")


def test_the_recorded_source_never_holds_a_database_password(spec):
    from keel.lifecycle.batch import describe_input
    from keel.spec.data import SqlSource

    source = SqlSource(kind="sql", url="postgresql://scorer:s3cret@db.internal/loans", query="SELECT * FROM book")
    described = describe_input(spec, source)
    assert "s3cret" not in described and "scorer:***@db.internal" in described and "SELECT * FROM book" in described


def test_on_the_dask_engine_the_output_is_a_folder_keel_replaces_only_unchanged(tmp_path):
    """The dask engine's output is a folder of parts: a file in its place is refused, a folder keel
    recorded (same fingerprint) may be replaced, one changed since may not; a killed batch's hidden
    parts folder is removed by the next batch to that destination."""
    import os

    from keel.batch.scoring import partial_path
    from keel.lifecycle.batch import file_fingerprint, remove_leftovers

    output, rejects = tmp_path / "scores.parquet", tmp_path / "scores.rejects.parquet"
    output.write_bytes(b"a file")
    with pytest.raises(BatchRefused, match="on the dask engine --output names the folder"):
        check_outputs(output, rejects, [], {}, partitioned=True)
    output.unlink()
    output.mkdir()
    pd.DataFrame({"row": [0, 1], "score": [0.1, 0.9]}).to_parquet(output / "part-00000.parquet")
    recorded = {str(output.resolve()): file_fingerprint(output)}
    check_outputs(output, rejects, [], recorded, partitioned=True)  # ours, unchanged
    with pytest.raises(BatchRefused, match="is a directory"):
        check_outputs(output, rejects, [], recorded)  # the local engine writes a file
    pd.DataFrame({"row": [2], "score": [0.5]}).to_parquet(output / "part-00001.parquet")
    with pytest.raises(BatchRefused, match="changed since"):
        check_outputs(output, rejects, [], recorded, partitioned=True)

    monitoring = tmp_path / "monitoring"
    killed = partial_path(output, "batch-killed")
    killed.mkdir()
    (killed / "part-00000.parquet").write_bytes(b"half")
    gone = 2 ** 22 + 12345  # no such process: the batch that wrote it was killed
    while True:
        try:
            os.kill(gone, 0)
            gone += 1
        except ProcessLookupError:
            break
        except PermissionError:
            gone += 1
    (monitoring / "batches" / f".batch-killed.{gone}.partial").mkdir(parents=True)
    assert remove_leftovers(monitoring, output, rejects) == ["batch-killed"] and not killed.exists()


def test_a_version_evaluated_on_recalibrated_scores_or_other_gates_does_not_score():
    """helper-41: the service and batch served the model as trained at a threshold chosen on recalibrated
    scores (358 positive decisions evaluated, 258 served). helper-40: deploy under a spec demanding roc_auc
    >= 0.99 promoted a version evaluated against 0.75."""
    from keel.evaluation.record import applied_gates
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    passed = {"decision": "promote to staging", "complete": True, "deployable": True, "threshold": 0.37,
              "applied_gates": applied_gates(spec.evaluation)}
    assert deployable_threshold(3, passed, spec) == 0.37
    with pytest.raises(LookupError, match="evaluated on isotonic-recalibrated scores, which keel's service"):
        deployable_threshold(3, {**passed, "calibration": "isotonic"}, spec)
    stricter = load_spec(ROOT / "configs" / "credit_risk.yaml", ["evaluation.gates[roc_auc].min=0.99"])
    with pytest.raises(LookupError, match=r"other gates than this spec declares \(roc_auc >= 0.75.* roc_auc >= 0.99"):
        deployable_threshold(3, passed, stricter)

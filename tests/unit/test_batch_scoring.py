"""score_batch (keel.batch.scoring): scores and decisions as the service gives them, in input order,
bad rows to the rejects file with their reasons, output independent of the chunk size, and
publication only at the very end (a failure or a kill midway leaves no final file)."""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.batch.contract import MissingColumnsError
from keel.batch.inputs import batch_source, fingerprint_input
from keel.batch.scoring import BatchScoringError, partial_path, score_batch
from keel.spec.data import DataSpec

ROOT = Path(__file__).resolve().parents[2]

# Text labels, a nullable integer, categories with spaces, a sensitive attribute kept out of the model.
DATA = DataSpec.model_validate({
    "source": {"kind": "csv", "path": "training.csv", "sep": ";", "decimal": ","},
    "target": {"column": "outcome", "positive": "late", "negative": "on time", "favourable": "negative"},
    "id_column": "customer",
    "features": {"amount": {"type": "numeric", "min": 0, "max": 1000},
                 "visits": {"type": "integer", "min": 0, "max": 50, "nullable": True},
                 "segment": {"type": "categorical", "categories": ["small firm", "large firm", "sole trader"]},
                 "gender": {"type": "categorical", "categories": ["f", "m"]}},
    "sensitive_attributes": {"gender": {"categories": ["f", "m"]}},
})
THRESHOLD = 0.4


def _rows(count: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segments = np.array(["small firm", "large firm", "sole trader"], dtype=object)
    frame = pd.DataFrame({
        "customer": [f"C{seed}-{i:05d}" for i in range(count)],
        "amount": rng.uniform(0, 1000, count).round(2),
        "visits": rng.integers(0, 50, count).astype(float),
        "segment": segments[rng.integers(0, 3, count)],
        "gender": np.array(["f", "m"], dtype=object)[rng.integers(0, 2, count)],
    })
    frame.loc[frame.index % 7 == 0, "visits"] = np.nan
    return frame


@pytest.fixture(scope="module")
def model():
    """A small LightGBM pipeline built as keel builds them (deterministic: the same score for a row in
    any chunk)."""
    from sklearn.pipeline import Pipeline

    from keel.features.preprocessing import fit_preprocessor
    from keel.training.estimators import make_lightgbm

    train = _rows(600, seed=1)
    late = (train["amount"] / 1000 + (train["segment"] == "sole trader") * 0.4
            + np.random.default_rng(2).normal(0, 0.2, len(train))) > 0.7
    features = fit_preprocessor(train, DATA)
    estimator = make_lightgbm({"n_estimators": 15, "num_leaves": 7}, seed=0, threads=1)
    estimator.fit(features.transform(train[DATA.model_features]), np.where(late, 1, 0))
    return Pipeline([("features", features), ("model", estimator)])


def _score(source_path, tmp_path, model, name="scores", chunk_rows=1000, **options):
    source = batch_source(str(source_path), DATA)
    return score_batch(source=source, data=DATA, model=model, threshold=THRESHOLD, model_version=3,
                       batch_id="b-1", input_fingerprint=fingerprint_input(source),
                       output=tmp_path / f"{name}.parquet", rejects=tmp_path / f"{name}-rejects.parquet",
                       chunk_rows=chunk_rows, **options)


def _with_bad_rows(frame: pd.DataFrame, text: bool = True) -> pd.DataFrame:
    frame = frame.astype({"amount": object, "visits": object})
    frame.loc[3, "amount"] = -4.0
    frame.loc[10, "segment"] = "Small Firm"
    frame.loc[11, ["visits", "segment"]] = [2.5, None]
    frame.loc[40, "amount"] = "12 EUR" if text else 1000.5
    return frame if text else frame.astype({"amount": float, "visits": float})


def _to_csv(frame: pd.DataFrame, path: Path) -> None:
    """As the spec reads it: `;` between fields, a decimal comma."""
    text = frame.map(lambda v: str(v).replace(".", ",") if isinstance(v, float) and v == v else v)
    text.to_csv(path, sep=";", index=False)


def test_scores_decisions_and_rejects_as_the_service_gives_them_in_input_order(tmp_path, model):
    rows = _with_bad_rows(_rows(60))
    _to_csv(rows, tmp_path / "batch.csv")
    result = _score(tmp_path / "batch.csv", tmp_path, model, chunk_rows=8)
    assert (result["rows_read"], result["scored"], result["rejected"]) == (60, 56, 4)
    output = pd.read_parquet(result["output_uri"])
    assert list(output.columns) == ["row", "customer", "score", "decision", "model_version", "batch_id"]
    good = [i for i in range(60) if i not in (3, 10, 11, 40)]
    assert output["row"].tolist() == good and output["customer"].tolist() == rows["customer"][good].tolist()
    expected = model.predict_proba(_rows(60).loc[good, DATA.model_features])[:, 1]
    np.testing.assert_allclose(output["score"], expected, rtol=0, atol=1e-12)
    assert output["decision"].tolist() == (expected >= THRESHOLD).astype(int).tolist()
    assert set(output["model_version"]) == {3} and set(output["batch_id"]) == {"b-1"}
    rejects = pd.read_parquet(result["rejects_uri"])
    assert rejects.to_dict(orient="records") == [
        {"row": 3, "id": "C0-00003", "field": "amount", "problem": "Input should be greater than or equal to 0",
         "found": "-4.0"},  # as read: the number, not its text
        {"row": 10, "id": "C0-00010", "field": "segment",
         "problem": "Input should be 'small firm', 'large firm' or 'sole trader'", "found": "Small Firm"},
        {"row": 11, "id": "C0-00011", "field": "visits, segment",
         "problem": "visits: Value error, expected a whole number; segment: a value is required: this feature "
                    "is not nullable", "found": "visits=2.5; segment=null"},
        {"row": 40, "id": "C0-00040", "field": "amount", "problem": "Input should be a valid number",
         "found": "12 EUR"}]
    for kind in ("output", "rejects"):
        published = Path(result[f"{kind}_uri"]).read_bytes()
        assert result[f"{kind}_fingerprint"] == "sha256:" + hashlib.sha256(published).hexdigest()
    assert not list(tmp_path.glob(".*partial*"))


def test_output_and_its_fingerprint_do_not_depend_on_the_chunk_size(tmp_path, model):
    rows = _with_bad_rows(_rows(90), text=False)
    rows.iloc[:50].to_parquet(tmp_path / "part-0.parquet", index=False)
    rows.iloc[50:].to_parquet(tmp_path / "part-1.parquet", index=False)
    (tmp_path / "parts").mkdir()
    for part in ("part-0.parquet", "part-1.parquet"):
        (tmp_path / part).rename(tmp_path / "parts" / part)
    results = [_score(tmp_path / "parts", tmp_path, model, name=f"c{size}", chunk_rows=size) for size in (4, 15, 10_000)]
    assert len({r["output_fingerprint"] for r in results}) == 1
    assert len({r["rejects_fingerprint"] for r in results}) == 1
    assert len({r["input_fingerprint"] for r in results}) == 1
    output = pd.read_parquet(results[0]["output_uri"])
    assert output["row"].is_monotonic_increasing and output["customer"].tolist() == rows["customer"].drop(
        [3, 10, 11, 40]).tolist()


def test_csv_output_on_request_and_progress_after_each_chunk(tmp_path, model):
    _rows(25).to_parquet(tmp_path / "batch.parquet", index=False)
    seen = []
    result = _score(tmp_path / "batch.parquet", tmp_path, model, chunk_rows=10, output_format="csv",
                    progress=lambda done, rejected: seen.append((done, rejected)))
    assert seen == [(10, 0), (20, 0), (25, 0)]
    output = pd.read_csv(result["output_uri"], dtype={"customer": str})
    assert result["output_format"] == "csv" and output["row"].tolist() == list(range(25))
    assert pd.read_csv(result["rejects_uri"]).empty


def test_each_scored_chunk_is_handed_over_with_features_id_score_and_decision(tmp_path, model):
    _rows(30).to_parquet(tmp_path / "batch.parquet", index=False)
    chunks = []
    _score(tmp_path / "batch.parquet", tmp_path, model, chunk_rows=12, on_chunk=chunks.append)
    assert [len(c) for c in chunks] == [12, 12, 6]
    first = chunks[0]
    assert {"customer", "amount", "visits", "segment", "score", "decision"} <= set(first.columns)
    assert first.index.tolist() == list(range(12))
    assert first["decision"].tolist() == (first["score"] >= THRESHOLD).astype(int).tolist()


def test_an_input_without_rows_is_refused_and_nothing_is_published(tmp_path, model):
    (tmp_path / "empty.csv").write_text("customer;amount;visits;segment;gender\n")
    with pytest.raises(BatchScoringError, match="empty.csv: the input has no rows"):
        _score(tmp_path / "empty.csv", tmp_path, model, name="empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]


def test_all_rows_rejected_publish_an_empty_output_with_the_columns(tmp_path, model):
    rows = _rows(5).assign(amount=-1.0)
    rows.to_parquet(tmp_path / "bad.parquet", index=False)
    result = _score(tmp_path / "bad.parquet", tmp_path, model, name="bad")
    assert (result["rows_read"], result["scored"], result["rejected"]) == (5, 0, 5)
    assert pd.read_parquet(result["output_uri"]).columns.tolist() == ["row", "customer", "score", "decision",
                                                                      "model_version", "batch_id"]
    assert pd.read_parquet(result["output_uri"]).empty
    assert pd.read_parquet(result["rejects_uri"])["row"].tolist() == list(range(5))


def test_a_missing_column_is_one_error_before_scoring_and_nothing_is_published(tmp_path, model):
    _rows(5).drop(columns=["segment"]).to_parquet(tmp_path / "batch.parquet", index=False)
    with pytest.raises(MissingColumnsError, match="'segment'"):
        _score(tmp_path / "batch.parquet", tmp_path, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]


def test_an_input_without_the_id_column_is_refused_but_a_row_may_leave_its_id_empty(tmp_path, model):
    _rows(5).drop(columns=["customer"]).to_parquet(tmp_path / "batch.parquet", index=False)
    with pytest.raises(MissingColumnsError, match="no column 'customer' \\(the spec's data.id_column"):
        _score(tmp_path / "batch.parquet", tmp_path, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]
    _rows(5).assign(customer=[None, "C-1", None, "C-3", "C-4"]).to_parquet(tmp_path / "some.parquet", index=False)
    scored = pd.read_parquet(_score(tmp_path / "some.parquet", tmp_path, model, name="some")["output_uri"])
    assert scored["customer"].tolist() == [None, "C-1", None, "C-3", "C-4"]


def test_a_failure_midway_leaves_no_final_file_and_the_previous_output_untouched(tmp_path, model):
    _rows(50).to_parquet(tmp_path / "batch.parquet", index=False)
    (tmp_path / "scores.parquet").write_bytes(b"the previous batch")

    def fail_after_two_chunks(done, rejected):
        if done >= 20:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _score(tmp_path / "batch.parquet", tmp_path, model, chunk_rows=10, progress=fail_after_two_chunks)
    assert (tmp_path / "scores.parquet").read_bytes() == b"the previous batch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet", "scores.parquet"]


def test_a_killed_job_leaves_only_hidden_partial_files_and_a_rerun_completes(tmp_path, model):
    import pickle

    _rows(50).to_parquet(tmp_path / "batch.parquet", index=False)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "data.json").write_text(DATA.model_dump_json())
    script = textwrap.dedent(f"""
        import os, pickle, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from keel.batch.inputs import batch_source
        from keel.batch.scoring import score_batch
        from keel.spec.data import DataSpec
        folder = Path({str(tmp_path)!r})
        data = DataSpec.model_validate_json((folder / "data.json").read_text())
        model = pickle.loads((folder / "model.pkl").read_bytes())
        def killed(done, rejected):
            if done >= 20:
                os.kill(os.getpid(), 9)
        score_batch(source=batch_source(str(folder / "batch.parquet"), data), data=data, model=model,
                    threshold=0.4, model_version=3, batch_id="b-1", input_fingerprint="x",
                    output=folder / "scores.parquet", rejects=folder / "scores-rejects.parquet",
                    chunk_rows=10, progress=killed)
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert completed.returncode == -9, completed.stderr.decode()[-2000:]
    left = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".pkl" and p.suffix != ".json")
    assert left == sorted(["batch.parquet", partial_path(Path("scores.parquet"), "b-1").name,
                           partial_path(Path("scores-rejects.parquet"), "b-1").name])
    result = _score(tmp_path / "batch.parquet", tmp_path, model, chunk_rows=10)
    assert result["scored"] == 50 and pd.read_parquet(result["output_uri"])["row"].tolist() == list(range(50))
    assert not list(tmp_path.glob(".*partial*"))


def test_a_version_deciding_with_a_sensitive_attribute_reads_it_from_the_input(tmp_path, model):
    from keel.evaluation.mitigation import GroupAdjustedModel

    mitigated = GroupAdjustedModel(model=model, attribute="gender", thresholds={"f": 0.2, "m": 0.9}, threshold=0.5)
    rows = _rows(40)
    rows.loc[5, "gender"] = None  # a row without it is decided at the version's own threshold
    rows.to_parquet(tmp_path / "batch.parquet", index=False)
    result = _score(tmp_path / "batch.parquet", tmp_path, mitigated, chunk_rows=16)
    output = pd.read_parquet(result["output_uri"])
    expected = mitigated.predict_proba(rows[list(mitigated.feature_names_in_)])[:, 1]
    assert output["score"].tolist() == expected.tolist() and result["scored"] == 40
    probability = model.predict_proba(rows[DATA.model_features])[:, 1]
    assert output["decision"][5] == int(probability[5] >= 0.5)
    rows.loc[7, "gender"] = "unknown"
    rows.to_parquet(tmp_path / "batch.parquet", index=False)
    result = _score(tmp_path / "batch.parquet", tmp_path, mitigated, name="again")
    assert pd.read_parquet(result["rejects_uri"])[["row", "field"]].values.tolist() == [[7, "gender"]]


def test_a_model_reading_columns_the_spec_does_not_declare_is_refused(tmp_path, model):
    class Foreign:
        feature_names_in_ = np.array(["amount", "postcode"], dtype=object)

    _rows(3).to_parquet(tmp_path / "batch.parquet", index=False)
    with pytest.raises(BatchScoringError, match="'postcode'"):
        _score(tmp_path / "batch.parquet", tmp_path, Foreign())
    with pytest.raises(BatchScoringError, match="output format"):
        _score(tmp_path / "batch.parquet", tmp_path, model, output_format="xlsx")
    source = batch_source(str(tmp_path / "batch.parquet"), DATA)
    with pytest.raises(BatchScoringError, match="batch id"):
        score_batch(source=source, data=DATA, model=model, threshold=0.5, model_version=1, batch_id="../x",
                    input_fingerprint="x", output=tmp_path / "o.parquet", rejects=tmp_path / "r.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.parquet"]


def test_referred_rows_say_refer_and_unfavourable_rows_give_the_same_reasons_as_the_service(tmp_path, model):
    """Issue 19 in batch: `refer` inside the band (the threshold's decision kept beside it), reasons for
    the unfavourable decisions only ('late' is the unfavourable class here), equal to the row scorer's,
    and whatever the chunk size."""
    import json

    from keel.serving.fast_path import compile_row_scorer
    from keel.serving.reasons import ReasonGiver
    from keel.spec.decisions import DecisionsSpec

    decisions = DecisionsSpec(reasons={"amount": "Amount too high"}, top_reasons=2, refer_band=(0.3, 0.4))
    rows = _rows(80)
    rows.to_parquet(tmp_path / "batch.parquet")
    outputs = [pd.read_parquet(_score(tmp_path / "batch.parquet", tmp_path, model, name=f"s{size}", chunk_rows=size,
                                      decisions=decisions)["output_uri"]) for size in (7, 1000)]
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    output = outputs[0]
    assert list(output.columns) == ["row", "customer", "score", "decision", "model_decision", "model_version",
                                    "batch_id", "reasons"]
    referred = (output["score"] >= 0.3) & (output["score"] < 0.4)
    assert referred.any() and (output["decision"][referred] == "refer").all()
    assert (output["decision"][~referred] == output["model_decision"][~referred].astype(str)).all()
    # The unfavourable decisions' reasons, and a referral's for a person who declines it (helper-40).
    late = ((output["decision"] == "1") | referred).to_numpy()
    assert late.any() and output["reasons"][late].notna().all() and output["reasons"][~late].isna().all()
    giver = ReasonGiver.for_pipeline(model, compile_row_scorer(model, rows[DATA.model_features]), DATA, decisions)
    records = json.loads(rows.loc[output["row"][late], DATA.model_features].to_json(orient="records"))
    online = giver.for_records(records)
    batch = [json.loads(text) for text in output["reasons"][late]]
    assert [[r["feature"] for r in reasons] for reasons in batch] == [[r["feature"] for r in reasons] for reasons in online]
    assert all(r["feature"] != "gender" and len(reasons) <= 2 for reasons in batch for r in reasons)
    assert "Amount too high" in {r["statement"] for reasons in batch for r in reasons}


def test_sensitive_attributes_sent_beside_the_features_are_checked_kept_for_monitoring_never_modelled(tmp_path, model):
    """monitoring.fairness.groups_from: request in batch: the attribute is an optional column, checked
    against the spec's groups like the service's payload, handed to monitoring, and changes no score."""
    rows = _rows(40)
    rows.loc[5, "gender"] = "unknown"  # not one of the spec's groups: rejected, as the service answers 422
    rows.loc[6, "gender"] = None       # not sent for this row: kept, its group unknown
    rows.to_parquet(tmp_path / "with.parquet", index=False)
    rows.drop(columns="gender").to_parquet(tmp_path / "without.parquet", index=False)
    chunks = []
    sent = _score(tmp_path / "with.parquet", tmp_path, model, name="with", chunk_rows=16, logged_attributes=["gender"],
                  on_chunk=chunks.append)
    plain = _score(tmp_path / "without.parquet", tmp_path, model, name="without", chunk_rows=16,
                   logged_attributes=["gender"])
    assert (sent["scored"], sent["rejected"], plain["scored"], plain["rejected"]) == (39, 1, 40, 0)
    [reject] = pd.read_parquet(sent["rejects_uri"]).to_dict(orient="records")
    assert (reject["row"], reject["field"], reject["found"]) == (5, "gender", "unknown")
    with_scores = pd.read_parquet(sent["output_uri"]).set_index("row")["score"]
    without_scores = pd.read_parquet(plain["output_uri"]).set_index("row")["score"]
    pd.testing.assert_series_equal(with_scores, without_scores.drop(index=5))
    handed = pd.concat(chunks)
    assert handed.loc[6, "gender"] is None and handed.loc[7, "gender"] == rows.loc[7, "gender"]


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_a_published_batchs_referrals_join_the_review_queue_once(tmp_path, model, output_format):
    """Referred batch rows wait for a person like served ones (`review list` / `review decide`), keyed by
    the batch id and input row; a batch scored again after a kill withdraws its predecessor's undecided
    referrals, and a decided one stays."""
    from datetime import datetime, timezone

    from keel.serving.reviews import pending_reviews, queue_batch_referrals, record_decision, review_of
    from keel.spec.decisions import DecisionsSpec

    decisions = DecisionsSpec(refer_band=(0.3, 0.45))
    _rows(60).to_parquet(tmp_path / "batch.parquet", index=False)
    source = batch_source(str(tmp_path / "batch.parquet"), DATA)
    url, now = f"sqlite:///{tmp_path / 'log.db'}", datetime(2026, 8, 1, tzinfo=timezone.utc)
    outputs = {}
    for batch_id in ("b-killed", "b-again"):
        result = score_batch(source=source, data=DATA, model=model, threshold=THRESHOLD, model_version=3,
                             batch_id=batch_id, input_fingerprint=fingerprint_input(source),
                             output=tmp_path / f"{batch_id}.{output_format}",
                             rejects=tmp_path / f"{batch_id}-rejects.{output_format}", output_format=output_format,
                             chunk_rows=25, decisions=decisions)
        outputs[batch_id] = pd.read_parquet(result["output_uri"]) if output_format == "parquet" else \
            pd.read_csv(result["output_uri"], dtype={"decision": str})
        queued = queue_batch_referrals(url, result["output_uri"], output_format, batch_id, 3, "customer", now,
                                       superseded=["b-killed"] if batch_id == "b-again" else [], batch_rows=16)
        expected = outputs[batch_id][outputs[batch_id]["decision"] == "refer"]
        assert queued == len(expected) > 0
        if batch_id == "b-killed":
            first = pending_reviews(url)[0]
            record_decision(url, first["request_id"], first["row"], 0, "decided before the rerun", "ana", now)
    pending = pending_reviews(url, limit=1000)
    assert {r["request_id"] for r in pending} == {"b-again"}
    assert sorted(r["row"] for r in pending) == expected["row"].tolist()
    assert {r["entity_id"] for r in pending} == set(expected["customer"])
    assert all(r["model_decision"] == int(r["score"] >= THRESHOLD) for r in pending)
    assert review_of(url, "b-killed", first["row"])["reason"] == "decided before the rerun"  # a decision stays


def test_a_category_the_scoring_version_was_not_trained_with_is_rejected_not_scored_as_none(tmp_path, model):
    """The spec added `cooperative` after this version was fitted: scored, it would read as no segment at all."""
    newer = DataSpec.model_validate({**DATA.model_dump(mode="json"), "features": {
        **DATA.model_dump(mode="json")["features"],
        "segment": {"type": "categorical", "categories": ["small firm", "large firm", "sole trader", "cooperative"]}}})
    rows = _rows(6)
    rows.loc[[1, 4], "segment"] = "cooperative"
    rows.to_parquet(tmp_path / "batch.parquet", index=False)
    source = batch_source(str(tmp_path / "batch.parquet"), newer)
    result = score_batch(source=source, data=newer, model=model, threshold=THRESHOLD, model_version=3, batch_id="b-1",
                         input_fingerprint=fingerprint_input(source), output=tmp_path / "out.parquet",
                         rejects=tmp_path / "rejects.parquet")
    rejects = pd.read_parquet(result["rejects_uri"])
    assert rejects["row"].tolist() == [1, 4] and set(rejects["field"]) == {"segment"}
    assert set(rejects["found"]) == {"cooperative"} and "not trained with" in rejects["problem"][0]
    assert pd.read_parquet(result["output_uri"])["row"].tolist() == [0, 2, 3, 5]


def test_a_linear_versions_reasons_are_measured_from_its_background_rows_as_the_service_measures_them(tmp_path):
    import json

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from keel.features.preprocessing import fit_preprocessor
    from keel.serving.fast_path import compile_row_scorer
    from keel.serving.reasons import ReasonGiver
    from keel.spec.decisions import DecisionsSpec

    train = _rows(600, seed=1)
    features = fit_preprocessor(train, DATA)
    late = train["amount"].to_numpy() / 1000 + (train["segment"] == "sole trader") * 0.4 > 0.7
    linear = Pipeline([("features", features), ("model", LogisticRegression(max_iter=1000).fit(
        features.transform(train[DATA.model_features]), late.astype(int)))])
    decisions, background = DecisionsSpec(top_reasons=3), train[DATA.model_features].head(200)
    _rows(300).to_parquet(tmp_path / "batch.parquet", index=False)
    without = pd.read_parquet(_score(tmp_path / "batch.parquet", tmp_path, linear, name="without",
                                     decisions=decisions)["output_uri"])
    assert without["reasons"].isna().all()  # no reference row: no reasons, rather than reasons measured from zero
    output = pd.read_parquet(_score(tmp_path / "batch.parquet", tmp_path, linear, name="with", decisions=decisions,
                                    background=background)["output_uri"])
    late_rows = (output["decision"] == 1).to_numpy()
    assert 10 < late_rows.sum() < len(output)
    giver = ReasonGiver.for_pipeline(linear, compile_row_scorer(linear, background), DATA, decisions,
                                     background=background)
    inputs = _rows(300)[DATA.model_features]
    assert [json.loads(text) for text in output["reasons"][late_rows]] == giver.for_frame(inputs[late_rows])

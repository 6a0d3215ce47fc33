"""Batch scoring and its monitoring on the dask engine, on a real `distributed.LocalCluster` (2 worker
processes over TCP on 127.0.0.1, one for the module): a partitioned Parquet portfolio scored partition
by partition gives the local engine's scores, decisions and rejects for the same rows; its output is
a folder of parts whose `row` gives the input order back; its monitoring profiles, made per partition
and merged, count what the local batch's profiles count; its record is the local batch's (same audit
event, lineage of one row); declined rows name the same principal reasons and a refer band refers the
same rows, queued for review; a partition that fails publishes nothing."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.support.dask_cluster import engine_record
from tests.support.demo_model import fit_demo_pipeline

pytestmark = pytest.mark.integration
ROWS = 3000


@pytest.fixture(scope="module")
def engine(cluster):
    with engine_record(cluster) as record:
        yield record


@pytest.fixture(scope="module")
def model():
    return fit_demo_pipeline(rows=2000, n_estimators=30)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    """3,000 applications in hive folders (3 files of 400-row row groups: 9 partitions); four rows
    break the contract, in different partitions."""
    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=ROWS, seed=9)).drop(columns="default")
    frame["region"] = frame["region"].astype(str)
    frame.loc[5, "income"] = -1.0
    frame.loc[1700, "region"] = "atlantis"
    frame.loc[[2400, 2999], "debt_to_income"] = 9.0
    folder = tmp_path_factory.mktemp("portfolio") / "applications"
    for i, part in enumerate(np.array_split(frame, 3)):
        (folder / f"month={i + 1}").mkdir(parents=True)
        part.to_parquet(folder / f"month={i + 1}" / "part.parquet", index=False, row_group_size=400)
    return folder, frame


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    import os

    folder = tmp_path_factory.mktemp("audit")
    before = os.environ.get("KEEL_AUDIT_ROOT")
    os.environ["KEEL_AUDIT_ROOT"] = str(folder)
    yield folder
    if before is None:
        del os.environ["KEEL_AUDIT_ROOT"]
    else:
        os.environ["KEEL_AUDIT_ROOT"] = before


def _spec(folder: Path, name: str = "dask_batch", extra=()):
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        f"problem.name={name}", f"deployment.folder={folder / 'deployments'}",
        "deployment.allow_folder_outside_project=true", "batch.chunk_rows=150", *extra])


def _score(spec, location, output, model, engine=None, batch_id="batch-1"):
    from keel.batch.inputs import batch_source, fingerprint_input
    from keel.lifecycle.batch import score_input

    return score_input(spec=spec, model=model, threshold=0.3, model_version=1, batch_id=batch_id,
                       location=str(location), query=None,
                       input_fingerprint=fingerprint_input(batch_source(str(location), spec.data)),
                       output=str(output), fmt="parquet", new_batch=False, engine=engine, say=lambda text: None)


@pytest.fixture(scope="module")
def both(portfolio, model, engine, tmp_path_factory, audit):
    """The same portfolio scored by the local engine and by the dask engine (separate deployments, so
    that each keeps its own monitoring rows)."""
    here = tmp_path_factory.mktemp("scored")
    folder, _ = portfolio
    local_spec, dask_spec = _spec(here / "local"), _spec(here / "dask")
    local = _score(local_spec, folder, here / "local.parquet", model)
    distributed = _score(dask_spec, folder, here / "dask.parquet", model, engine)
    return {"local": local, "dask": distributed, "local_spec": local_spec, "dask_spec": dask_spec, "here": here}


def test_dask_and_local_give_the_same_scores_decisions_and_rejects(both, portfolio):
    import pyarrow.parquet as pq

    local, dask = both["local"]["result"], both["dask"]["result"]
    assert (dask["rows_read"], dask["scored"], dask["rejected"]) == (local["rows_read"], local["scored"],
                                                                     local["rejected"]) == (ROWS, ROWS - 4, 4)
    output = Path(dask["output_uri"])
    parts = sorted(output.glob("part-*.parquet"))
    assert output.is_dir() and len(parts) == both["dask"]["result"]["partitions"] == 9
    assert not list(output.parent.glob(".*partial*"))  # nothing left under a temporary name
    local_rows = pq.read_table(local["output_uri"]).to_pandas()
    dask_rows = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    assert list(dask_rows.columns) == list(local_rows.columns)
    # The parts in name order are the input order; `row` is the input row number, as locally.
    assert dask_rows["row"].is_monotonic_increasing
    assert dask_rows["row"].tolist() == local_rows["row"].tolist()
    _, frame = portfolio
    assert dask_rows["application_id"].tolist() == frame["application_id"].astype(str)[dask_rows["row"]].tolist()
    # Each partition's chunks end at other rows than the local chunks: numpy's vectorised functions in the
    # feature pipeline may round a value's last bit differently at a chunk's tail (seen: 1 ulp), hence 1e-12.
    np.testing.assert_allclose(dask_rows["score"].to_numpy(), local_rows["score"].to_numpy(), rtol=1e-12, atol=0)
    assert dask_rows["decision"].tolist() == local_rows["decision"].tolist()
    assert 0 < dask_rows["decision"].sum() < len(dask_rows)  # both decisions occur: the comparison means something
    # The default spec declares reason statements: each decline names the same principal reasons on both engines.
    named = {engine: [[r["feature"] for r in json.loads(text)] if text else None for text in rows["reasons"]]
             for engine, rows in (("local", local_rows), ("dask", dask_rows))}
    assert named["dask"] == named["local"]
    declined = dask_rows["decision"] == 1  # credit: the positive class (default) is the unfavourable decision
    assert all(named["dask"][i] for i in np.flatnonzero(declined)) and not any(
        named["dask"][i] for i in np.flatnonzero(~declined))
    # The rejects are aggregated into one file, in the local engine's row groups: the same bytes.
    assert Path(dask["rejects_uri"]).is_file() and dask["rejects_fingerprint"] == local["rejects_fingerprint"]
    assert sorted(pq.read_table(dask["rejects_uri"]).to_pandas()["row"]) == [5, 1700, 2400, 2999]


def test_monitoring_profiles_merged_from_partitions_count_what_the_local_profiles_count(both):
    from keel.monitoring.batch_traffic import batch_window_profiles, published_batches, read_batch_predictions
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.profiles import column_summary, merge_profiles

    summaries = {}
    for engine in ("local", "dask"):
        folder = monitoring_folder(both[f"{engine}_spec"])
        [marker] = published_batches(folder)
        start = pd.Timestamp(marker["first"]).floor("h").to_pydatetime()
        end = pd.Timestamp(marker["last"]).ceil("h").to_pydatetime() + pd.Timedelta(hours=1)
        profile = merge_profiles(batch_window_profiles(folder, 1, start, end))
        predictions = read_batch_predictions(folder).sort_values("entity_id", ignore_index=True)
        summaries[engine] = (marker["rows"], profile, predictions)
    (local_rows, local, local_predictions), (dask_rows, dask, dask_predictions) = summaries["local"], summaries["dask"]
    assert local_rows == dask_rows == ROWS - 4
    for column in ("income", "debt_to_income", "region", "employment_type", "score", "decision"):
        mine, theirs = column_summary(dask, column), column_summary(local, column)
        assert [mine[k] for k in ("count", "nulls", "frequencies")] == \
               [theirs[k] for k in ("count", "nulls", "frequencies")], column
        if theirs["mean"] is not None:
            assert mine["mean"] == pytest.approx(theirs["mean"], rel=1e-9), column
    assert mine["count"] == ROWS - 4
    pd.testing.assert_frame_equal(dask_predictions.drop(columns="time"), local_predictions.drop(columns="time"))


def test_the_dask_batch_is_recorded_and_one_row_traced_as_a_local_one(both, portfolio):
    from keel.lifecycle.batch import batch_rows, record_batch, recorded_batches

    folder, frame = portfolio
    spec = both["dask_spec"]
    record = record_batch(both["dask"], spec=spec, location=str(folder), query=None, run_id="run-1",
                          run_name="batch_inference-1")
    assert recorded_batches(spec.problem.name) == [record]
    assert record["partitions"] == 9 and "dask" in record["engine"] and "2 worker(s)" in record["engine"]
    wanted = str(frame.loc[2500, "application_id"])
    [row] = batch_rows(record, wanted, spec.data.id_column)
    assert row["row"] == 2500 and row["batch_id"] == "batch-1"
    with pytest.raises(LookupError, match="rejected"):
        batch_rows(record, str(frame.loc[1700, "application_id"]), spec.data.id_column)


def test_a_refer_band_refers_the_same_rows_on_both_engines_and_queues_them_for_review(model, engine, portfolio,
                                                                                     tmp_path, audit):
    import pyarrow.parquet as pq

    from keel.deployment.deploy import prediction_log_url
    from keel.serving.reviews import pending_reviews

    folder, _ = portfolio
    band = ["decisions.refer_band=[0.25, 0.35]"]
    local_spec = _spec(tmp_path / "local", name="dask_refer", extra=band)
    dask_spec = _spec(tmp_path / "dask", name="dask_refer", extra=band)
    local = _score(local_spec, folder, tmp_path / "local.parquet", model)["result"]
    dask = _score(dask_spec, folder, tmp_path / "dask.parquet", model, engine)["result"]
    local_rows = pq.read_table(local["output_uri"]).to_pandas()
    dask_rows = pd.concat([pq.read_table(p).to_pandas() for p in sorted(Path(dask["output_uri"]).glob("part-*"))],
                          ignore_index=True)
    assert dask_rows["decision"].tolist() == local_rows["decision"].tolist()
    assert dask_rows["model_decision"].tolist() == local_rows["model_decision"].tolist()
    referred = dask_rows.loc[dask_rows["decision"] == "refer"]
    assert len(referred) and referred["score"].between(0.25, 0.35, inclusive="left").all()
    queued = pending_reviews(prediction_log_url(dask_spec), limit=10_000)
    assert sorted(review["row"] for review in queued) == sorted(referred["row"].tolist())


def test_a_failing_partition_publishes_nothing(model, engine, tmp_path, audit, portfolio):
    from keel.batch.contract import MissingColumnsError
    from keel.batch.scoring import BatchScoringError
    from keel.monitoring.batch_traffic import published_batches
    from keel.monitoring.monitor import monitoring_folder

    _, frame = portfolio
    folder = tmp_path / "broken"
    for i, part in enumerate(np.array_split(frame.drop(columns="income"), 2)):  # a feature every row needs
        (folder / f"month={i}").mkdir(parents=True)
        part.to_parquet(folder / f"month={i}" / "p.parquet", index=False, row_group_size=500)
    spec = _spec(tmp_path / "deployments-broken", name="dask_broken")
    output = tmp_path / "out" / "scores.parquet"
    with pytest.raises(MissingColumnsError, match="income"):
        _score(spec, folder, output, model, engine)
    assert not output.exists() and not (output.parent.exists() and list(output.parent.iterdir()))
    assert published_batches(monitoring_folder(spec)) == []
    empty = tmp_path / "empty"
    (empty / "month=0").mkdir(parents=True)
    frame.head(0).to_parquet(empty / "month=0" / "p.parquet", index=False)  # an export that found nothing
    with pytest.raises(BatchScoringError, match="the input has no rows"):
        _score(spec, empty, output, model, engine)
    assert not output.exists() and not list(output.parent.iterdir())
    assert published_batches(monitoring_folder(spec)) == []


def test_attributes_sent_for_fairness_are_checked_and_kept_with_the_monitoring_rows(model, engine, portfolio,
                                                                                    tmp_path):
    """monitoring.fairness.groups_from: request: a sensitive attribute beside the features is checked
    against the spec's groups (an undeclared group rejects its row), kept with each monitoring row of
    the worker's partition, and never given to the model."""
    import pyarrow.parquet as pq

    from keel.batch.inputs import batch_source
    from keel.engine.cluster import connect
    from keel.engine.dask_scoring import score_partitioned
    from keel.engine.spec import engine_from_dict

    _, frame = portfolio
    spec = _spec(tmp_path)
    with_groups = frame.assign(sex=np.where(np.arange(len(frame)) % 2, "female", "male"))
    with_groups.loc[100, "sex"] = "robot"
    folder = tmp_path / "grouped"
    for i, part in enumerate(np.array_split(with_groups, 2)):
        (folder / f"month={i}").mkdir(parents=True)
        part.to_parquet(folder / f"month={i}" / "p.parquet", index=False, row_group_size=500)
    predictions = tmp_path / "predictions"
    batch = score_partitioned(connect(engine_from_dict(engine)), source=batch_source(str(folder), spec.data),
                              data=spec.data, model=model, threshold=0.3, model_version=1, batch_id="batch-g",
                              input_fingerprint="sha256:x", output=tmp_path / "out.parquet",
                              rejects=tmp_path / "out.rejects.parquet", chunk_rows=400,
                              predictions_folder=predictions, features=spec.data.model_features,
                              logged_attributes=["sex"])
    rejects = pq.read_table(batch.result["rejects_uri"]).to_pandas()
    assert 100 in rejects["row"].tolist() and batch.result["rejected"] == 5  # the four of the portfolio, and 100
    logged = pd.concat([pq.read_table(p).to_pandas() for p in sorted(predictions.glob("part-*.parquet"))])
    assert len(logged) == batch.monitored_rows == ROWS - 5 and set(logged["sex"]) == {"female", "male"}
    assert logged["entity_id"].tolist() == frame.drop(index=[5, 100, 1700, 2400, 2999])["application_id"].astype(str).tolist()


def test_rows_a_mitigated_version_scored_without_its_mitigation_are_counted_across_partitions(engine, tmp_path):
    """As the local engine counts them (tests/unit/test_mitigation_evidence.py): rows without the
    attribute and rows of a group the mitigation left out, summed over the workers' partitions."""
    from keel.batch.inputs import batch_source
    from keel.engine.cluster import connect
    from keel.engine.dask_scoring import score_partitioned
    from keel.engine.spec import engine_from_dict
    from keel.evaluation.mitigation import fit_mitigated_version, rows_without_mitigation
    from tests.unit.test_mitigation_shippable import _spec as mitigation_spec, linear_model, mitigation_splits

    splits = mitigation_splits()
    spec = mitigation_spec("threshold_optimizer")
    model, _ = fit_mitigated_version(linear_model(splits), splits["train"], splits["validation"], splits["test"],
                                     spec, 1, {})
    test = splits["test"].copy()
    test.loc[test.index[:3], "site"] = np.nan
    folder = tmp_path / "applicants"
    for i, part in enumerate(np.array_split(test, 3)):
        (folder / f"part={i}").mkdir(parents=True)
        part.to_parquet(folder / f"part={i}" / "p.parquet", index=False, row_group_size=100)
    batch = score_partitioned(connect(engine_from_dict(engine)), source=batch_source(str(folder), spec.data),
                              data=spec.data, model=model, threshold=0.5, model_version=2, batch_id="batch-m",
                              input_fingerprint="sha256:x", output=tmp_path / "out.parquet",
                              rejects=tmp_path / "out.rejects.parquet", chunk_rows=100, predictions_folder=None,
                              features=spec.data.model_features)
    assert batch.result["scored"] == len(test)
    assert batch.result["rows_without_mitigation"] == rows_without_mitigation(model, test) == {
        "attribute missing": 3, "group not fitted": 8}
    assert batch.result["mitigation_attribute"] == "site"

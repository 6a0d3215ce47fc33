"""What a mitigated version keeps of its base and says about itself (helper-54): the base's screening
record, principal reasons (a threshold_optimizer version's are its base model's), the rows a batch
scored without the mitigation, and Annex IV's metrics labelled with their operating point."""

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from keel.training.fit import predict_scores
from tests.unit.test_mitigation_shippable import TINY, _spec, linear, splits  # noqa: F401 (fixtures)

SCREENING = {"rows_screened": 1500, "leakage_auc": 0.9, "proxy_auc": 0.75, "leakage_suspects": ["test_score"],
             "proxies": ["portfolio -> site (AUC 0.81)"], "not_judged": [], "blocking": False}


@pytest.fixture(scope="module")
def mitigated(splits, linear):  # noqa: F811
    from keel.evaluation.mitigation import fit_mitigated_version

    return fit_mitigated_version(linear, splits["train"], splits["validation"], splits["test"],
                                 _spec("threshold_optimizer"), 1, {})


def test_a_mitigated_version_records_its_bases_screening_and_data_facts(splits, mitigated):  # noqa: F811
    from keel.data.screening import screening_rows
    from keel.evaluation.mitigation import mitigated_registration_metadata

    base = {"model_family": "logistic_regression", "hyperparameters": {"C": 1.0}, "data_fingerprint": "f" * 64,
            "data_source": "csv screening.csv", "screening": SCREENING, "validation_metrics": {"roc_auc": 0.8}}
    model, report = mitigated
    metadata = mitigated_registration_metadata(model, report, splits["train"], splits["validation"], splits["test"],
                                               _spec("threshold_optimizer"), base, "s" * 64, {})
    for key in ("data_fingerprint", "data_source", "screening"):
        assert metadata[key] == base[key], key
    # The model card and Annex IV rows of the two versions are the same findings, not "not recorded".
    assert screening_rows(metadata["screening"]) == screening_rows(base["screening"])
    assert ("Proxy", "portfolio -> site (AUC 0.81)") in screening_rows(metadata["screening"])
    assert metadata["model_family"] == "logistic_regression + threshold_optimizer" and metadata["mitigated_from"] == 1
    assert "engine" not in metadata  # a base trained in process has no engine record
    # A base trained on the dask engine: the mitigated version carries its record, so that whoever reads the
    # version (the champion comparison: its training rows are a sample) knows where its rows came from.
    engine = {"layout": "2 workers", "rows": {"train": 60_000}, "sample_rows": {"train": 20_000}}
    on_dask = mitigated_registration_metadata(model, report, splits["train"], splits["validation"], splits["test"],
                                              _spec("threshold_optimizer"), {**base, "engine": engine}, "s" * 64, {})
    assert on_dask["engine"] == engine


def test_a_threshold_optimizer_version_gives_its_base_models_reasons(splits, linear, mitigated):  # noqa: F811
    from keel.evaluation.mitigation import reasons_model
    from keel.serving.fast_path import compile_row_scorer
    from keel.serving.reasons import PROXIES_ATTRIBUTE, ReasonGiver

    spec = _spec("threshold_optimizer")
    model, report = mitigated
    background = splits["validation"][spec.data.model_features]
    # The version itself has no reasons to give (what the service answered: `reasons: null`).
    assert ReasonGiver.for_pipeline(model, None, spec.data, spec.decisions, background=background) is None
    setattr(model, PROXIES_ATTRIBUTE, ["portfolio"])
    base = reasons_model(model)
    assert getattr(base, PROXIES_ATTRIBUTE) == ["portfolio"] and not hasattr(model.model, PROXIES_ATTRIBUTE)
    giver = ReasonGiver.for_pipeline(base, compile_row_scorer(base, background), spec.data, spec.decisions,
                                     background=background)
    assert giver is not None
    test = splits["test"]
    rejected = test[predict_scores(model, test) < report["threshold"]["threshold"]].head(5)
    reasons = giver.for_frame(rejected)
    assert len(reasons) == 5 and any(reasons)
    named = {r["feature"] for given in reasons for r in given}
    assert "site" not in named and "portfolio" not in named  # the attribute and a flagged proxy never are
    # The reasons are the base model's own: its log-odds pushed toward the rejection.
    plain = ReasonGiver.for_pipeline(linear, compile_row_scorer(linear, background), spec.data, spec.decisions,
                                     excluded=["portfolio"], background=background)
    assert plain.for_frame(rejected) == reasons
    assert report["principal_reasons"]["available"] is True
    assert "base model v1's contributions" in report["principal_reasons"]["how"]


def test_a_version_without_contributions_owes_reasons_and_is_refused(splits):  # noqa: F811
    from keel.evaluation.mitigation import reasons_refusal, reasons_statement

    spec = _spec("threshold_optimizer")
    opaque = Pipeline([("model", DummyClassifier())]).fit(splits["train"][["years"]], splits["train"]["shortlisted"])
    available, how = reasons_statement(opaque, "exponentiated_gradient", "positive", 1)
    assert not available and how.startswith("NONE")
    refusal = reasons_refusal(opaque, spec.data, "screening", 2)
    assert refusal and "screening v2 cannot give principal reasons" in refusal
    # None owed without data.target.favourable: nothing to refuse.
    undeclared = spec.data.model_copy(update={"target": spec.data.target.model_copy(update={"favourable": None})})
    assert reasons_refusal(opaque, undeclared, "screening", 2) is None
    assert reasons_statement(opaque, "exponentiated_gradient", None, 1)[0] is True


def test_rows_scored_without_their_group_are_counted(splits, linear, mitigated):  # noqa: F811
    from keel.evaluation.mitigation import (add_rows_without_mitigation, describe_rows_without_mitigation,
                                            rows_without_mitigation)

    model, _ = mitigated
    test = splits["test"].copy()
    test.loc[test.index[:3], "site"] = np.nan
    counts = rows_without_mitigation(model, test)
    assert counts == {"attribute missing": 3, "group not fitted": 8}  # the tiny group is left out
    # Those rows get the base model's probability: the mitigation was not applied to them.
    without = (test["site"].isna() | (test["site"] == TINY)).to_numpy()
    assert np.array_equal(predict_scores(model, test)[without], predict_scores(linear, test)[without])
    assert rows_without_mitigation(model, test.drop(columns="site")) == {"attribute missing": len(test)}
    assert rows_without_mitigation(linear, test) == {}
    totals = add_rows_without_mitigation({}, model, test.head(100))
    assert add_rows_without_mitigation(totals, model, test.iloc[100:]) == counts  # chunk by chunk, as a batch
    line = describe_rows_without_mitigation(counts, len(test), "site")
    assert line.startswith(f"11 of {len(test)} rows scored WITHOUT the mitigation") and "3 attribute missing" in line
    assert describe_rows_without_mitigation({"attribute missing": 0, "group not fitted": 0}, 10, "site") is None


def test_annex_iv_labels_each_metric_with_its_operating_point():
    from keel.governance.annex_iv import metric_rows

    metadata = {"test_metrics": {"precision": 0.6081, "recall": 0.5488, "roc_auc": 0.8}, "metrics_threshold": 0.5,
                "validation_metrics": {"recall": 0.55}}
    rows = {label: value for label, value, _ in metric_rows(metadata, None)}
    assert rows["test recall @ 0.5 (training's fixed threshold, not the decision threshold)"] == 0.5488
    assert rows["test roc_auc"] == 0.8
    assert "test recall" not in rows  # never unlabelled beside the decision threshold
    performance = {"threshold": 0.2536, "metrics": {"recall": 0.9512, "roc_auc": 0.8}}
    rows = {label: (value, source) for label, value, source in metric_rows(metadata, performance)}
    assert rows["test recall @ 0.2536 (decision threshold)"] == (0.9512, "evaluation run")
    assert rows["test roc_auc"] == (0.8, "evaluation run") and rows["test roc_auc (at registration)"][0] == 0.8


def test_a_batch_counts_records_and_shows_the_rows_its_mitigated_version_scored_without_it(
        tmp_path, splits, linear, mitigated):  # noqa: F811
    """A batch used to give rows without the attribute (or of a group the mitigation left out) the base
    model's answer with no word of it: the result, the batch record and its lineage now say how many."""
    from keel.batch.inputs import batch_source
    from keel.batch.scoring import score_batch
    from keel.governance.lineage import batch_lineage
    from keel.lifecycle.batch import batch_key, build_record

    model, _ = mitigated
    data = _spec("threshold_optimizer").data
    test = splits["test"].copy()
    test.loc[test.index[:3], "site"] = np.nan
    test.to_csv(tmp_path / "input.csv", index=False)

    def score(version_model, batch_id):
        return score_batch(source=batch_source(str(tmp_path / "input.csv"), data), data=data, model=version_model,
                           threshold=0.5, model_version=2, batch_id=batch_id, input_fingerprint="sha256:x",
                           output=tmp_path / f"{batch_id}.parquet", rejects=tmp_path / f"{batch_id}-rejects.parquet",
                           chunk_rows=100)  # several chunks: the counts add up across them

    result = score(model, "b1")
    assert result["scored"] == len(test)
    assert result["rows_without_mitigation"] == {"attribute missing": 3, "group not fitted": 8}
    assert result["mitigation_attribute"] == "site"
    plain = score(linear, "b2")
    assert plain["rows_without_mitigation"] == {} and plain["mitigation_attribute"] is None

    def record_of(batch):
        return build_record({"key": batch_key("sha256:x", 2, "s"), "skipped_for": None, "started_at": "t0",
                             "finished_at": "t1", "rescored_from": None, "monitoring_replaced": [], "result": batch},
                            model="screening", source="csv:input.csv", max_reject_fraction=0.1, actor="a",
                            run_id=None, run_name=None)

    record = record_of(result)
    assert record["rows_without_mitigation"] == {"attribute missing": 3, "group not fitted": 8}
    shown = dict(batch_lineage(record, "unchanged"))["mitigation"]
    assert shown.startswith(f"11 of {len(test)} rows scored WITHOUT the mitigation") and "(site)" in shown
    assert "rows_without_mitigation" not in record_of(plain) and "mitigation" not in dict(batch_lineage(
        record_of(plain), "unchanged"))


def test_the_mitigations_own_uplift_gate_names_its_baseline(splits, linear):  # noqa: F811
    """gate_evidence (the before/after of `mitigate`) judged a value_uplift_vs_baseline gate without saying
    against what; it names the policy, as `evaluate`'s gate does."""
    from keel.evaluation.mitigation import gate_evidence

    spec = _spec(gates=[{"metric": "value_uplift_vs_baseline", "min": 0}])
    rows = gate_evidence(linear, splits["validation"], splits["test"], spec)["decision"]["gates"]
    (row,) = [r for r in rows if r["metric"] == "value_uplift_vs_baseline"]
    assert row["gate"] == "value_uplift_vs_baseline >= 0 (baseline: predict 0 for everyone)"

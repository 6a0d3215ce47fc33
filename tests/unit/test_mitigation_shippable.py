"""Mitigation a user can ship (in process, no ZenML), on a small screening table unlike keel's credit
data: favourable = the positive class, a sensitive attribute kept out of the features, and a tiny
group (8 rows per split, one label only) that the small-group rule cannot judge."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from keel.spec import SpecError, validate_spec
from keel.training.fit import predict_scores

SITES = ("harbour", "uplands")
TINY = "islet"  # 8 rows per split, every one of them label 0


def _spec(method="none", constraint="demographic_parity", at_decision_time=True, **evaluation):
    mitigation = {"method": method, "constraint": constraint, "attribute": "site"}
    if method == "threshold_optimizer":
        mitigation["attribute_at_decision_time"] = at_decision_time
    return validate_spec({
        "problem": {"name": "screening", "objective": "shortlist applicants for interview",
                    "business_metric": "interviews that lead to offers",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "unused.csv"},
                 "target": {"column": "shortlisted", "positive": 1, "negative": 0, "positive_label": "shortlisted",
                            "favourable": "positive"},
                 "features": {"test_score": {"type": "numeric"}, "portfolio": {"type": "numeric"},
                              "years": {"type": "integer", "min": 0, "max": 40},
                              "track": {"type": "categorical", "categories": ["design", "build", "run"]}},
                 "sensitive_attributes": {"site": {"categories": [*SITES, TINY]}},
                 "min_group_size": 30, "min_group_outcomes": 5},
        "training": {"candidate": {"params": {"n_estimators": 25}, "trials": 1}},
        "evaluation": {"threshold": {"rule": "max_f1"}, "mitigation": mitigation,
                       "value_matrix": {"true_positive": 5, "false_positive": -2, "true_negative": 0,
                                        "false_negative": -1, "currency": "points"},
                       "latency": {"single_row_calls": 10, "batch_size": 50, "batch_calls": 1, "max_rounds": 1},
                       "performance": {"interval_samples": 50}, "robustness": {"max_rows": 300},
                       "gates": [{"metric": "demographic_parity_ratio", "attribute": "site", "min": 0.8},
                                 {"metric": "roc_auc", "min": 0.6}], **evaluation},
    })


def _split(rng, rows: int) -> pd.DataFrame:
    """`uplands` applicants score lower on the test for the same portfolio (a biased test)."""
    site = rng.choice(SITES, rows, p=[0.55, 0.45])
    portfolio = rng.normal(0, 1, rows)
    years = rng.integers(0, 30, rows).astype(float)
    test_score = portfolio + rng.normal(0, 0.8, rows) - 1.5 * (site == "uplands")
    track = rng.choice(["design", "build", "run"], rows)
    logit = 1.2 * portfolio + 0.04 * years - 0.3 + 0.4 * (track == "build") - 1.2 * (site == "uplands")
    frame = pd.DataFrame({"test_score": test_score, "portfolio": portfolio, "years": years, "track": track,
                          "site": site, "shortlisted": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)})
    tiny = frame.head(8).copy()
    tiny["site"], tiny["shortlisted"] = TINY, 0
    return pd.concat([frame, tiny], ignore_index=True)


def mitigation_splits() -> dict:
    rng = np.random.default_rng(11)
    return {name: _split(rng, rows) for name, rows in (("train", 1500), ("validation", 700), ("test", 700))}


def linear_model(splits: dict):
    from keel.features.preprocessing import fit_preprocessor
    from keel.training.fit import fit_baseline

    spec = _spec()
    features = fit_preprocessor(splits["train"], spec.data)
    return fit_baseline(features, splits["train"], splits["validation"], spec.data, spec.training).pipeline


@pytest.fixture(scope="module")
def splits():
    return mitigation_splits()


@pytest.fixture(scope="module")
def linear(splits):
    return linear_model(splits)


def _before(model, splits, spec):
    from keel.evaluation.mitigation import gate_evidence

    return {"decision": gate_evidence(model, splits["validation"], splits["test"], spec)}


# --- (a) the small-group rule -------------------------------------------------------------------


@pytest.mark.parametrize("method,constraint", [("threshold_optimizer", "demographic_parity"),
                                               ("threshold_optimizer", "equalized_odds"),
                                               ("exponentiated_gradient", "demographic_parity"),
                                               ("exponentiated_gradient", "equalized_odds")])
def test_a_group_the_rule_cannot_judge_never_reaches_fairlearn(monkeypatch, splits, linear, method, constraint):
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import ExponentiatedGradient

    from keel.evaluation.mitigation import mitigate

    seen = []
    for cls in (ThresholdOptimizer, ExponentiatedGradient):
        fit = cls.fit

        def spy(self, *args, _fit=fit, **kwargs):
            seen.append(set(map(str, np.asarray(kwargs["sensitive_features"]))))
            return _fit(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", spy)
    spec = _spec(method, constraint)
    report = mitigate(linear, splits["train"], splits["validation"], splits["test"], spec,
                      _before(linear, splits, spec))
    assert report["applied"], report.get("reason")
    assert set(report["groups_left_out"]) == {TINY} and "8 rows (< 30)" in report["groups_left_out"][TINY]
    assert report["groups_fitted"] == sorted(SITES)
    assert all(groups == set(SITES) for groups in seen)
    if method == "exponentiated_gradient" or constraint == "equalized_odds":
        assert seen, "fairlearn was not called"


def test_threshold_optimizer_decides_the_tiny_group_as_without_mitigation(splits, linear):
    from keel.evaluation.mitigation import fit_mitigation

    test = splits["test"]
    tiny = test[test["site"] == TINY]
    probability = predict_scores(linear, tiny)
    mapped, _ = fit_mitigation(linear, splits["train"], splits["validation"], _spec("threshold_optimizer"))
    assert np.array_equal(predict_scores(mapped, tiny), probability)  # the model's own probability
    decided, facts = fit_mitigation(linear, splits["train"], splits["validation"],
                                    _spec("threshold_optimizer", "equalized_odds"))
    assert np.array_equal(predict_scores(decided, tiny), (probability >= facts["base_threshold"]).astype(float))
    # The judged groups get their own thresholds, and those differ.
    assert set(facts["group_thresholds"]) == set(SITES)
    assert facts["group_thresholds"]["harbour"] != facts["group_thresholds"]["uplands"]


def test_fewer_than_two_judgeable_groups_is_reported_never_a_pass(splits, linear):
    from keel.evaluation.mitigation import MitigationNotApplicable, fit_mitigated_version, mitigate

    spec = _spec("threshold_optimizer")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"min_group_size": 500})})  # only harbour
    report = mitigate(linear, splits["train"], splits["validation"], splits["test"], spec, _before(linear, splits, spec))
    assert not report["applied"] and "at least two groups" in report["reason"]
    assert report["decision"]["decision"] == "incomplete" and not report["decision"]["passed"]
    with pytest.raises(MitigationNotApplicable, match="at least two groups"):
        fit_mitigated_version(linear, splits["train"], splits["validation"], splits["test"], spec, 1, {})


def test_a_mitigated_version_is_not_mitigated_again(splits, linear):
    from keel.evaluation.mitigation import MitigationNotApplicable, fit_mitigated_version

    with pytest.raises(MitigationNotApplicable, match="v4 is itself mitigated .from v3.: mitigate v3 instead"):
        fit_mitigated_version(linear, splits["train"], splits["validation"], splits["test"],
                              _spec("exponentiated_gradient"), 4, {"mitigated_from": 3})


# --- (c) the attribute at decision time ----------------------------------------------------------


def test_threshold_optimizer_is_a_spec_error_unless_the_attribute_may_be_used_at_decision_time():
    with pytest.raises(SpecError, match=r"evaluation\.mitigation\.attribute_at_decision_time"):
        _spec("threshold_optimizer", at_decision_time=False)
    assert _spec("threshold_optimizer").evaluation.mitigation.attribute_at_decision_time
    assert not _spec("exponentiated_gradient").evaluation.mitigation.attribute_at_decision_time


# --- (b) a model keel can score, serve, explain and hash ------------------------------------------


def test_demographic_parity_scores_give_each_judged_group_one_rate_at_every_threshold(splits, linear):
    from keel.evaluation.mitigation import fit_mitigation

    validation = splits["validation"]
    mitigated, _ = fit_mitigation(linear, splits["train"], validation, _spec("threshold_optimizer"))
    sites = validation["site"].to_numpy()

    def worst_gap(scores):
        gaps = [abs(np.mean(scores[sites == SITES[0]] >= cut) - np.mean(scores[sites == SITES[1]] >= cut))
                for cut in np.quantile(scores, [0.2, 0.4, 0.6, 0.8])]
        return max(gaps)

    assert worst_gap(predict_scores(mitigated, validation)) <= 0.02
    assert worst_gap(predict_scores(linear, validation)) > 0.1  # the unmitigated model: the test can tell


def test_equalized_odds_version_scores_are_its_decisions_and_its_auc_is_theirs(splits, linear):
    from sklearn.metrics import roc_auc_score

    from keel.evaluation.mitigation import fit_mitigated_version

    spec = _spec("threshold_optimizer", "equalized_odds")
    model, report = fit_mitigated_version(linear, splits["train"], splits["validation"], splits["test"], spec, 1, {})
    scores = predict_scores(model, splits["test"])
    assert set(np.unique(scores)) == {0.0, 1.0}
    after = {r["metric"]: r for r in report["before_after"]}["roc_auc"]
    assert after["after"] == pytest.approx(roc_auc_score(splits["test"]["shortlisted"], scores), abs=1e-6)
    assert after["before"] == pytest.approx(roc_auc_score(splits["test"]["shortlisted"],
                                                          predict_scores(linear, splits["test"])), abs=1e-6)
    assert after["after"] != pytest.approx(after["before"], abs=1e-3)


@pytest.mark.parametrize("family", ["logistic_regression", "lightgbm"])
def test_exponentiated_gradient_serves_one_model_of_the_family(splits, family):
    from keel.evaluation.explainability import shap_contributions
    from keel.evaluation.mitigation import combine_in_log_odds, fit_mitigation
    from keel.features.preprocessing import fit_preprocessor
    from keel.governance.explanations import explain_additively
    from keel.serving.fast_path import compile_row_scorer
    from keel.training.estimators import make_lightgbm
    from keel.training.fit import fit_baseline

    spec = _spec("exponentiated_gradient")
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    features = fit_preprocessor(train, spec.data)
    model = fit_baseline(features, train, validation, spec.data, spec.training).pipeline
    if family == "lightgbm":
        from sklearn.pipeline import Pipeline

        estimator = make_lightgbm({"n_estimators": 25}, 0, 1).fit(features.transform(train[spec.data.model_features]),
                                                                  train["shortlisted"])
        model = Pipeline([("features", features), ("model", estimator)])
    mitigated, facts = fit_mitigation(model, train, validation, spec)
    assert type(mitigated.named_steps["model"]) is type(model.named_steps["model"])
    assert list(mitigated.feature_names_in_) == spec.data.model_features  # no attribute at decision time

    # Exact: the combined model's log-odds are the weighted predictors' (checked on its own predictors).
    x = features.transform(test[spec.data.model_features])
    rng = np.random.default_rng(0)
    predictors = []
    for seed in range(3):
        weights = rng.random(len(train))
        clone = model.named_steps["model"].__class__(**model.named_steps["model"].get_params())
        predictors.append((clone.fit(features.transform(train[spec.data.model_features]), train["shortlisted"],
                                     sample_weight=weights), [0.5, 0.3, 0.2][seed]))

    def log_odds(estimator):
        probability = np.clip(estimator.predict_proba(x)[:, 1], 1e-15, 1 - 1e-15)
        return np.log(probability / (1 - probability))

    combined = combine_in_log_odds(predictors)
    expected = sum(weight * log_odds(p) for p, weight in predictors)
    assert np.allclose(log_odds(combined), expected, atol=1e-8)

    # What serving, SHAP and the /explain decomposition expect of a model.
    explained = explain_additively(mitigated, test.head(20), spec.data, validation)
    assert np.allclose(explained.base_value + explained.contributions.sum(axis=1), explained.raw_output, atol=1e-6)
    assert np.allclose(1 / (1 + np.exp(-explained.raw_output)), predict_scores(mitigated, test.head(20)), atol=1e-9)
    assert shap_contributions(mitigated, test.head(20), spec.data, validation).shape == (20, 4)
    assert compile_row_scorer(mitigated, validation[spec.data.model_features]) is not None
    copy = pickle.loads(pickle.dumps(mitigated))
    assert np.array_equal(predict_scores(copy, test), predict_scores(mitigated, test))


def test_threshold_optimizer_model_is_a_picklable_estimator_with_the_attribute_as_input(splits, linear):
    from keel.evaluation.explainability import shap_contributions
    from keel.evaluation.mitigation import fit_mitigation
    from keel.evaluation.suite import decision_model
    from keel.training.fit import model_hash

    spec = _spec("threshold_optimizer")
    mitigated, _ = fit_mitigation(linear, splits["train"], splits["validation"], spec)
    assert list(mitigated.feature_names_in_) == [*spec.data.model_features, "site"]
    copy = pickle.loads(pickle.dumps(mitigated))
    assert model_hash(copy) == model_hash(pickle.loads(pickle.dumps(copy)))
    assert np.array_equal(predict_scores(copy, splits["test"]), predict_scores(mitigated, splits["test"]))
    assert shap_contributions(mitigated, splits["test"].head(10), spec.data, splits["validation"]).shape == (10, 4)
    # Recalibration on top of it works like on any classifier.
    isotonic = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(
        update={"calibration": spec.evaluation.calibration.model_copy(update={"method": "isotonic"})})})
    scoring, threshold = decision_model(mitigated, splits["validation"], isotonic)
    assert 0 <= threshold["threshold"] <= 1 and predict_scores(scoring, splits["test"]).shape == (len(splits["test"]),)


# --- (c) the service -----------------------------------------------------------------------------


def _scorer(tmp_path, spec, models, serving_version):
    from keel.deployment.bundle import write_bundle
    from keel.serving.routing import Arm, RoutingTable
    from keel.serving.scorer import Scorer

    write_bundle(tmp_path, spec, models, {v: 0.5 for v in models}, RoutingTable([Arm("champion", serving_version, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", None)
    return Scorer(tmp_path)


def _record(frame: pd.DataFrame, index: int, with_site: bool) -> dict:
    record = json.loads(frame[["test_score", "portfolio", "years", "track"]].iloc[[index]].to_json(orient="records"))[0]
    if with_site:
        record["site"] = frame["site"].iloc[index]
    return record


def test_the_service_takes_the_attribute_only_for_the_version_that_decides_with_it(tmp_path, splits, linear):
    from keel.evaluation.mitigation import fit_mitigation

    spec = _spec("threshold_optimizer", "equalized_odds")
    mitigated, _ = fit_mitigation(linear, splits["train"], splits["validation"], spec)
    test = splits["test"]
    index = int(np.flatnonzero(test["site"].to_numpy() == "uplands")[0])
    expected = float(predict_scores(mitigated, test.iloc[[index]])[0])

    # v2 decides with `site`: accepted, used, logged.
    scorer = _scorer(tmp_path / "mitigated", spec, {1: linear, 2: mitigated}, serving_version=2)
    answer = scorer.predict(json.dumps(_record(test, index, True)).encode(), {})
    assert answer.status == 200, answer.body
    assert answer.body["predictions"][0]["score"] == pytest.approx(expected)
    assert scorer.log.read()[0]["inputs"]["site"] == "uplands"
    # A wrong category is refused like any other field; a record without the attribute is decided at
    # the model's own threshold, as a group the rule cannot judge.
    bad = {**_record(test, index, False), "site": "atlantis"}
    assert scorer.predict(json.dumps(bad).encode(), {}).status == 422
    assert scorer.predict(json.dumps(_record(test, index, False)).encode(), {}).status == 200
    explained = scorer.explain(json.dumps(_record(test, index, True)).encode(), {})
    assert explained.status == 200 and explained.body["mitigation"]["group"] == "uplands"

    # v1 in the same bundle gets the same payload, but `site` is never one of its inputs.
    scorer = _scorer(tmp_path / "plain_routed", spec, {1: linear, 2: mitigated}, serving_version=1)
    answer = scorer.predict(json.dumps(_record(test, index, True)).encode(), {})
    assert answer.status == 200
    assert answer.body["predictions"][0]["score"] == pytest.approx(float(predict_scores(linear, test.iloc[[index]])[0]), abs=1e-6)

    # No version deciding with it: the attribute is an unknown field, as before.
    scorer = _scorer(tmp_path / "plain", spec, {1: linear}, serving_version=1)
    answer = scorer.predict(json.dumps(_record(test, index, True)).encode(), {})
    assert answer.status == 422 and answer.body["errors"][0] == {"field": "site", "problem": "unknown field",
                                                                 "found": "uplands"}


# --- (d) the before/after table in the reports ----------------------------------------------------


def test_model_card_and_annex_iv_show_every_gate_metric_before_and_after(splits, linear):
    from keel.evaluation.mitigation import fit_mitigated_version, mitigated_version_facts
    from keel.evaluation.model_card import card_sections, model_card_markdown
    from keel.evaluation.suite import evaluate_all
    from keel.governance.annex_iv import documentation_markdown, documentation_sections

    spec = _spec("exponentiated_gradient")
    model, report = fit_mitigated_version(linear, splits["train"], splits["validation"], splits["test"], spec, 3, {})
    facts = mitigated_version_facts(report, 3)
    table = report["before_after"]
    assert {"roc_auc", "f1", "demographic_parity_ratio[site]", "expected_calibration_error", "p95_latency_ms",
            "robustness_max_drop", "value_uplift_vs_baseline"} <= {r["metric"] for r in table}
    reports = evaluate_all(model, splits["validation"], splits["test"], spec)
    card = model_card_markdown("screening", 4, card_sections(spec, "screening", 4, {"mitigation": facts},
                                                             {**reports, "comparison": None}))
    annex = documentation_markdown("screening", 4, documentation_sections(spec, "screening", 4, {"mitigation": facts},
                                                                          {}, []), None)
    for document in (card, annex):
        assert "v3 mitigated by exponentiated_gradient" in document
        for row in table:
            before = "-" if row["before"] is None else f"{row['before']:.4g}"
            after = "-" if row["after"] is None else f"{row['after']:.4g}"
            assert f"| {row['metric']} | {before} -> {after}" in document, row["metric"]
    # The mitigated version's own evaluation measures the same after-values as the table (same functions).
    dp_after = {r["metric"]: r["after"] for r in table}["demographic_parity_ratio[site]"]
    assert reports["decision"]["values"]["demographic_parity_ratio[site]"] == pytest.approx(dp_after)


def test_mitigation_judges_groups_as_evaluate_does_rows_for_parity_outcomes_too_for_equalized_odds():
    """60 rows of a site with 2 favourable outcomes: enough to judge (and so to mitigate) its approval
    rate, too few for its TPR/FPR. The decisions never enter: the model's own bias cannot hide a group."""
    from keel.evaluation.mitigation import judge_groups

    groups = pd.Series(["harbour"] * 100 + ["uplands"] * 100 + ["islet"] * 60 + ["tiny"] * 10)
    y = np.r_[np.arange(200) % 2, np.arange(60) < 2, np.arange(10) % 2]
    parity = judge_groups(y, groups, _spec().data, "demographic_parity")
    assert parity == (["harbour", "islet", "uplands"], {"tiny": "10 rows (< 30)"})
    odds = judge_groups(y, groups, _spec(constraint="equalized_odds").data, "equalized_odds")
    assert odds == (["harbour", "uplands"], {"islet": "2 favourable outcomes (< 5)", "tiny": "10 rows (< 30)"})


def test_a_mitigation_that_widens_the_gap_it_targets_says_so():
    """Fitted on validation rows, a mitigation can leave the test split's gap wider (seen: equalized odds
    on 12 groups, 0.389 -> 0.553). Its gates judge the version; this names the failure of its purpose."""
    from keel.evaluation.mitigation import describe_mitigation, worsened_target

    odds = {"equalized_odds_difference[grp]": {"before": 0.389, "after": 0.553}}
    assert worsened_target(odds, "equalized_odds", "grp") == "equalized_odds_difference[grp] 0.389 -> 0.553"
    assert worsened_target({"equalized_odds_difference[grp]": {"before": 0.389, "after": 0.2}},
                           "equalized_odds", "grp") is None
    parity = {"demographic_parity_ratio[grp]": {"before": 0.7, "after": 0.6}}  # higher is better
    assert worsened_target(parity, "demographic_parity", "grp") == "demographic_parity_ratio[grp] 0.7 -> 0.6"
    assert worsened_target({"demographic_parity_ratio[grp]": {"before": None, "after": 0.6}},
                           "demographic_parity", "grp") is None
    assert worsened_target(parity, "equalized_odds", "grp") is None  # not the gap it targets

    facts = {"method": "threshold_optimizer", "constraint": "equalized_odds", "attribute": "grp", "fitted_on": "x",
             "decision_rule": "r", "needs_attribute_at_prediction": True, "groups_fitted": ["a", "b"],
             "decision_after": "reject", "worsened": worsened_target(odds, "equalized_odds", "grp")}
    _, rows = describe_mitigation(facts)
    assert ("WARNING: the gap it targets widened on the test split",
            "equalized_odds_difference[grp] 0.389 -> 0.553") in rows


@pytest.mark.parametrize("rule", [{"rule": "max_f1"}, {"rule": "target_recall", "target_recall": 0.99},
                                  {"rule": "fixed", "value": 0.0}])
def test_an_equalized_odds_versions_decisions_are_cut_at_one_half_whatever_the_rule(splits, linear, rule):
    """helper-41: max_f1 cut an equalized-odds version's 0/1 scores at 0 (every row positive): a constant
    answer was promoted as fair, with the ROC AUC of decisions it no longer made."""
    from keel.evaluation.mitigation import fit_mitigated_version
    from keel.evaluation.suite import DECISIONS_AS_GIVEN, decision_model

    spec = _spec("threshold_optimizer", "equalized_odds", threshold=rule)
    model, _ = fit_mitigated_version(linear, splits["train"], splits["validation"], splits["test"], spec, 1, {})
    scoring, chosen = decision_model(model, splits["validation"], spec)
    assert scoring is model and chosen == {"rule": DECISIONS_AS_GIVEN, "threshold": 0.5}
    decided = predict_scores(scoring, splits["test"]) >= chosen["threshold"]
    assert 0 < decided.mean() < 1 and (decided == (model.predict(splits["test"]) == 1)).all()


def test_a_fairness_gate_without_a_value_says_why_in_the_decision(splits, linear):
    """helper-41: "demographic_parity_ratio[site] >= 0.8: no value", never why: the evaluation's decision
    (and the CLI's `missing:` line, the model card) now name the groups too small to judge."""
    from keel.evaluation.mitigation import gate_evidence

    spec = _spec()
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"min_group_size": 350})})
    decision = gate_evidence(linear, splits["validation"], splits["test"], spec)["decision"]
    [missing] = decision["missing"]
    assert decision["decision"] == "incomplete" and missing.startswith("demographic_parity_ratio[site] >= 0.8: no value")
    assert "only 1 group of site has at least 350 test rows" in missing and f"{TINY} has 8" in missing

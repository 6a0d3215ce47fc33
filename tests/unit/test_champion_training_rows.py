"""The champion is compared only on test rows it was not trained on (explore10: a champion split with seed 7
judged on a seed-12 challenger's test split, 363 of whose 600 rows it had trained on, rejected the
challenger on its in-sample advantage)."""

import html

import numpy as np
import pandas as pd
import pytest

from keel.evaluation.comparison import (comparison_html, comparison_text, compare, row_key, row_keys,
                                        trained_on)
from keel.evaluation.gates import INCOMPLETE, decide
from keel.evaluation.suite import champion_decisions, compare_with_champion
from keel.spec import load_spec
from tests.conftest import ROOT

FEATURES, TARGET = ["x", "kind"], "outcome"


def _frame(ids, x, kind, y):
    return pd.DataFrame({"row_id": ids, "x": x, "kind": kind, TARGET: y})


def test_rows_are_matched_by_the_id_column_when_the_training_split_holds_it():
    key = row_key("row_id", FEATURES, TARGET, ["row_id", "x", "kind", TARGET])
    assert key["by"] == "id" and "row_id" in key["text"]
    trained = _frame([1, 2, 3], [0.1, 0.2, 0.3], ["a", "b", "a"], [0, 1, 0])
    # Same ids, other values (a corrected row is still the row the champion trained on); ids as text or numbers.
    test = _frame(["3", "4", "1"], [9.0, 0.4, 9.0], ["b", "b", "b"], [1, 1, 1])
    assert trained_on(test, {"key": key, "keys": np.unique(row_keys(trained, key))}).tolist() == [True, False, True]


def test_rows_are_matched_by_a_hash_of_features_and_target_without_an_id_column():
    key = row_key(None, FEATURES, TARGET, ["x", "kind", TARGET, "other"])
    assert key["by"] == "hash" and key["columns"] == sorted([*FEATURES, TARGET])
    trained = _frame([1, 2, 3], [1, 2, 3], ["a", "b", "a"], [0, 1, 0])  # x read as integers here ...
    test = pd.DataFrame({"x": [2.0, 3.0, 1.0, np.nan], "kind": pd.Categorical(["b", "a", "a", "a"]),
                         TARGET: [1, 1, 0, 0]})  # ... as floats and categories here: still the same rows
    found = trained_on(test, {"key": key, "keys": row_keys(trained, key)})
    # row 2 differs only in its target: another piece of evidence, not a training row
    assert found.tolist() == [True, False, True, False]


def test_a_declared_id_missing_from_the_training_split_falls_back_to_the_hash_and_none_found_is_none():
    key = row_key("row_id", FEATURES, TARGET, ["x", "kind", TARGET])
    assert key["by"] == "hash"
    trained = _frame([1, 2], [5.0, 6.0], ["a", "a"], [0, 0])
    test = _frame([1, 2], [1.0, 2.0], ["a", "a"], [0, 0])
    assert not trained_on(test, {"key": key, "keys": row_keys(trained, key)}).any()


def test_a_training_split_without_the_columns_to_match_on_cannot_be_checked():
    key = row_key("row_id", FEATURES, TARGET, ["x", TARGET])
    assert key["by"] is None and "'kind'" in key["why"] and "row_id" in key["why"]


class _Scorer:
    """A model whose probability is column `column` of the rows: the champion or challenger of these tests."""

    def __init__(self, column="x"):
        self.feature_names_in_ = np.array([column])

    def predict_proba(self, frame):
        p = frame[self.feature_names_in_[0]].to_numpy()
        return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "configs" / "credit_risk.yaml",
                     ["evaluation.comparison.bootstrap_samples=200", "evaluation.calibration.method=none"])


def _test_split(spec, trained=0, n=600, seed=0):
    """A test split where the challenger's score `x` is weakly informative, and the champion's `memory`
    is right on its first `trained` rows (it trained on them) and the challenger's score elsewhere."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    weak = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    memory = np.where(np.arange(n) < trained, y, weak)
    return pd.DataFrame({spec.data.id_column: [f"A{i:05d}" for i in range(n)], "x": weak, "memory": memory,
                         spec.data.target.column: y})


def _champion(spec, trained_ids):
    return {"name": "v1 (production)", "number": 1, "model": _Scorer("memory"),
            "metadata": {"evaluation": {"threshold": 0.5}},
            "training_rows": None if trained_ids is None else {
                "key": row_key(spec.data.id_column, [], spec.data.target.column, [spec.data.id_column]),
                "keys": np.asarray(trained_ids, dtype=object)}}


def test_the_comparison_leaves_out_the_champions_training_rows_and_counts_them(spec):
    test = _test_split(spec, trained=363)
    trained_ids = test[spec.data.id_column].iloc[:363].tolist() + ["B00001"]  # and rows not in this test split
    comparison, champion_scores = compare_with_champion(_champion(spec, trained_ids), _Scorer(), 0.5, test, test, spec)
    assert (comparison["test_rows"], comparison["rows_compared"], comparison["rows_left_out"]) == (600, 237, 363)
    assert comparison["overlap_checked"] and "application_id" in comparison["matched_by"]
    rest = test.iloc[363:]
    expected = compare(rest[spec.data.target.column], rest["x"], rest["x"], 0.5, 0.5, "roc_auc",
                       spec.evaluation.comparison)
    # On the rows the champion did not train on it scores as the challenger does: not worse, accepted. On
    # every row its memorised answers would have rejected the challenger.
    assert comparison["difference"] == expected["difference"] == 0 and comparison["accepted"]
    assert not compare(test[spec.data.target.column], test["memory"], test["x"], 0.5, 0.5, "roc_auc",
                       spec.evaluation.comparison)["accepted"]
    # Its scores on its training rows are in-sample: NaN, so that nothing after the comparison uses them.
    assert np.isnan(champion_scores[:363]).all() and np.isfinite(champion_scores[363:]).all()
    for shown in (comparison_text(comparison), html.unescape(comparison_html(comparison))):
        assert "compared on 237 of 600 test rows: 363 were the champion's training rows" in shown


def test_too_few_rows_left_make_the_comparison_have_no_value_and_the_decision_incomplete(spec):
    test = _test_split(spec)
    trained_ids = test[spec.data.id_column].iloc[:580].tolist()
    comparison, _ = compare_with_champion(_champion(spec, trained_ids), _Scorer(), 0.5, test, test, spec)
    assert comparison["rows_compared"] == 20 and comparison["accepted"] is None
    assert np.isnan(comparison["ci_low"]) and np.isnan(comparison["difference"])
    assert "only 20 of the 600 test rows are not the champion's training rows" in comparison["no_value_reason"]
    assert "20 rows (< 50)" in comparison["no_value_reason"]
    decision = decide([], {}, comparison)
    assert decision["decision"] == INCOMPLETE and not decision["deployable"]
    assert any("champion_challenger" == g["metric"] and not g["known"] for g in decision["gates"])
    # The decision's missing evidence says why, as the gates step gives it the comparison report.
    explained = decide([], {}, comparison, reports={"comparison": comparison})
    assert any("no value (only 20 of the 600 test rows are not the champion's training rows" in m
               for m in explained["missing"]), explained["missing"]
    for shown in (comparison_text(comparison), html.unescape(comparison_html(comparison))):
        assert "no value" in shown and "too few to compare on" in shown


def test_a_champion_without_its_training_split_is_compared_on_every_row_and_says_so(spec):
    test = _test_split(spec)
    champion = {**_champion(spec, None), "training_rows": {"why": "eval v1 has no artifact 'train' linked"}}
    comparison, _ = compare_with_champion(champion, _Scorer(), 0.5, test, test, spec)
    assert (comparison["rows_compared"], comparison["overlap_checked"]) == (600, False)
    assert comparison["accepted"] is True
    for shown in (comparison_text(comparison), html.unescape(comparison_html(comparison))):
        assert "could not be checked (eval v1 has no artifact 'train' linked)" in shown


def test_a_test_split_too_small_without_overlap_is_named_as_such(spec):
    test = _test_split(spec, n=40)
    comparison, _ = compare_with_champion(_champion(spec, []), _Scorer(), 0.5, test, test, spec)
    assert comparison["rows_left_out"] == 0 and comparison["accepted"] is None
    assert comparison["no_value_reason"].startswith("the 40 test rows are too few to compare on (")


def test_the_business_uplift_over_the_champion_counts_only_the_rows_it_did_not_train_on(spec):
    """The champion's value on its own training rows is in-sample (here: every one right), so the uplift
    over it compared both on the 237 other rows; with too few of them it has no value and its gate none."""
    from keel.evaluation.business import baseline_text, evaluate_business
    from keel.evaluation.decisions import value_per_application
    from keel.spec.evaluation import Gate

    values, target = spec.evaluation.value_matrix, spec.data.target
    test = _test_split(spec, trained=363)
    comparison, champion_scores = compare_with_champion(
        _champion(spec, test[spec.data.id_column].iloc[:363].tolist()), _Scorer(), 0.5, test, test, spec)
    y, decisions = test[target.column].to_numpy(), test["x"].to_numpy() >= 0.5
    report = evaluate_business(y, decisions, values, champion_decisions(comparison, champion_scores), target.negative)
    champion_there = value_per_application(y[363:], test["memory"].to_numpy()[363:] >= 0.5, values)
    model_there = value_per_application(y[363:], decisions[363:], values)
    assert report["baseline_rows"] == 237 and report["champion_value_per_application"] == pytest.approx(champion_there)
    assert report["value_uplift_vs_baseline"] == pytest.approx(model_there - champion_there)
    assert report["expected_value_per_application"] == pytest.approx(value_per_application(y, decisions, values))
    in_sample = value_per_application(y, decisions, values) - value_per_application(y, test["memory"] >= 0.5, values)
    assert in_sample < report["value_uplift_vs_baseline"]  # on every row its memory made the challenger look worse
    assert "its decisions on the 237 test rows the comparison used" in baseline_text(report)

    few, few_scores = compare_with_champion(
        _champion(spec, test[spec.data.id_column].iloc[:580].tolist()), _Scorer(), 0.5, test, test, spec)
    none = evaluate_business(y, decisions, values, champion_decisions(few, few_scores), target.negative)
    assert none["baseline_rows"] == 0 and np.isnan(none["value_uplift_vs_baseline"])
    gate = Gate(metric="value_uplift_vs_baseline", min=0)
    decision = decide([gate], {"value_uplift_vs_baseline": none["value_uplift_vs_baseline"]}, {"champion": None})
    assert decision["decision"] == INCOMPLETE and not decision["deployable"]


def test_a_champion_trained_with_the_classes_the_other_way_round_is_not_compared(spec):
    """helper-58: a challenger trained with `positive: ineligible` was judged non-inferior (+0.94 roc_auc) to
    a champion trained with `positive: eligible`, whose probabilities are of the other class. The comparison
    now has no value (the decision is incomplete), naming what changed."""
    from keel.spec.data import target_mapping

    test = _test_split(spec)
    flipped = target_mapping(spec.data.target) | {"positive": str(spec.data.target.negative),
                                                   "negative": str(spec.data.target.positive)}
    champion = {**_champion(spec, None), "training_rows": {"why": "not read"}}
    champion["metadata"] = {**champion["metadata"], "target": flipped}
    comparison, scores = compare_with_champion(champion, _Scorer(), 0.5, test, test, spec)
    assert comparison["accepted"] is None and np.isnan(comparison["difference"]) and np.isnan(scores).all()
    assert comparison["no_value_reason"].startswith("the champion was trained with another target (positive '0' "
                                                    "then, '1' now; negative '1' then, '0' now)")
    assert decide([], {}, comparison)["decision"] == INCOMPLETE
    same = {**champion, "metadata": {**champion["metadata"], "target": target_mapping(spec.data.target)}}
    assert compare_with_champion(same, _Scorer(), 0.5, test, test, spec)[0]["accepted"] is True

"""Gates and their intervals, the card's business impact and a fairness gate's groups.

A gate whose bootstrap interval crosses its bound says so wherever its row is shown (it still passes on
its value by default); `evaluation.judge_gates_on: interval` judges the bound on the gate's side and
leaves a gate without a trusted interval unjudged (incomplete). An interval resting on too few rows of a
kind is reported as not available, and the bootstrap neither warns nor counts an undefined resample as 0.
The card shows the business report with its baseline named. A fairness gate names the groups it judged."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from keel.evaluation.bootstrap import Sorted, percentile_interval, weighted_metrics
from keel.evaluation.business import evaluate_business
from keel.evaluation.fairness import evaluate_fairness
from keel.evaluation.gates import INCOMPLETE, PROMOTE, REJECT, decide, result_text
from keel.evaluation.performance import evaluate_performance
from keel.spec import validate_spec


def _spec(gates, judge_on=None, attribute=("sex", ["f", "m"]), value_matrix=None):
    evaluation = {"gates": list(gates)}
    if judge_on:
        evaluation["judge_gates_on"] = judge_on
    if value_matrix:
        evaluation["value_matrix"] = value_matrix
    return validate_spec({
        "problem": {"name": "fraud", "objective": "o", "business_metric": "b",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "unused.csv"},
                 "target": {"column": "label", "positive": 1, "negative": 0, "favourable": "negative"},
                 "features": {"amount": {"type": "numeric"}},
                 "sensitive_attributes": {attribute[0]: {"categories": attribute[1]}}},
        "evaluation": evaluation})


def _rare_positives(positives: int, found: int, rows: int = 3000):
    """`rows` test rows with `positives` positives, `found` of them (and 40 negatives) scored above 0.5."""
    y = np.zeros(rows, dtype=int)
    y[:positives] = 1
    scores = np.full(rows, 0.1)
    scores[:found] = 0.9
    scores[positives:positives + 40] = 0.8
    return y, scores


def _fairness(spec, sizes: dict, attribute: str = "sex"):
    groups = pd.DataFrame({attribute: [g for g, n in sizes.items() for _ in range(n)]})
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, len(groups))
    decisions = rng.random(len(groups)) >= 0.5
    return evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)


def _reports(spec, positives=46, found=17):
    y, scores = _rare_positives(positives, found)
    performance = evaluate_performance(y, scores, 0.5, interval_samples=400)
    return {"performance": performance, "fairness": _fairness(spec, {"f": 600, "m": 600})}


def _decide(spec, reports):
    return decide(spec.evaluation.gates, dict(reports["performance"]["metrics"]), None, reports=reports)


RECALL = {"metric": "recall", "min": 0.3}


def test_a_gate_whose_interval_crosses_its_bound_passes_on_its_value_and_says_it_is_uncertain(capsys):
    from keel.cli.evaluate import print_gates

    spec = _spec([RECALL])
    reports = _reports(spec)
    low, high = reports["performance"]["intervals"]["recall"]
    assert low < 0.3 < reports["performance"]["metrics"]["recall"] < high  # 17 of 46: 0.37, interval over 0.3
    decision = _decide(spec, reports)
    row = decision["gates"][0]
    assert decision["decision"] == PROMOTE  # the default judges the value: the demo's verdicts stay the same
    assert row["interval"] == [low, high] and row["uncertain"] and row["judged_on"] == "value"
    assert row["gate"] == f"recall >= 0.3 (the 95% interval {low:.4f} to {high:.4f} crosses the bound)"
    assert result_text(row) == "pass, but uncertain"
    print_gates(decision)
    assert "pass, but uncertain" in capsys.readouterr().out


def test_a_gate_whose_interval_is_clear_of_its_bound_is_not_uncertain():
    spec = _spec([{"metric": "recall", "min": 0.1}])
    row = _decide(spec, _reports(spec))["gates"][0]
    assert not row["uncertain"] and row["gate"] == "recall >= 0.1" and result_text(row) == "pass"


def test_judging_on_the_interval_takes_the_bound_on_the_gates_side():
    spec = _spec([RECALL, {"metric": "log_loss", "max": 5.0}], judge_on="interval")
    reports = _reports(spec)
    decision = _decide(spec, reports)
    recall, log_loss = decision["gates"][:2]
    low, high = reports["performance"]["intervals"]["recall"]
    assert decision["decision"] == REJECT and decision["failed"] == [recall["gate"]]
    assert recall["judged_on"] == "interval" and not recall["passed"] and recall["value"] == pytest.approx(17 / 46)
    assert f"judged on the 95% interval {low:.4f} to {high:.4f}, which crosses the bound" in recall["gate"]
    assert log_loss["passed"]  # a max gate: the upper bound is below it


def test_judging_on_the_interval_leaves_a_gate_without_one_unjudged():
    spec = _spec([{"metric": "demographic_parity_ratio", "min": 0.5}], judge_on="interval")
    reports = _reports(spec)
    values = {**reports["performance"]["metrics"],
              "demographic_parity_ratio": reports["fairness"]["demographic_parity_ratio"]}
    decision = decide(spec.evaluation.gates, values, None, reports=reports)
    assert decision["decision"] == INCOMPLETE and not decision["deployable"]
    assert "judged on the interval, which is not available" in decision["missing"][0]


def test_an_interval_resting_on_two_positives_is_not_available_and_the_bootstrap_does_not_warn():
    spec = _spec([RECALL, {"metric": "roc_auc", "min": 0.5}], judge_on="interval")
    y, scores = _rare_positives(positives=2, found=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw numpy RuntimeWarning reaches the terminal
        performance = evaluate_performance(y, scores, 0.5, interval_samples=400)
    reports = {"performance": performance, "fairness": _fairness(spec, {"f": 600, "m": 600})}
    decision = _decide(spec, reports)
    assert decision["decision"] == INCOMPLETE
    assert all("only 1 true positives and 1 false negatives in the test split (< 5" in m
               for m in decision["missing"][:1])
    assert "only 2 positive rows" in decision["missing"][1]
    under_value = _decide(_spec([RECALL]), reports)["gates"][0]
    assert "no trusted interval: only 1 true positives" in under_value["gate"] and under_value["interval"] is None


def test_a_resample_without_a_positive_row_is_undefined_not_zero():
    y = np.array([1, 0, 0, 0, 1, 0])
    scores = np.array([0.9, 0.2, 0.7, 0.1, 0.8, 0.3])
    weights = np.array([[0, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=float)  # first resample: no positive
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = weighted_metrics(y, scores, 0.5, weights, Sorted(y, scores))
    for name in ("recall", "roc_auc", "pr_auc"):
        assert math.isnan(metrics[name][0]) and not math.isnan(metrics[name][1]), name
    assert metrics["precision"][0] == 0.0  # a positive decision was made, wrongly: defined
    interval, why = percentile_interval(metrics["recall"], 0.95)
    assert interval is None and why.startswith("undefined in 1 of 2 resamples")
    assert percentile_interval(np.array([0.2, 0.4, 0.6]), 0.5)[0] == [0.3, 0.5]


def card_with(spec, training=None):
    """The card of a version with `training` metadata, over an evaluation of rare positives."""
    reports = _reports(spec)
    return _card(spec, reports, _decide(spec, reports), None, training=training)


def _card(spec, reports, decision, business, comparison=None, training=None):
    from keel.evaluation.model_card import card_sections, model_card_markdown
    from tests.support.model_cards import LATENCY

    full = {**reports, "decision": decision, "business": business, "comparison": comparison,
            "threshold": {"threshold": 0.5, "rule": "fixed"},
            "calibration": {"brier": 0.2, "expected_calibration_error": 0.01, "method": "none"},
            "robustness": {"metric": "roc_auc", "all_features": {}, "hostile_inputs": {"passed": True},
                           "worst_slice_per_feature": {}},
            "explainability": {"global_importance": {}}, "latency": dict.fromkeys(LATENCY, 1.0)}
    return model_card_markdown("fraud", 2, card_sections(spec, "fraud", 2, training or {}, full))


MATRIX = {"true_positive": 150, "false_positive": -10, "true_negative": 0, "false_negative": -200,
          "currency": "EUR"}


def test_the_card_shows_uncertain_gates_untrusted_intervals_and_the_business_report_with_its_baseline():
    spec = _spec([RECALL], value_matrix=MATRIX)
    reports = _reports(spec)
    y, scores = _rare_positives(46, 17)
    business = evaluate_business(y, scores >= 0.5, spec.evaluation.value_matrix, negative_label=0)
    card = _card(spec, reports, _decide(spec, reports), business)
    assert "0.3696 — pass, but uncertain |" in card
    assert "## Business impact (test split)" in card
    assert "| baseline policy | predict 0 for everyone |" in card
    assert "| value per case, this model (EUR) |" in card and "application" not in card
    assert "| true positives (test split) | 17 |" in card and "| false positives (test split) | 40 |" in card

    rare_y, rare_scores = _rare_positives(2, 1)
    rare = {**reports, "performance": evaluate_performance(rare_y, rare_scores, 0.5, interval_samples=400)}
    assert "| roc_auc | " in (rare_card := _card(spec, rare, _decide(spec, rare), business))
    assert "(95% CI not available: only 2 positive rows and 2998 negative rows" not in rare_card
    assert "(95% CI not available: only 2 positive rows in the test split (< 5, data.min_group_outcomes))" \
        in rare_card


def test_the_cards_baseline_names_the_champion_and_the_spec_names_the_row():
    spec = _spec([RECALL], value_matrix={**MATRIX, "case": "transaction"})
    reports = _reports(spec)
    y, scores = _rare_positives(46, 17)
    business = evaluate_business(y, scores >= 0.5, spec.evaluation.value_matrix, champion_decisions=scores >= 0.85,
                                 negative_label=0)
    card = _card(spec, reports, _decide(spec, reports), business, comparison={
        "champion": "v1", "metric": "pr_auc", "difference": 0.01, "confidence": 0.95, "ci_low": -0.01,
        "ci_high": 0.03, "accepted": True, "mode": "non_inferiority", "mcnemar": {"summary": "no difference"},
        "test_rows": 1735, "rows_compared": 1298, "rows_left_out": 437, "overlap_checked": True,
        "matched_by": "id"})
    assert f"| baseline policy | the champion (v1): its decisions on the {len(y)} test rows the comparison used |" in card
    # helper-59: the card's comparison row left out the rows it rests on (437 were the champion's training rows).
    assert ("| champion comparison | vs v1: pr_auc difference (challenger - champion) +0.0100, 95% interval "
            "[-0.0100, +0.0300], accepted (non-inferiority); decisions: no difference; rows: compared on 1298 of "
            "1735 test rows: 437 were the champion's training rows (matched id) and are left out |") in card
    assert "| value per transaction, baseline (EUR) |" in card
    assert "| value per transaction, predict 0 for everyone (EUR) |" in card


def test_a_fairness_gate_names_the_groups_it_judged_and_the_ones_too_small():
    spec = _spec([{"metric": "demographic_parity_ratio", "min": 0.5, "attribute": "ethnicity"},
                  {"metric": "demographic_parity_ratio", "min": 0.5}],
                 attribute=("ethnicity", ["A", "B", "C", "D"]))
    fairness = _fairness(spec, {"A": 600, "B": 600, "C": 24, "D": 3}, attribute="ethnicity")
    values = {"demographic_parity_ratio[ethnicity]": fairness["attributes"]["ethnicity"]["demographic_parity_ratio"],
              "demographic_parity_ratio": fairness["demographic_parity_ratio"]}
    decision = decide(spec.evaluation.gates, values, None, reports={"fairness": fairness, "performance": {}})
    assert decision["decision"] == PROMOTE
    assert [r["gate"] for r in decision["gates"][:2]] == [
        "demographic_parity_ratio[ethnicity] >= 0.5 (judged on A, B; too small: C, D)",
        "demographic_parity_ratio >= 0.5 (ethnicity: judged on A, B; too small: C, D)"]
    every_group = _fairness(spec, {"A": 600, "B": 600, "C": 600, "D": 600}, attribute="ethnicity")
    values = {"demographic_parity_ratio[ethnicity]": 0.9, "demographic_parity_ratio": 0.9}
    rows = decide(spec.evaluation.gates, values, None, reports={"fairness": every_group})["gates"]
    assert rows[0]["gate"] == "demographic_parity_ratio[ethnicity] >= 0.5"


def test_a_value_uplift_gate_names_its_baseline():
    spec = _spec([{"metric": "value_uplift_vs_baseline", "min": 0}], value_matrix=MATRIX)
    y, scores = _rare_positives(46, 17)
    business = evaluate_business(y, scores >= 0.5, spec.evaluation.value_matrix, negative_label=0)
    row = decide(spec.evaluation.gates, {"value_uplift_vs_baseline": business["value_uplift_vs_baseline"]}, None,
                 reports={"business": business})["gates"][0]
    assert row["gate"] == "value_uplift_vs_baseline >= 0 (baseline: predict 0 for everyone)"
    with_champion = evaluate_business(y, scores >= 0.5, spec.evaluation.value_matrix,
                                      champion_decisions=scores >= 0.85, negative_label=0)
    row = decide(spec.evaluation.gates, {"value_uplift_vs_baseline": 1.0}, {"champion": None},
                 reports={"business": with_champion, "comparison": {"champion": "v1"}})["gates"][0]
    assert row["gate"] == ("value_uplift_vs_baseline >= 0 (baseline: the champion (v1): its decisions on the "
                           f"{len(y)} test rows the comparison used)")

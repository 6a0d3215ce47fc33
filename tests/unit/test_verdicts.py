"""Governance verdicts on data shaped unlike the credit generator: the favourable outcome is explicit,
gate bounds must be able to bind, one small-group rule, and a decision only from complete evidence."""

import math

import numpy as np
import pandas as pd
import pytest

from keel.evaluation.fairness import (evaluate_fairness, judged_text, too_few_rows, unjudgeable_reason,
                                     wilson_interval)
from keel.evaluation.gates import INCOMPLETE, PROMOTE, REJECT, decide, is_deployable
from keel.evaluation.record import FINISHED, applied_gates, evaluation_record, gate_changes, gate_history
from keel.spec import SpecError, validate_spec
from keel.spec.evaluation import EvaluationSpec, Gate


def _raw_hiring_spec(**target):
    """A hiring spec: the positive class 'hired' is the favourable one."""
    return {
        "problem": {"name": "hiring", "objective": "rank applicants", "business_metric": "hires",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "applicants.csv"},
                 "target": {"column": "outcome", "positive": "hired", "negative": "rejected", **target},
                 "features": {"experience": {"type": "numeric"},
                              "gender": {"type": "categorical", "categories": ["f", "m"]}},
                 "sensitive_attributes": {"gender": {"categories": ["f", "m"]}}},
        "evaluation": {"gates": [{"metric": "demographic_parity_ratio", "attribute": "gender", "min": 0.8}]},
    }


def test_sensitive_attributes_require_an_explicit_favourable_outcome():
    with pytest.raises(SpecError) as error:
        validate_spec(_raw_hiring_spec(), "hiring.yaml")
    message = str(error.value)
    assert "hiring.yaml" in message and "target.favourable is required" in message
    assert "'hired'" in message and "favourable: positive" in message and "favourable: negative" in message
    spec = validate_spec(_raw_hiring_spec(favourable="positive"))
    assert spec.data.target.favourable_decision() == "predicting 'hired' ('positive')"


def test_a_spec_without_sensitive_attributes_needs_no_favourable_outcome():
    raw = _raw_hiring_spec()
    del raw["data"]["sensitive_attributes"]
    raw["evaluation"]["gates"] = [{"metric": "roc_auc", "min": 0.6}]
    assert validate_spec(raw).data.target.favourable is None
    raw["evaluation"]["gates"] = [{"metric": "demographic_parity_ratio", "min": 0.8}]
    with pytest.raises(SpecError, match="a fairness gate needs data.sensitive_attributes"):
        validate_spec(raw)


@pytest.mark.parametrize("gate, why", [
    ({"metric": "demographic_parity_ratio", "min": 0.8, "max": 1.25}, "max 1.25 can never fail"),
    ({"metric": "demographic_parity_ratio", "max": 1.0}, "max 1 can never fail"),
    ({"metric": "roc_auc", "min": 0.0}, "min 0 can never fail"),
    ({"metric": "equalized_odds_difference", "max": 1.5}, "max 1.5 can never fail"),
])
def test_a_gate_bound_that_cannot_bind_is_refused(gate, why):
    with pytest.raises(ValueError, match=why):
        Gate(**gate)


def test_gate_bounds_that_bind_are_accepted():
    assert Gate(metric="demographic_parity_ratio", min=0.8).passes(0.81)
    assert Gate(metric="value_uplift_vs_baseline", min=0).passes(0.0)  # unbounded metric: 0 binds
    assert not Gate(metric="robustness_max_drop", max=0.05).passes(float("nan"))


def _biased_hiring(rows=4000, seed=0):
    """Women are hired far less often than men for the same experience: the favourable decision
    ('hired', the positive class) is the rare one, so parity of the unfavourable decision looks fine."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["f", "m"], size=rows)
    experience = rng.normal(5, 2, size=rows)
    logit = -2.2 + 0.4 * (experience - 5) + np.where(gender == "m", 0.8, 0.0)
    hired = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    score = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, size=rows))))
    return pd.DataFrame({"gender": gender, "hired": hired, "score": score})


def test_parity_is_of_the_favourable_decision_and_a_biased_model_fails_its_gate():
    frame = _biased_hiring()
    spec = validate_spec(_raw_hiring_spec(favourable="positive"))
    decisions = frame["score"] >= frame["score"].quantile(0.9)  # few are hired
    report = evaluate_fairness(frame["hired"], decisions, frame["score"], frame[["gender"]], spec.data)
    hire_rate = decisions.groupby(frame["gender"]).mean()
    assert report["attributes"]["gender"]["demographic_parity_ratio"] == pytest.approx(hire_rate.min() / hire_rate.max())
    assert report["demographic_parity_ratio"] < 0.5
    # Measured on the other decision (what a `negative` default measured) it would pass the 0.8 gate:
    reject_rate = (~decisions).groupby(frame["gender"]).mean()
    assert reject_rate.min() / reject_rate.max() > 0.8
    values = {"demographic_parity_ratio[gender]": report["attributes"]["gender"]["demographic_parity_ratio"]}
    decision = decide(spec.evaluation.gates, values, None)
    assert decision["decision"] == REJECT and not decision["deployable"]
    # Every table says which decision its rates are of.
    assert "predicting 'hired'" in report["favourable_decision"] and "TPR" in report["orientation"]
    from fairlearn.metrics import true_positive_rate
    women = frame["gender"] == "f"
    group = next(g for g in report["attributes"]["gender"]["groups"] if g["group"] == "f")
    assert group["tpr"] == pytest.approx(true_positive_rate(frame["hired"][women], decisions[women]), abs=1e-4)


def _region_report(tiny_outcomes: np.ndarray, tiny_decisions: np.ndarray, gate: str = "demographic_parity_ratio"):
    """Two groups of 600 rows decided at random, beside a third `tiny` one with the given outcomes and
    decisions; the report and the spec's data section (min_group_size 50, min_group_outcomes 5)."""
    rng = np.random.default_rng(1)
    groups = pd.DataFrame({"region": ["big_a"] * 600 + ["big_b"] * 600 + ["tiny"] * len(tiny_outcomes)})
    y = np.r_[rng.integers(0, 2, size=1200), tiny_outcomes]
    decisions = np.r_[rng.random(1200) < 0.5, tiny_decisions]
    raw = _raw_hiring_spec(favourable="positive")
    raw["data"]["sensitive_attributes"] = {"region": {"categories": ["big_a", "big_b", "tiny"]}}
    raw["data"]["features"]["region"] = {"type": "categorical", "categories": ["big_a", "big_b", "tiny"]}
    raw["evaluation"]["gates"] = [{"metric": gate, **({"min": 0.8} if "ratio" in gate else {"max": 0.1})}]
    spec = validate_spec(raw)
    report = evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)
    return report, spec


def test_the_small_group_rule_counts_rows_and_outcomes_never_the_decisions_under_test():
    rule = {"min_rows": 50, "min_each": 5}
    assert too_few_rows(40, rule) == "40 rows (< 50)" and too_few_rows(76, rule) == ""
    assert unjudgeable_reason(76, 3, rule) == "3 favourable outcomes (< 5)"
    assert unjudgeable_reason(76, 74, rule) == "2 unfavourable outcomes (< 5)"
    assert unjudgeable_reason(200, 100, rule) == ""
    # 76 rows the model favours 4 times, against about half of everyone else: that is the bias parity
    # exists to catch, so the group is judged and the parity gate rejects (it was once left out as
    # "4 favourable decisions (< 5)", and the model passed).
    report, spec = _region_report(np.arange(76) % 2, np.arange(76) < 4)
    region = report["attributes"]["region"]
    tiny = next(g for g in region["groups"] if g["group"] == "tiny")
    assert tiny["judgeable"] and tiny["odds_judgeable"] and region["too_small"] == []
    highest = max(g["selection_rate"] for g in region["groups"])
    assert region["demographic_parity_ratio"] == pytest.approx((4 / 76) / highest, abs=1e-3)
    assert report["demographic_parity_ratio"] < 0.2
    decision = decide(spec.evaluation.gates, {"demographic_parity_ratio": report["demographic_parity_ratio"]}, None)
    assert decision["decision"] == REJECT and not decision["deployable"]
    assert "at least 50 rows" in report["rule"]["text"] and "decisions never exclude" in report["rule"]["text"]
    low, high = tiny["selection_rate_low"], tiny["selection_rate_high"]
    assert low < 4 / 76 < high
    # Never favoured at all: still judged, ratio 0.
    never, _ = _region_report(np.arange(76) % 2, np.zeros(76, dtype=bool))
    assert never["demographic_parity_ratio"] == 0.0


def test_a_group_with_too_few_actual_outcomes_is_judged_on_parity_and_left_out_of_equalized_odds():
    # 80 rows, 2 of them with the favourable outcome (historical bias in the labels themselves).
    outcomes, decisions = (np.arange(80) < 2).astype(int), np.arange(80) < 3
    report, spec = _region_report(outcomes, decisions, gate="equalized_odds_difference")
    region = report["attributes"]["region"]
    tiny = next(g for g in region["groups"] if g["group"] == "tiny")
    assert tiny["judgeable"] and not tiny["odds_judgeable"] and tiny["odds_reason"] == "2 favourable outcomes (< 5)"
    assert region["judged_groups"] == 3 and region["odds_judged_groups"] == 2
    assert region["demographic_parity_ratio"] < 0.1  # parity sees the group
    big = [g for g in region["groups"] if g["group"] != "tiny"]
    assert region["equalized_odds_difference"] == pytest.approx(max(
        abs(big[0]["tpr"] - big[1]["tpr"]), abs(big[0]["fpr"] - big[1]["fpr"])), abs=1e-3)
    assert judged_text(tiny) == "parity judged; TPR/FPR not: 2 favourable outcomes (< 5)"
    # Too few rows: shown with its reason, judged for nothing.
    small, _ = _region_report(np.arange(30) % 2, np.arange(30) < 15)
    tiny = next(g for g in small["attributes"]["region"]["groups"] if g["group"] == "tiny")
    assert not tiny["judgeable"] and small["attributes"]["region"]["too_small"] == ["tiny"]
    assert judged_text(tiny) == "not judged: 30 rows (< 50)"


def test_wilson_interval_matches_the_textbook_values():
    from scipy.stats import binomtest

    for successes, trials in ((4, 76), (0, 12), (40, 41)):
        expected = binomtest(successes, trials).proportion_ci(0.9, method="wilson")
        assert wilson_interval(successes, trials, 0.9) == pytest.approx((expected.low, expected.high), abs=1e-9)
    assert wilson_interval(0, 10)[0] == 0.0 and math.isnan(wilson_interval(0, 0)[0])


def test_an_attribute_that_cannot_be_judged_leaves_the_worst_case_unknown():
    groups = pd.DataFrame({"a": ["x"] * 300 + ["y"] * 300, "b": ["p"] * 590 + ["q"] * 10})
    rng = np.random.default_rng(2)
    y, decisions = rng.integers(0, 2, 600), rng.random(600) < 0.5
    raw = _raw_hiring_spec(favourable="positive")
    raw["data"]["sensitive_attributes"] = {"a": {"categories": ["x", "y"]}, "b": {"categories": ["p", "q"]}}
    raw["data"]["features"].update({"a": {"type": "categorical", "categories": ["x", "y"]},
                                    "b": {"type": "categorical", "categories": ["p", "q"]}})
    raw["evaluation"]["gates"] = [{"metric": "demographic_parity_ratio", "min": 0.8}]
    spec = validate_spec(raw)
    report = evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)
    assert not math.isnan(report["attributes"]["a"]["demographic_parity_ratio"])
    assert math.isnan(report["attributes"]["b"]["demographic_parity_ratio"])  # one judgeable group
    assert math.isnan(report["demographic_parity_ratio"])
    decision = decide(spec.evaluation.gates, {"demographic_parity_ratio": report["demographic_parity_ratio"]}, None)
    assert decision["decision"] == INCOMPLETE and not decision["deployable"]


def test_decision_only_from_complete_evidence():
    gates = [Gate(metric="roc_auc", min=0.7), Gate(metric="brier", max=0.2)]
    complete = decide(gates, {"roc_auc": 0.8, "brier": 0.1}, None)
    assert complete["decision"] == PROMOTE and complete["deployable"] and complete["passed"]
    for values in ({"roc_auc": 0.8}, {"roc_auc": 0.8, "brier": float("nan")}, {"roc_auc": float("inf"), "brier": 0.1}):
        decision = decide(gates, values, None)
        assert decision["decision"] == INCOMPLETE and not decision["deployable"] and decision["missing"]
    # A comparison that produced no interval is missing evidence, not a pass or a fail.
    comparison = {"champion": "v1 (production)", "mode": "non_inferiority", "margin": 0.01, "metric": "roc_auc",
                  "ci_low": float("nan"), "accepted": False}
    assert decide(gates, {"roc_auc": 0.8, "brier": 0.1}, comparison)["decision"] == INCOMPLETE
    # Hostile inputs not checked at all: incomplete; checked and failed: a failed gate.
    assert decide(gates, {"roc_auc": 0.8, "brier": 0.1}, None, hostile_inputs_passed=None)["decision"] == INCOMPLETE
    assert decide(gates, {"roc_auc": 0.8, "brier": 0.1}, None, hostile_inputs_passed=False)["decision"] == REJECT


def test_non_blocking_gates_are_advisory_and_deployable():
    gates = [Gate(metric="roc_auc", min=0.9)]
    blocking = decide(gates, {"roc_auc": 0.8}, None, blocking=True)
    assert blocking["decision"] == REJECT and not blocking["deployable"]
    advisory = decide(gates, {"roc_auc": 0.8}, None, blocking=False)
    assert advisory["decision"] == PROMOTE and advisory["deployable"] and advisory["advisory"]
    assert advisory["failed"] == ["roc_auc >= 0.9"] and not advisory["passed"]
    # Advisory never covers missing evidence.
    assert decide(gates, {}, None, blocking=False)["decision"] == INCOMPLETE


def test_only_a_finished_complete_promoting_record_is_deployable():
    evaluation = EvaluationSpec(gates=[Gate(metric="roc_auc", min=0.7)])
    decision = decide(evaluation.gates, {"roc_auc": 0.8}, None)
    record = evaluation_record(decision, status=FINISHED, run_id=None, run_name="r", spec_sha256="s",
                               evaluation=evaluation, threshold=0.4, threshold_rule="max_f1")
    assert is_deployable(record)
    assert not is_deployable({k: v for k, v in record.items() if k != "complete"})  # an older record
    assert not is_deployable({"decision": PROMOTE, "passed": True})
    assert not is_deployable(None)


def test_loosened_or_removed_gates_are_named_against_the_previous_evaluation():
    before = EvaluationSpec(gates=[Gate(metric="roc_auc", min=0.75),
                                   Gate(metric="demographic_parity_ratio", attribute=None, min=0.8)])
    after = EvaluationSpec(gates=[Gate(metric="roc_auc", min=0.7)], blocking=False)
    previous = {"applied_gates": applied_gates(before), "blocking": True, "spec_sha256": "a" * 64}
    changes = gate_changes(previous, applied_gates(after), after.blocking, "b" * 64)
    assert "LOOSENED: roc_auc min 0.75 -> 0.7" in changes
    assert "LOOSENED: gate demographic_parity_ratio removed" in changes
    assert "LOOSENED: gates made advisory (evaluation.blocking: false)" in changes
    assert any(c.startswith("spec changed") for c in changes)
    assert gate_changes(previous, applied_gates(before), True, "a" * 64) == []
    # Judging groups on fewer rows than before loosens the evidence a pass rests on, as a lower bar does.
    judged = {**previous, "evidence_minimums": {"data.min_group_size": 50, "data.min_group_outcomes": 10}}
    lowered = gate_changes(judged, applied_gates(before), True, "a" * 64,
                           {"data.min_group_size": 5, "data.min_group_outcomes": 10})
    assert lowered == ["LOOSENED: data.min_group_size 50 -> 5 (groups and test splits judged on less evidence)"]
    assert gate_changes(judged, applied_gates(before), True, "a" * 64,
                        {"data.min_group_size": 80, "data.min_group_outcomes": 10}) == [
        "tightened: data.min_group_size -> 80"]
    assert gate_changes(previous, applied_gates(before), True, "a" * 64,
                        {"data.min_group_size": 5, "data.min_group_outcomes": 1}) == []  # an older record: unknown
    # helper-57: roles dropped from the spec, the version re-evaluated, then approved and released by its
    # trainer. The re-evaluation says approvals stopped being maker-checker, as a removed gate is named.
    under_roles = {**previous, "contract": {"roles_declared": True}}
    assert gate_changes(under_roles, applied_gates(before), True, "a" * 64, roles_declared=False) == [
        "LOOSENED: governance.roles removed (approvals are no longer maker-checker: anyone may approve and release)"]
    assert gate_changes(under_roles, applied_gates(before), True, "a" * 64, roles_declared=True) == []
    assert gate_changes(previous, applied_gates(before), True, "a" * 64, roles_declared=False) == []  # older
    records = [{"event": "evaluated", "version": 3, "time": "t1",
                "details": {"status": FINISHED, "run_name": "r1", "decision": PROMOTE, **previous}},
               {"event": "evaluated", "version": 3, "time": "t2", "details": {"status": "running"}},
               {"event": "evaluated", "version": 4, "time": "t3", "details": {"status": FINISHED}}]
    history = gate_history(records, 3)
    assert [h["run_name"] for h in history] == ["r1"]
    assert history[0]["gates"] == "roc_auc >= 0.75; demographic_parity_ratio >= 0.8"


def test_a_gate_relative_to_the_champion_applies_only_when_there_is_one():
    gates = [Gate(metric="p95_latency_ratio", max=1.5)]
    first = decide(gates, {}, None)
    assert first["decision"] == PROMOTE and "not applicable" in first["gates"][0]["gate"]
    comparison = {"champion": "v1 (production)", "mode": "non_inferiority", "margin": 0.01, "metric": "roc_auc",
                  "ci_low": 0.01, "accepted": True}
    assert decide(gates, {"p95_latency_ratio": 2.4}, comparison)["decision"] == REJECT
    assert decide(gates, {"p95_latency_ratio": 1.1}, comparison)["decision"] == PROMOTE
    assert decide(gates, {}, comparison)["decision"] == INCOMPLETE  # a champion but no ratio measured


@pytest.mark.parametrize("positive, negative", [("yes", "yes"), (1, "1"), (1, "1.0")])
def test_a_target_whose_two_classes_are_one_is_refused(positive, negative):
    raw = _raw_hiring_spec(favourable="positive", positive=positive, negative=negative)
    with pytest.raises(SpecError, match="positive and negative are the same class"):
        validate_spec(raw)


def test_business_impact_only_where_the_spec_values_decisions():
    from keel.evaluation.business import business_html, evaluate_business
    from keel.evaluation.gates import gate_values

    raw = _raw_hiring_spec(favourable="positive")
    assert validate_spec(raw).evaluation.value_matrix is None  # no lender's matrix in EUR by default
    for evaluation, key in (({"threshold": {"rule": "min_expected_cost"}}, "min_expected_cost needs"),
                            ({"gates": [{"metric": "value_uplift_vs_baseline", "min": 0}]}, "need evaluation.value_matrix")):
        with pytest.raises(SpecError, match=key):
            validate_spec({**raw, "evaluation": evaluation})
    y, decisions = np.array([1, 0, 1, 0]), np.array([True, False, False, False])
    report = evaluate_business(y, decisions, None)
    assert not report["declared"] and report["expected_value_per_application"] is None
    assert "Not declared" in business_html(report)
    empty = {"metrics": {"roc_auc": 0.8}}
    values = gate_values(empty, {"attributes": {}, "demographic_parity_ratio": 1.0,
                                 "demographic_parity_difference": 0.0, "equalized_odds_difference": 0.0},
                         {"expected_calibration_error": 0.01, "brier": 0.1}, {"robustness_max_drop": 0.0},
                         {k: 1.0 for k in ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                                           "batch_rows_per_second", "model_size_mb")}, report)
    assert "value_uplift_vs_baseline" not in values
    declared = validate_spec({**raw, "evaluation": {"value_matrix": {
        "true_positive": 5, "false_positive": -1, "true_negative": 0, "false_negative": 0, "currency": "points"}}})
    valued = evaluate_business(y, decisions, declared.evaluation.value_matrix, negative_label="rejected")
    assert valued["expected_value_per_application"] == pytest.approx(5 / 4)
    assert valued["baseline_policy"] == "predict 'rejected' for everyone"


def test_simulated_traffic_belongs_to_generator_specs_only():
    raw = _raw_hiring_spec(favourable="positive")
    assert validate_spec(raw).monitoring.simulation is None
    raw["monitoring"] = {"simulation": {"shifted_features": ["income"]}}
    with pytest.raises(SpecError, match="monitoring.simulation draws traffic from keel's generator"):
        validate_spec(raw)


@pytest.mark.parametrize("metric, before, after, better", [("roc_auc", 0.80, 0.83, True), ("brier", 0.20, 0.18, True),
                                                            ("log_loss", 0.40, 0.45, False), ("f1", 0.6, 0.5, False)])
def test_one_registry_says_which_way_every_metric_points(metric, before, after, better):
    from keel.spec.metrics import improvement

    assert (improvement(metric, before, after) > 0) is better
    assert improvement(metric, before, after) == pytest.approx(-improvement(metric, after, before))


@pytest.mark.parametrize("bound", [{"min": float("nan")}, {"max": float("inf")}, {"min": float("-inf")}])
def test_a_gate_bound_that_is_not_a_finite_number_is_refused(bound):
    with pytest.raises(ValueError, match="finite numbers"):
        Gate(metric="roc_auc", **bound)
    with pytest.raises(SpecError, match="finite numbers"):
        validate_spec({**_raw_hiring_spec(favourable="positive"), "evaluation": {"gates": [{"metric": "roc_auc", **bound}]}})


@pytest.mark.parametrize("url, refused", [("http://169.254.169.254/latest/meta-data/", True),
                                          ("http://[fe80::1]:8080/hook", True),
                                          ("https://alerts.example.org/hook", False), ("http://127.0.0.1:9/x", False)])
def test_a_webhook_to_a_link_local_metadata_address_is_refused(url, refused):
    from keel.spec.monitoring import AlerterSpec

    if refused:
        with pytest.raises(ValueError, match="link-local"):
            AlerterSpec(kind="webhook", url=url)
    else:
        assert AlerterSpec(kind="webhook", url=url).url == url


def test_a_test_split_too_small_to_judge_makes_the_decision_incomplete_whatever_its_metrics():
    """Three test rows score an AUC of 1.0 with a bootstrap interval of [1.0, 1.0]: no evidence. The whole
    split is held to the small-group rule (rows, and outcomes of each class)."""
    from keel.evaluation.performance import evaluate_performance, too_little_test_evidence

    rule = {"min_rows": 20, "min_each": 5}
    tiny = evaluate_performance([1, 0, 0], [0.9, 0.2, 0.1], 0.5, interval_samples=100)
    assert tiny["metrics"]["roc_auc"] == 1.0 and tiny["positives"] == 1
    gaps = too_little_test_evidence(tiny, rule)
    assert gaps == ["test split too small to judge: 3 rows (< 20); 1 rows of the positive class (< 5); 2 rows of "
                    "the negative class (< 5) (data.min_group_size, data.min_group_outcomes)"]
    gates = [Gate(metric="roc_auc", min=0.6)]
    decision = decide(gates, {"roc_auc": 1.0}, None, missing_evidence=gaps)
    assert decision["decision"] == INCOMPLETE and not decision["deployable"]
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(6), np.zeros(54)]
    enough = evaluate_performance(labels, labels * 0.5 + rng.random(60) * 0.5, 0.5, interval_samples=100)
    assert too_little_test_evidence(enough, rule) == []
    assert decide(gates, {"roc_auc": enough["metrics"]["roc_auc"]}, None)["decision"] == PROMOTE
    # A report from before `positives` was recorded: counted from its positive rate.
    assert too_little_test_evidence({"rows": 60, "positive_rate": 0.05}, rule)[0].endswith(
        "3 rows of the positive class (< 5) (data.min_group_size, data.min_group_outcomes)")


def test_an_intersection_named_in_another_order_is_one_message_naming_the_gate_key_not_the_whole_spec():
    """helper-59: `attribute: sex x ethnicity` was refused at '(top level)' with the whole spec as 'found'."""
    raw = _raw_hiring_spec(favourable="positive")
    raw["data"]["features"]["region"] = {"type": "categorical", "categories": ["n", "s"]}
    raw["data"]["sensitive_attributes"] = {"gender": {"categories": ["f", "m"]}, "region": {"categories": ["n", "s"]}}
    raw["evaluation"]["gates"] = [{"metric": "roc_auc", "min": 0.6},
                                  {"metric": "demographic_parity_ratio", "attribute": "region x gender", "min": 0.8}]
    with pytest.raises(SpecError) as error:
        validate_spec(raw, "hiring.yaml")
    (line,) = [line for line in str(error.value).splitlines() if line.startswith("  - ")]
    assert line == ("  - (top level): evaluation.gates[1].attribute: `region x gender` is not one of ['gender', "
                    "'gender x region', 'region'] (their intersection is named in the order data.sensitive_attributes "
                    "declares them)")

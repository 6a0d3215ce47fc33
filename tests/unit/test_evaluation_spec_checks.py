"""The evaluation section refuses what it would otherwise silently ignore or judge without meaning:
a threshold parameter its rule does not read, and a gate bound no value of the metric can meet."""

from pathlib import Path

import pytest

from keel.spec import SpecError, load_spec
from keel.spec.evaluation import Gate, ThresholdRule

DEMO = Path(__file__).resolve().parents[2] / "configs" / "credit_risk.yaml"


@pytest.mark.parametrize("rule, given, reader", [
    ("max_f1", {"value": 0.3}, "fixed"),
    ("min_expected_cost", {"value": 0.3}, "fixed"),
    ("fixed", {"value": 0.3, "target_recall": 0.9}, "target_recall"),
    ("max_f1", {"target_recall": 0.9}, "target_recall"),
])
def test_a_threshold_parameter_its_rule_does_not_read_is_refused(rule, given, reader):
    key = "value" if reader == "fixed" else "target_recall"
    with pytest.raises(ValueError, match=rf"`{key}` is read only by rule {reader}, but the rule is {rule}: "
                                         rf"set `rule: {reader}`"):
        ThresholdRule(rule=rule, **given)


def test_threshold_parameters_read_by_their_rule_are_accepted():
    assert ThresholdRule(rule="fixed", value=0.3).value == 0.3
    assert ThresholdRule(rule="target_recall", target_recall=0.9).target_recall == 0.9


def test_a_fixed_value_set_without_the_fixed_rule_is_a_spec_error_naming_the_key():
    # The demo spec's rule is min_expected_cost: before, the value was dropped and the threshold chosen by cost.
    with pytest.raises(SpecError) as error:
        load_spec(DEMO, ["evaluation.threshold.value=0.3"])
    assert "evaluation.threshold: `value` is read only by rule fixed" in str(error.value)
    assert load_spec(DEMO, ["evaluation.threshold.rule=fixed", "evaluation.threshold.value=0.3"]) \
        .evaluation.threshold.value == 0.3


@pytest.mark.parametrize("gate, why", [
    ({"metric": "roc_auc", "min": 1.5}, "min 1.5 can never be met: roc_auc is never above 1; give a min of at most 1"),
    ({"metric": "demographic_parity_ratio", "min": 1.2}, "min 1.2 can never be met"),
    ({"metric": "brier", "max": -0.1}, "max -0.1 can never be met: brier is never below 0; give a max of at least 0"),
    ({"metric": "p95_latency_ms", "max": -5}, "max -5 can never be met"),
    ({"metric": "precision", "min": 1.01, "max": 2.0}, "can never fail|can never be met"),
])
def test_a_gate_bound_that_can_never_be_met_is_refused(gate, why):
    with pytest.raises(ValueError, match=why):
        Gate(**gate)


def test_bounds_at_the_edge_of_the_range_can_still_be_met():
    assert Gate(metric="roc_auc", min=1.0).passes(1.0)  # only a perfect ranking, but one can
    assert Gate(metric="brier", max=0.0).passes(0.0)
    assert Gate(metric="value_uplift_vs_baseline", min=1e9).passes(2e9)  # an unbounded metric


def test_an_unmeetable_gate_given_with_set_is_one_spec_error():
    with pytest.raises(SpecError) as error:
        load_spec(DEMO, ["evaluation.gates[roc_auc].min=1.5"])
    assert "min 1.5 can never be met: roc_auc is never above 1" in str(error.value)


@pytest.mark.parametrize("gate, why", [
    ({"metric": "equalized_odds_difference", "attribute": None, "min": 0.05},
     "min 0.05 on equalized_odds_difference, where lower is better, passes the worse models and fails the better "
     "ones; give `max` instead"),
    ({"metric": "demographic_parity_difference", "min": 0.1}, "where lower is better"),
    ({"metric": "log_loss", "min": 0.3}, "min 0.3 on log_loss, where lower is better"),
    ({"metric": "demographic_parity_ratio", "max": 0.9},
     "max 0.9 on demographic_parity_ratio, where higher is better, passes the worse models and fails the better "
     "ones; give `min` instead"),
    ({"metric": "roc_auc", "max": 0.95}, "where higher is better"),
])
def test_a_one_sided_gate_bounding_the_wrong_side_is_refused(gate, why):
    """helper-59: `equalized_odds_difference min: 0.05` was accepted and passed a model for treating the
    groups unequally; so were a max on a parity ratio and a min on log_loss."""
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        Gate(**gate)


def test_a_band_on_a_metric_is_taken_as_meant_and_success_criteria_are_checked_alike():
    assert Gate(metric="robustness_max_drop", min=-0.2, max=0.05).passes(0.0)
    assert Gate(metric="roc_auc", min=0.7, max=0.99).passes(0.8)  # a too-good score is a leakage guard
    with pytest.raises(SpecError, match="min 0.3 on log_loss, where lower is better"):
        load_spec(DEMO, ["problem.success_criteria=[{metric: log_loss, min: 0.3}]"])


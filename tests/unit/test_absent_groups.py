"""A declared sensitive group the test split holds no row of is still a group: shown, not judged, listed
with the small groups, under the one small-group rule (a group of 0 rows is the smallest too-small one)."""

import math

import numpy as np
import pandas as pd
import pytest

from keel.evaluation.fairness import evaluate_fairness, fairness_html, judged_text
from keel.evaluation.gates import PROMOTE, decide
from keel.spec import validate_spec


def _spec(sensitive: dict, features: dict = None, gates=({"metric": "demographic_parity_ratio", "min": 0.8},)):
    return validate_spec({
        "problem": {"name": "lending", "objective": "o", "business_metric": "b",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "unused.csv"},
                 "target": {"column": "default", "positive": 1, "negative": 0, "favourable": "negative"},
                 "features": {"income": {"type": "numeric"}, **(features or {})},
                 "sensitive_attributes": sensitive},
        "evaluation": {"gates": list(gates)}})


SEX = {"sex": {"categories": ["f", "m", "x"]}}


def _rows(groups: dict, seed: int = 0):
    """`groups` {column: labels}; outcomes and decisions at random, alike in every group."""
    frame = pd.DataFrame(groups)
    rng = np.random.default_rng(seed)
    y, decisions = rng.integers(0, 2, len(frame)), rng.random(len(frame)) < 0.5
    return y, decisions, frame


def _sexes(x_rows: int):
    return _rows({"sex": ["f"] * 600 + ["m"] * 600 + ["x"] * x_rows})


def test_a_declared_group_with_no_test_row_is_shown_not_judged_and_listed_as_too_small():
    spec = _spec(SEX)
    y, decisions, groups = _sexes(0)
    report = evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)
    sex = report["attributes"]["sex"]
    assert [g["group"] for g in sex["groups"]] == ["f", "m", "x"]
    x = sex["groups"][2]
    assert x["rows"] == 0 and x["favourable_decisions"] == 0 and x["selection_rate"] is None
    assert not x["judgeable"] and not x["odds_judgeable"] and judged_text(x) == "not judged: 0 rows (< 50)"
    assert sex["too_small"] == ["x"] and sex["judged_groups"] == 2
    assert "not judged: 0 rows (&lt; 50)" in fairness_html(report)


def test_an_absent_group_gets_the_verdict_of_a_group_too_small_to_judge():
    """Kept out of the ratios it cannot be judged for, as a 3-row group is: the gate judges f and m."""
    spec = _spec(SEX)
    absent, small = (evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)
                     for y, decisions, groups in (_sexes(0), _sexes(3)))
    assert small["attributes"]["sex"]["too_small"] == ["x"] == absent["attributes"]["sex"]["too_small"]
    assert absent["demographic_parity_ratio"] == pytest.approx(small["demographic_parity_ratio"], abs=0.02)
    verdicts = [decide(spec.evaluation.gates, {"demographic_parity_ratio": r["demographic_parity_ratio"]}, None)
                for r in (absent, small)]
    assert [v["decision"] for v in verdicts] == [PROMOTE, PROMOTE]


def test_with_fewer_than_two_groups_present_the_fairness_value_is_unknown_not_a_pass():
    spec = _spec(SEX)
    y, decisions, groups = _rows({"sex": ["f"] * 600})
    report = evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)
    assert [g["group"] for g in report["attributes"]["sex"]["groups"]] == ["f", "m", "x"]
    assert math.isnan(report["demographic_parity_ratio"])
    assert not decide(spec.evaluation.gates, {"demographic_parity_ratio": report["demographic_parity_ratio"]},
                      None)["complete"]


def test_every_declared_bin_and_combination_appears_however_the_test_split_falls():
    spec = _spec({"age": {"bins": [18, 26, 66, 120]}, "sex": {"categories": ["f", "m"]}},
                 features={"age": {"type": "numeric"}})
    y, decisions, groups = _rows({"age": ["18-26"] * 300 + ["26-66"] * 300, "sex": ["f", "m"] * 300})
    report = evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data)
    age = report["attributes"]["age"]
    assert [g["group"] for g in age["groups"]] == ["18-26", "26-66", "66-120"] and age["too_small"] == ["66-120"]
    both = report["attributes"]["age x sex"]
    assert {"66-120 & f", "66-120 & m"} <= set(both["too_small"]) and len(both["groups"]) == 6


def _card(report: dict, spec) -> str:
    from tests.support.model_cards import card_of

    decision = decide(spec.evaluation.gates, {"demographic_parity_ratio": report["demographic_parity_ratio"]}, None)
    return card_of(spec, decision, report)


def test_the_model_card_lists_the_absent_group_with_its_rows_among_the_small_groups():
    spec = _spec(SEX)
    y, decisions, groups = _sexes(0)
    card = _card(evaluate_fairness(y, decisions, decisions.astype(float), groups, spec.data), spec)
    x_row = next(line for line in card.splitlines() if line.startswith("| sex: x |"))
    assert "rows 0" in x_row and "not judged: 0 rows (< 50)" in x_row
    assert "| Small groups | sex: x (0 rows) |" in card

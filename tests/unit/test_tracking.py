import pytest

from keel.tracking import QueryError, matches, parse_where

RECORD = {"model_family": "lightgbm", "validation_metrics": {"roc_auc": 0.82},
          "test_metrics": {"roc_auc": 0.79}, "hyperparameters": {"num_leaves": 31}}


@pytest.mark.parametrize("condition,expected", [
    ("roc_auc>0.8", True), ("roc_auc>0.85", False), ("test.roc_auc>=0.79", True),
    ("validation.roc_auc<0.8", False), ("params.num_leaves=31", True),
    ("hyperparameters.num_leaves!=31", False), ("model_family=lightgbm", True),
    ("model_family==logistic_regression", False), ("nonexistent>1", False),
])
def test_conditions(condition, expected):
    assert matches(RECORD, [parse_where(condition)]) is expected


@pytest.mark.parametrize("bad", ["roc_auc", "roc_auc>>0.8", ">0.8", "roc auc>1"])
def test_malformed_conditions_are_explained(bad):
    with pytest.raises(QueryError, match="expected FIELD OP VALUE"):
        parse_where(bad)


def test_a_condition_with_inner_spaces_parses_and_an_overlong_one_is_refused():
    assert parse_where("model_family = light gbm  ")[2] == "light gbm"
    assert parse_where("a=b" + " " * 900 + "c")[2] == "b" + " " * 900 + "c"
    with pytest.raises(QueryError, match="at most 1000"):
        parse_where("a=b" + " " * 50_000 + "c")  # took 7 s (quadratic backtracking) before the limit and the fix

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


def test_a_field_no_run_records_is_named_with_the_fields_there_are():
    """helper-50: `runs --where 'rocauc>0.5'` said "no training runs match" (exit 0): a misspelling read as an
    empty answer."""
    from keel.tracking import known_fields, unknown_fields

    conditions = [parse_where("rocauc>0.5"), parse_where("test.roc_auc>0.5"), parse_where("params.num_leaves=31")]
    assert unknown_fields([RECORD], conditions) == ["rocauc"]
    assert unknown_fields([], conditions) == []  # no run at all: nothing to tell a misspelling by
    assert {"roc_auc", "test.roc_auc", "params.num_leaves", "model_family"} <= set(known_fields([RECORD]))

import numpy as np
import pandas as pd
import pytest

from keel.data.generator import generate_credit_applications


@pytest.fixture
def frame(default_spec):
    return generate_credit_applications(default_spec.data.source.model_copy(update={"rows": 500}))


def _validate(frame, spec):
    from keel.data.schema import validate_frame

    return validate_frame(frame, spec.data)


def _only_failure(report):
    assert not report.passed
    assert len(report.failures) == 1, report.summary()
    return report.failures[0]


def test_valid_batch_passes_and_gets_spec_dtypes(frame, default_spec):
    validated, report = _validate(frame, default_spec)
    assert report.passed and report.rows == 500
    assert list(validated["region"].cat.categories) == default_spec.data.features["region"].categories
    assert set(validated["default"].unique()) <= {0, 1}


def test_missing_column(frame, default_spec):
    failure = _only_failure(_validate(frame.drop(columns=["income"]), default_spec)[1])
    assert failure.column == "income" and "missing" in failure.check


def test_wrong_dtype(frame, default_spec):
    frame["num_dependents"] = frame["num_dependents"].astype(object)
    frame.loc[[3, 4], "num_dependents"] = "two"
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "num_dependents" and failure.check.startswith("wrong type")
    assert failure.failing_rows == 2 and failure.examples == ["two"]


def test_out_of_range(frame, default_spec):
    frame.loc[[0, 1, 2], "debt_to_income"] = [-1.0, -2.0, 99.0]
    failures = {f.check: f for f in _validate(frame, default_spec)[1].failures}
    assert failures["below the minimum 0"].failing_rows == 2
    assert failures["above the maximum 5"].examples == ["99.0"]


def test_unknown_category(frame, default_spec):
    frame["region"] = frame["region"].astype(str)
    frame.loc[7, "region"] = "atlantis"
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "region" and failure.check.startswith("unknown category")
    assert failure.examples == ["atlantis"] and failure.failing_rows == 1


def test_a_nullable_column_may_be_entirely_missing_and_readiness_says_it_carries_nothing(frame, default_spec):
    from keel.data.readiness import assess_readiness, readiness_summary

    frame["savings_balance"] = np.nan
    frame["region"] = "north"
    validated, report = _validate(frame, default_spec)
    assert report.passed, report.summary()
    readiness = assess_readiness(validated, default_spec, {"roc_auc": 0.8, "pr_auc": 0.5})
    assert readiness["uninformative_features"] == ["savings_balance (no values)", "region (one value only)"]
    assert "carry no information: savings_balance (no values)" in readiness_summary(readiness)
    # Declared not nullable, an empty column is still refused, row by row.
    frame["income"] = np.nan
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "income" and "not allowed" in failure.check


def test_null_in_non_nullable_column(frame, default_spec):
    frame.loc[5, "income"] = np.nan
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "income" and "not allowed" in failure.check


def test_duplicate_ids(frame, default_spec):
    frame.loc[10, "application_id"] = frame.loc[11, "application_id"]
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "application_id" and failure.check == "duplicate ids"
    assert failure.failing_rows == 2


def test_target_outside_its_two_values(frame, default_spec):
    frame.loc[0, "default"] = 7
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "default" and failure.examples == ["7"]


def test_empty_batch(frame, default_spec):
    report = _validate(frame.iloc[:0], default_spec)[1]
    assert not report.passed and "no rows" in report.summary()


def test_summary_and_html_name_column_check_and_count(frame, default_spec):
    from keel.data.schema import validation_html

    frame.loc[[0, 1], "income"] = -5.0
    report = _validate(frame, default_spec)[1]
    assert "column 'income': below the minimum 0 (2 row(s); e.g. -5.0)" in report.summary()
    page = validation_html(report)
    assert "below the minimum 0" in page and "<script" not in page


def test_missing_values_where_none_are_allowed_say_how_to_allow_them_without_a_dash_for_an_example(frame,
                                                                                                  default_spec):
    """helper-63: "column 'ethnicity': missing values are not allowed (120 row(s); e.g. -)": no example to
    give, a dash that reads as a value, and no word of `nullable`."""
    frame.loc[[0, 1, 2], "income"] = None
    summary = _validate(frame, default_spec)[1].summary()
    assert ("column 'income': missing values are not allowed (declare it `nullable: true` in the spec where a "
            "missing value is valid) (3 row(s))") in summary
    assert "e.g. -)" not in summary


def test_extra_columns_are_ignored(frame, default_spec):
    frame["unused"] = "x"
    validated, report = _validate(frame, default_spec)
    assert report.passed and "unused" not in validated


def test_a_target_of_one_class_is_refused_at_validation(frame, default_spec):
    frame["default"] = 0
    failure = _only_failure(_validate(frame, default_spec)[1])
    assert failure.column == "default" and failure.check.startswith("the target must hold both classes")
    # helper-48: a target holding neither declared class (a continuous one) was said to hold "one".
    frame["default"] = np.linspace(0.1, 0.9, len(frame))
    checks = [f.check for f in _validate(frame, default_spec)[1].failures if f.column == "default"]
    assert any("it does not hold both (one class only, or neither)" in c for c in checks)
    assert not any("holds one" in c for c in checks)

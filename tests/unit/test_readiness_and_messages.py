import pandas as pd

from keel.lifecycle.pipeline_runs import exception_message
from keel.data.generator import generate_credit_applications
from keel.data.readiness import assess_readiness, readiness_html, readiness_summary
from keel.data.schema import validate_frame


def _frame(spec, rows=2000):
    return validate_frame(generate_credit_applications(spec.data.source.model_copy(update={"rows": rows})),
                          spec.data)[0]


def test_readiness_counts_groups_and_judges_criteria(default_spec):
    frame = _frame(default_spec)
    report = assess_readiness(frame, default_spec, {"roc_auc": 0.80, "pr_auc": 0.37})
    assert report["rows"] == 2000
    assert sum(report["group_sizes"]["sex"].values()) == 2000
    assert abs(report["positive_rate"] - frame["default"].mean()) < 1e-4
    verdicts = {c["criterion"]: c["verdict"] for c in report["criteria"]}
    assert verdicts["roc_auc >= 0.75"] == "met by the baseline"
    assert verdicts["pr_auc >= 0.4"].startswith("plausible")  # 0.03 short, margin 0.05
    report = assess_readiness(frame, default_spec, {"roc_auc": 0.60, "pr_auc": 0.5})
    assert report["ready"] is False and "unlikely" in readiness_summary(report)


def test_a_baseline_value_that_is_not_a_number_is_unknown_and_never_ready(default_spec):
    report = assess_readiness(_frame(default_spec), default_spec, {"roc_auc": float("nan"), "pr_auc": 0.5})
    verdicts = {c["criterion"]: c["verdict"] for c in report["criteria"]}
    assert verdicts["roc_auc >= 0.75"] == "unknown (the baseline's value is not a number)"
    assert report["ready"] is False


def test_small_groups_are_flagged(default_spec):
    frame = _frame(default_spec, rows=300)
    report = assess_readiness(frame, default_spec, {"roc_auc": 0.8, "pr_auc": 0.5})
    flagged = [g for g in report["small_groups"] if g.startswith("age_band=18-25")]
    assert flagged and report["ready"] is False
    assert "Too small to judge" in readiness_html(report)


def test_the_report_says_which_rows_it_judged_when_they_are_not_all_the_data(default_spec):
    """helper-49: on the dask engine readiness judged the training split (11,912 of 20,000 rows) and
    called a 28-row group a 14-row one, without saying so."""
    from keel.engine.spec import READINESS_ROWS

    frame = _frame(default_spec, rows=500)
    whole = assess_readiness(frame, default_spec, {"roc_auc": 0.8, "pr_auc": 0.5})
    assert readiness_summary(whole).startswith("data readiness: 500 rows, positive rate")
    split = assess_readiness(frame, default_spec, {"roc_auc": 0.8, "pr_auc": 0.5}, rows_judged=READINESS_ROWS)
    assert readiness_summary(split).startswith(f"data readiness: 500 rows ({READINESS_ROWS}), positive rate")
    assert "training split" in readiness_html(split) and "all validated rows" in readiness_html(whole)


def test_rows_repeating_another_exactly_are_counted_and_said(default_spec):
    """helper-48: 20 duplicated patient rows passed unnoticed without an id column; 6 of 182 test rows were
    copies of training rows."""
    frame = _frame(default_spec, rows=400)
    assert assess_readiness(frame, default_spec, {"roc_auc": 0.8, "pr_auc": 0.5})["duplicate_rows"] == 0
    doubled = pd.concat([frame, frame.head(20).assign(application_id=lambda f: f["application_id"] + 10**9)])
    report = assess_readiness(doubled, default_spec, {"roc_auc": 0.8, "pr_auc": 0.5})
    assert report["duplicate_rows"] == 20
    assert "20 row(s) repeat another row's features and target exactly" in readiness_summary(report)
    # helper-59: with data.id_column declared the advice to declare it was wrong; the rows differ in their id.
    assert default_spec.data.id_column == "application_id" and "declare data.id_column" not in readiness_summary(report)
    assert "exactly under another application_id: alike cases, or one case entered twice" in readiness_summary(report)
    without_id = default_spec.model_copy(update={"data": default_spec.data.model_copy(update={"id_column": None})})
    report = assess_readiness(doubled, without_id, {"roc_auc": 0.8, "pr_auc": 0.5})
    assert "(declare data.id_column to refuse duplicates)" in readiness_summary(report)


def test_exception_message_keeps_the_text_and_drops_the_traceback():
    traceback = ('Traceback (most recent call last):\n  File "x.py", line 1, in f\n    raise E(msg)\n'
                 'steps.data.validate.DataValidationError: data validation failed: 1 check(s)\n'
                 "  - column 'income': the column is missing\n")
    assert exception_message(traceback) == ("data validation failed: 1 check(s)\n"
                                            "  - column 'income': the column is missing")

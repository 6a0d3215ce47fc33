"""Business impact: value per decided row (case) under the spec's value matrix (only when the spec declares
one), against a baseline policy. The report's keys keep their gate metric names (`..._per_application`);
what a row is called in words comes from `evaluation.value_matrix.case`."""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from keel.evaluation.decisions import confusion, value_per_application
from keel.reports import html, svg
from keel.spec.evaluation import ValueMatrix


NOT_DECLARED = "not declared"


def evaluate_business(y_true, decisions, values: Optional[ValueMatrix],
                      champion_decisions: Optional[np.ndarray] = None, negative_label: object = "negative") -> dict:
    """The model's value per row, deciding negative for everyone's (predicting `negative_label` for all),
    and the champion's if there is one: the baseline is the champion when there is one, else deciding
    negative for everyone. Without a value matrix in the spec: not measured.

    `champion_decisions` (1/0, NaN on the rows it is not compared on: those it was trained on, or every
    row when the comparison has no value): the uplift over the champion compares both on those rows only,
    so that the champion's in-sample decisions do not count; with none left it has no value (NaN)."""
    y_true = np.asarray(y_true)
    decisions = np.asarray(decisions, dtype=bool)
    if values is None:
        return {"declared": False, "currency": None, "confusion": confusion(y_true, decisions),
                "expected_value_per_application": None, "value_uplift_vs_baseline": None,
                "baseline_policy": NOT_DECLARED}
    model_value = value_per_application(y_true, decisions, values)
    all_negative = value_per_application(y_true, np.zeros(len(y_true), dtype=bool), values)
    policy = f"predict {negative_label!r} for everyone"
    report = {"declared": True, "currency": values.currency, "per": per_case(values),
              "confusion": confusion(y_true, decisions),
              "expected_value_per_application": model_value,
              "all_negative_value_per_application": all_negative, "all_negative_policy": policy,
              "baseline_policy": policy, "baseline_value_per_application": all_negative,
              "value_uplift_vs_baseline": model_value - all_negative}
    if champion_decisions is not None:
        champion = np.asarray(champion_decisions, dtype=float)
        compared = ~np.isnan(champion)
        on_rows = (lambda chosen: value_per_application(y_true[compared], chosen[compared], values)
                   if compared.any() else float("nan"))
        champion_value, model_on_compared = on_rows(champion == 1), on_rows(decisions)
        report.update(champion_value_per_application=champion_value, baseline_policy="champion",
                      baseline_value_per_application=champion_value, baseline_rows=int(compared.sum()),
                      value_per_application_on_baseline_rows=model_on_compared,
                      value_uplift_vs_baseline=model_on_compared - champion_value)
    return report


def per_case(values: Optional[ValueMatrix]) -> str:
    """"per transaction" when the spec names what a row is, else "per case"."""
    return f"per {values.case if values is not None and values.case else 'case'}"


def baseline_text(report: dict, champion: Optional[str] = None) -> str:
    """The policy the uplift is measured against, named: the champion (`champion` names it) or deciding
    negative for everyone."""
    if report.get("baseline_policy") == "champion":
        rows = report.get("baseline_rows")  # absent from reports made before it was kept
        where = ("the same test rows" if rows is None else
                 f"the {rows} test rows the comparison used" if rows else "no test rows (the comparison has no value)")
        return f"the champion{f' ({champion})' if champion else ''}: its decisions on {where}"
    return str(report.get("baseline_policy"))


def business_rows(report: dict, champion: Optional[str] = None) -> List[tuple]:
    """(label, value) rows of the business report: values, the named baseline and the confusion counts."""
    if not report.get("declared", True):
        return ([("value", "not declared: the spec has no evaluation.value_matrix, so decisions are not valued")]
                + [(f"{outcome.replace('_', ' ')}s (test split)", count)
                   for outcome, count in report["confusion"].items()])
    currency, per = report["currency"], report.get("per", "per case")  # reports from before `per` was kept
    all_negative = report.get("all_negative_value_per_application", report.get("approve_all_value_per_application"))
    rows = [(f"value {per}, this model ({currency})", report["expected_value_per_application"]),
            ("baseline policy", baseline_text(report, champion)),
            (f"value {per}, baseline ({currency})", report["baseline_value_per_application"]),
            *([(f"value {per}, this model on the baseline's rows ({currency})",
                report["value_per_application_on_baseline_rows"])]
              if "value_per_application_on_baseline_rows" in report else []),
            (f"uplift {per} vs baseline ({currency})", report["value_uplift_vs_baseline"])]
    if report.get("baseline_policy") == "champion":  # the all-negative policy is still a reference point
        rows.append((f"value {per}, {report.get('all_negative_policy', 'all negative')} ({currency})", all_negative))
    return rows + [(f"{outcome.replace('_', ' ')}s (test split)", count)
                   for outcome, count in report["confusion"].items()]


def business_html(report: dict) -> str:
    if not report.get("declared", True):
        return html.page("Business impact (test split)",
                         html.paragraph("Not declared: the spec has no evaluation.value_matrix, so no value is "
                                        "attached to decisions and business impact is not measured."),
                         html.table(["outcome", "count"], report["confusion"].items()))
    policy = report.get("all_negative_policy", "approve all")  # reports made before the policy was named
    all_negative = report.get("all_negative_value_per_application", report.get("approve_all_value_per_application"))
    per = report.get("per", "per case")
    labels = ["this model", policy] + (["champion"] if "champion_value_per_application" in report else [])
    values = [report["expected_value_per_application"], all_negative] + \
        ([report["champion_value_per_application"]] if "champion_value_per_application" in report else [])
    return html.page(
        "Business impact (test split)",
        html.key_values({f"value {per} ({report['currency']})": report["expected_value_per_application"],
                         "baseline policy": baseline_text(report),
                         "uplift vs baseline": report["value_uplift_vs_baseline"]}),
        svg.bar_chart(labels, values, f"Value {per} ({report['currency']})"),
        html.table(["outcome", "count"], report["confusion"].items()))

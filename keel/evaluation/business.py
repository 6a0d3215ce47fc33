"""Business impact: value per application under the spec's value matrix (only when the spec declares one),
against a baseline policy."""

from __future__ import annotations

from typing import Optional

import numpy as np

from keel.evaluation.decisions import confusion, value_per_application
from keel.reports import html, svg
from keel.spec.evaluation import ValueMatrix


NOT_DECLARED = "not declared"


def evaluate_business(y_true, decisions, values: Optional[ValueMatrix],
                      champion_decisions: Optional[np.ndarray] = None, negative_label: object = "negative") -> dict:
    """The model's value per application, deciding negative for everyone's (predicting `negative_label`
    for all), and the champion's if there is one. Without a value matrix in the spec: not measured."""
    y_true = np.asarray(y_true)
    if values is None:
        return {"declared": False, "currency": None, "confusion": confusion(y_true, decisions),
                "expected_value_per_application": None, "value_uplift_vs_baseline": None,
                "baseline_policy": NOT_DECLARED}
    model_value = value_per_application(y_true, decisions, values)
    all_negative = value_per_application(y_true, np.zeros(len(y_true), dtype=bool), values)
    policy = f"predict {negative_label!r} for everyone"
    report = {"declared": True, "currency": values.currency, "confusion": confusion(y_true, decisions),
              "expected_value_per_application": model_value,
              "all_negative_value_per_application": all_negative, "all_negative_policy": policy,
              "baseline_policy": policy, "baseline_value_per_application": all_negative}
    if champion_decisions is not None:
        champion_value = value_per_application(y_true, champion_decisions, values)
        report.update(champion_value_per_application=champion_value, baseline_policy="champion",
                      baseline_value_per_application=champion_value)
    report["value_uplift_vs_baseline"] = model_value - report["baseline_value_per_application"]
    return report


def business_html(report: dict) -> str:
    if not report.get("declared", True):
        return html.page("Business impact (test split)",
                         html.paragraph("Not declared: the spec has no evaluation.value_matrix, so no value is "
                                        "attached to decisions and business impact is not measured."),
                         html.table(["outcome", "count"], report["confusion"].items()))
    policy = report.get("all_negative_policy", "approve all")  # reports made before the policy was named
    all_negative = report.get("all_negative_value_per_application", report.get("approve_all_value_per_application"))
    labels = ["this model", policy] + (["champion"] if "champion_value_per_application" in report else [])
    values = [report["expected_value_per_application"], all_negative] + \
        ([report["champion_value_per_application"]] if "champion_value_per_application" in report else [])
    return html.page(
        "Business impact (test split)",
        html.key_values({f"value per application ({report['currency']})": report["expected_value_per_application"],
                         "baseline policy": report["baseline_policy"],
                         "uplift vs baseline": report["value_uplift_vs_baseline"]}),
        svg.bar_chart(labels, values, f"Value per application ({report['currency']})"),
        html.table(["outcome", "count"], report["confusion"].items()))

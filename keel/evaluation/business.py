"""Business impact: money per application under the spec's value matrix, against a baseline policy."""

from __future__ import annotations

from typing import Optional

import numpy as np

from keel.evaluation.decisions import confusion, value_per_application
from keel.reports import html, svg
from keel.spec.models import ValueMatrix


def evaluate_business(y_true, decisions, values: ValueMatrix, champion_decisions: Optional[np.ndarray] = None) -> dict:
    """The model's value per application, approving everyone's, and the champion's if there is one."""
    y_true = np.asarray(y_true)
    model_value = value_per_application(y_true, decisions, values)
    approve_all = value_per_application(y_true, np.zeros(len(y_true), dtype=bool), values)
    report = {"currency": values.currency, "confusion": confusion(y_true, decisions),
              "expected_value_per_application": model_value,
              "approve_all_value_per_application": approve_all,
              "baseline_policy": "approve all", "baseline_value_per_application": approve_all}
    if champion_decisions is not None:
        champion_value = value_per_application(y_true, champion_decisions, values)
        report.update(champion_value_per_application=champion_value, baseline_policy="champion",
                      baseline_value_per_application=champion_value)
    report["value_uplift_vs_baseline"] = model_value - report["baseline_value_per_application"]
    return report


def business_html(report: dict) -> str:
    labels = ["this model", "approve all"] + (["champion"] if "champion_value_per_application" in report else [])
    values = [report["expected_value_per_application"], report["approve_all_value_per_application"]] + \
        ([report["champion_value_per_application"]] if "champion_value_per_application" in report else [])
    return html.page(
        "Business impact (test split)",
        html.key_values({f"value per application ({report['currency']})": report["expected_value_per_application"],
                         "baseline policy": report["baseline_policy"],
                         "uplift vs baseline": report["value_uplift_vs_baseline"]}),
        svg.bar_chart(labels, values, f"Value per application ({report['currency']})"),
        html.table(["outcome", "count"], report["confusion"].items()))

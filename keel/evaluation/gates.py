"""Gates from the spec: every declared bar, its value, threshold and verdict, and the decision."""

from __future__ import annotations

from typing import Dict, List, Optional

from keel.reports import html
from keel.spec.models import FAIRNESS_METRICS, Gate


def fairness_values(fairness: dict) -> Dict[str, float]:
    """Headline fairness values, and each attribute's as `metric[attribute]`."""
    values = {}
    for metric in FAIRNESS_METRICS:
        values[metric] = fairness[metric]
        for attribute, report in fairness["attributes"].items():
            values[f"{metric}[{attribute}]"] = report[metric]
    return values


def gate_values(performance: dict, fairness: dict, calibration: dict, robustness: dict,
                latency: dict, business: dict) -> Dict[str, float]:
    """The flat metric -> value map gates are checked against (names as in the spec)."""
    values = {**performance["metrics"], **fairness_values(fairness)}
    values["expected_calibration_error"] = calibration["expected_calibration_error"]
    values["brier"] = calibration["brier"]
    values["robustness_max_drop"] = robustness["robustness_max_drop"]
    values.update({k: latency[k] for k in ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                                           "batch_rows_per_second", "model_size_mb")})
    values.update({k: business[k] for k in ("expected_value_per_application", "value_uplift_vs_baseline")})
    return {k: float(v) for k, v in values.items()}


def decide(gates: List[Gate], values: Dict[str, float], comparison: Optional[dict],
           hostile_inputs_passed: bool = True) -> dict:
    """Promote to staging only when every gate passes (and the challenger test, if there is a champion)."""
    rows = [{"gate": g.describe(), "metric": g.key, "value": values.get(g.key),
             "passed": g.passes(values.get(g.key))} for g in gates]
    if comparison and comparison.get("champion"):
        rows.append({"gate": f"challenger {comparison['mode'].replace('_', '-')} vs {comparison['champion']} "
                             f"(margin {comparison['margin']:g}, {comparison['metric']})",
                     "metric": "champion_challenger", "value": comparison["ci_low"],
                     "passed": bool(comparison["accepted"])})
    rows.append({"gate": "hostile inputs (out of range, unseen categories) answered", "metric": "hostile_inputs",
                 "value": float(hostile_inputs_passed), "passed": bool(hostile_inputs_passed)})
    failed = [r["gate"] for r in rows if not r["passed"]]
    return {"gates": rows, "failed": failed, "passed": not failed,
            "decision": "promote to staging" if not failed else "reject"}


def gates_table(decision: dict) -> str:
    return html.table(["gate", "value", "result"],
                      [(r["gate"], r["value"], html.verdict(r["passed"])) for r in decision["gates"]])


def gates_html(decision: dict, title: str = "Gates and decision") -> str:
    return html.page(title, html.key_values({"decision": html.verdict(decision["passed"], decision["decision"])}),
                     gates_table(decision))

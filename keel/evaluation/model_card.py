"""The model card: one document per model version, drawn only from recorded evidence.

Rendered twice from the same sections: Markdown (a file to keep) and static HTML (the dashboard)."""

from __future__ import annotations

from typing import List

from keel import registration as keys
from keel.data.screening import screening_rows, sensitive_inputs
from keel.data.split import periods_text
from keel.evaluation.fairness import interval_text, judged_text, small_groups
from keel.evaluation.business import business_rows
from keel.evaluation.comparison import comparison_text
from keel.evaluation.gates import Decision, describe_decision, result_text, trusted_interval
from keel.evaluation.performance import undefined_text
from keel.evaluation.record import applied_gates, describe_gate
from keel.monitoring.production_fairness import LABEL_COVERAGE, coverage_rows
from keel.provenance import source_text
from keel.reports import html
from keel.reports.values import format_value as _fmt


def _metric_text(reports: dict, name: str, value: float) -> str:
    """"0.3696 (95% CI 0.2249 to 0.5000)", or the value with why its interval is not available (too few
    rows of a kind for the bootstrap to vary: a narrow interval there would be false precision)."""
    performance = reports["performance"]
    if undefined_text(performance, name):
        return undefined_text(performance, name)
    interval, why = trusted_interval(name, reports)
    if interval is None:
        return f"{value:.4f} ({performance['confidence']:.0%} CI not available: {why or 'none computed'})"
    return f"{value:.4f} ({performance['confidence']:.0%} CI {interval[0]:.4f} to {interval[1]:.4f})"


def _business_section(reports: dict) -> List[dict]:
    """Business impact with its baseline named (the champion or deciding negative for everyone) and the
    confusion counts; none for reports from before the business report was kept with the card's."""
    report = reports.get("business")
    if not report:
        return []
    comparison = reports.get("comparison") or {}
    rows = business_rows(report, comparison.get("champion"))
    text = ("Value of the model's decisions on the test split under evaluation.value_matrix, against a baseline "
            "policy." if report.get("declared", True) else "")
    return [{"title": "Business impact (test split)", "text": text, "rows": rows}]


def card_sections(spec, model_name: str, version: int, training: dict, reports: dict) -> List[dict]:
    problem, data = spec.problem, spec.data
    decision: Decision = reports["decision"]
    perf = reports["performance"]["metrics"]
    comparison = reports.get("comparison")
    fairness = reports["fairness"]
    robustness = reports["robustness"]
    return [
        {"title": "Intended use", "text": problem.objective,
         "rows": [("Intended users", problem.intended_users or "-"), ("Business metric", problem.business_metric),
                  ("Positive class", data.target.positive_meaning()),
                  ("Favourable decision", data.target.favourable_decision() if data.target.favourable else "not declared"),
                  ("Success criteria", "; ".join(c.describe() for c in problem.success_criteria))]},
        {"title": "Data", "text": "",
         "rows": [("Source", training.get(keys.DATA_SOURCE)), ("Data fingerprint (SHA-256)", training.get(keys.DATA_FINGERPRINT)),
                  ("Rows (train / validation / test)", " / ".join(str(training.get(keys.ROWS, {}).get(k, "-"))
                                                                  for k in ("train", "validation", "test"))),
                  *([(f"Periods ({data.time_column}; split by {spec.split.strategy})",
                      periods_text(training[keys.SPLIT_PERIODS]))] if training.get(keys.SPLIT_PERIODS) else []),
                  ("Features", ", ".join(data.model_features)),
                  ("Sensitive attributes (not model inputs unless stated)", ", ".join(data.sensitive_attributes))]},
        {"title": "Leakage and proxy screening", "text": "",
         "rows": screening_rows(training.get(keys.SCREENING), sensitive_inputs(data))},
        *([{"title": "Labels from production (retraining)", "text": "", "rows": coverage_rows(training[LABEL_COVERAGE])}]
          if training.get(LABEL_COVERAGE) else []),
        {"title": "Training", "text": "",
         "rows": [("Model family", training.get(keys.MODEL_FAMILY)), ("Hyperparameters", training.get(keys.HYPERPARAMETERS)),
                  ("Seed", training.get(keys.SEED)), ("Spec SHA-256", training.get(keys.SPEC_SHA256)),
                  ("Git commit", f"{training.get(keys.GIT_COMMIT)}{' (dirty)' if training.get(keys.GIT_DIRTY) else ''}"),
                  ("Source SHA-256", source_text(training)),
                  ("Model SHA-256", training.get(keys.MODEL_SHA256)), ("Lock SHA-256", training.get(keys.LOCK_SHA256))]},
        {"title": "Performance (test split)",
         "text": f"Decision threshold {reports['threshold']['threshold']:.4f} chosen on validation data by "
                 f"rule `{reports['threshold']['rule']}`.",
         "rows": [(name, _metric_text(reports, name, value)) for name, value in perf.items()]
                 + ([("champion comparison", comparison_text(comparison))] if comparison else [])},
        {"title": "Fairness",
         "text": (f"Favourable decision: {fairness['favourable_decision']}. {fairness['orientation']}. "
                  f"Small-group rule: {fairness['rule']['text']}.") if fairness["attributes"] else
                 "No sensitive attributes declared: fairness not assessed.",
         "rows": [(f"{name}: {g['group']}", f"rows {_fmt(g['rows'])}, favourable decisions "
                   f"{_fmt(g['selection_rate'])} ({interval_text(g)}), "
                   f"TPR {_fmt(g['tpr'])}, FPR {_fmt(g['fpr'])}, AUC {_fmt(g['auc'])}"
                   + ("" if g.get("odds_judgeable", g["judgeable"]) else f" ({judged_text(g)})"))
                  for name, attribute in fairness["attributes"].items() if " x " not in name
                  for g in attribute["groups"]]},
        *_business_section(reports),
        *_mitigation_sections(training, reports),
        {"title": "Calibration", "text": "",
         "rows": [("Brier score", reports["calibration"]["brier"]),
                  ("Expected calibration error", reports["calibration"]["expected_calibration_error"]),
                  ("Post-hoc calibration", reports["calibration"]["method"])]},
        {"title": "Robustness", "text": f"Drop of {robustness['metric']} under perturbation (positive = worse).",
         "rows": [(f"all features: {k}", v) for k, v in robustness["all_features"].items()]
                 + [("hostile inputs answered", robustness["hostile_inputs"]["passed"])]
                 + [(f"worst slice of {feature}", f"{w['slice']} ({w['rows']} rows): {robustness['metric']} "
                     f"{w[robustness['metric']]:.4f}")
                    for feature, w in sorted(robustness["worst_slice_per_feature"].items(),
                                             key=lambda item: item[1][robustness["metric"]])[:5]]},
        {"title": "Top features (mean |SHAP|)", "text": "",
         "rows": list(reports["explainability"]["global_importance"].items())[:10]},
        {"title": "Latency and size", "text": "",
         "rows": [(k, reports["latency"][k]) for k in ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                                                       "batch_rows_per_second", "model_size_mb")]},
        {"title": "Limitations", "text": "",
         "rows": [("Small groups", "; ".join(f"{n}: {', '.join(small_groups(a))}"
                                                for n, a in fairness["attributes"].items()
                                                if small_groups(a)) or "none"),
                  ("Evaluated on", "one held-out test split of the training data's source; no production data yet")]},
        {"title": "Gates and decision", "text": f"Decision: **{describe_decision(decision)}**",
         "rows": [(g["gate"], f"{_fmt(g['value'])} — {result_text(g)}") for g in decision["gates"]]
                 + [("gate change since the previous evaluation", change) for change in decision.get("gate_changes") or []]},
        {"title": "Gate history",
         "text": "Every evaluation of this version, oldest first, with the gates it applied (from the audit trail); "
                 "the last row is this evaluation.",
         "rows": [(f"{h['time'] or '-'} {h['run_name'] or ''}".strip(),
                   f"{h['decision']}: {h['gates']}" + (f" (changes: {h['changes']})" if h["changes"] != "-" else ""))
                  for h in decision.get("gate_history") or []]
                 + [("this evaluation", f"{decision['decision']}: "
                                        + "; ".join(describe_gate(g) for g in applied_gates(spec.evaluation)))]},
    ]


def _mitigation_sections(training: dict, reports: dict) -> List[dict]:
    """The mitigation this version ships (its `mitigation` metadata), and the evaluation's mitigation
    analysis when there is one: each with every gate metric before and after."""
    from keel.evaluation.mitigation import describe_mitigation

    sections = []
    for title, facts in (("Mitigation (this version)", training.get(keys.MITIGATION)),
                         ("Mitigation analysis", reports.get("mitigation"))):
        if facts:
            text, rows = describe_mitigation(facts)
            sections.append({"title": title, "text": text, "rows": rows})
    return sections


def model_card_markdown(model_name: str, version: int, sections: List[dict]) -> str:
    lines = [f"# Model card: {model_name} v{version}", ""]
    for section in sections:
        lines += [f"## {section['title']}", ""]
        if section["text"]:
            lines += [section["text"], ""]
        if section["rows"]:
            lines += ["| | |", "|---|---|"]
            lines += [f"| {key} | {_fmt(value).replace('|', '/')} |" for key, value in section["rows"]]
            lines.append("")
    return "\n".join(lines)


def model_card_html(model_name: str, version: int, sections: List[dict]) -> str:
    parts = []
    for section in sections:
        parts.append(html.heading(section["title"]))
        if section["text"]:
            parts.append(html.paragraph(section["text"].replace("**", "")))
        if section["rows"]:
            parts.append(html.table(["", ""], [(k, _fmt(v)) for k, v in section["rows"]]))
    return html.page(f"Model card: {model_name} v{version}", *parts)

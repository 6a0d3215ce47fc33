"""Data readiness (the problem-definition phase): is this data fit to answer the spec's question?"""

from __future__ import annotations

import math
from typing import Dict

import pandas as pd

from keel.data.groups import sensitive_groups
from keel.data.screening import screen_features
from keel.reports import html
from keel.spec.models import Spec


UNKNOWN = "unknown"


def _criterion_verdict(criterion, value: float, margin: float) -> str:
    if value is None or math.isnan(value):  # e.g. an AUC on rows of one class: nothing to compare
        return f"{UNKNOWN} (the baseline's value is not a number)"
    if criterion.is_met(value):
        return "met by the baseline"
    bound = criterion.min if criterion.min is not None and value < criterion.min else criterion.max
    gap = abs(value - bound)
    return f"plausible (baseline {gap:.3f} short)" if gap <= margin else f"unlikely (baseline {gap:.3f} short)"


ALL_ROWS = "all validated rows"


def assess_readiness(frame: pd.DataFrame, spec: Spec, baseline_validation: Dict[str, float],
                     rows_judged: str = ALL_ROWS) -> dict:
    """Rows, label balance, missingness, sensitive-group sizes, a verdict per success criterion, and the
    features screened for leakage and proxies (keel.data.screening). `rows_judged` says which rows `frame`
    is (e.g. the Dask engine judges the training split only): its group sizes are not the data's."""
    data = spec.data
    target = frame[data.target.column]
    missing = frame[list(data.features)].isna().mean()
    groups = sensitive_groups(frame, data)
    group_sizes = {
        name: {label: int(count) for label, count in groups[name].value_counts().sort_index().items()}
        for name in groups
    }
    small = [f"{name}={label} ({count} rows)" for name, sizes in group_sizes.items()
             for label, count in sizes.items() if count < data.min_group_size]
    # A column declared nullable may hold no value at all, or one value only: valid, but no information.
    uninformative = [f"{name} ({'no values' if frame[name].notna().sum() == 0 else 'one value only'})"
                     for name in data.model_features if frame[name].nunique(dropna=True) < 2]
    criteria = [
        {"criterion": c.describe(), "baseline_validation": baseline_validation[c.metric],
         "verdict": _criterion_verdict(c, baseline_validation[c.metric], spec.problem.readiness_margin)}
        for c in spec.problem.success_criteria
    ]
    # Exact copies (features and target): a copy can land in train and in test, flattering every metric.
    duplicates = int(frame.duplicated(subset=[*data.features, data.target.column]).sum()) if len(frame) else 0
    return {
        "rows": int(len(frame)),
        "rows_judged": rows_judged,
        "duplicate_rows": duplicates,
        "id_column": data.id_column,
        "positive_rate": round(float(target.mean()), 4) if len(frame) else None,
        "positive_label": data.target.positive_label,
        "missing_share": {name: round(float(v), 4) for name, v in missing.items() if v > 0},
        "group_sizes": group_sizes,
        "small_groups": small,
        "uninformative_features": uninformative,
        "criteria": criteria,
        "screening": screen_features(frame, data, target),
        "ready": not small and all(not c["verdict"].startswith(("unlikely", UNKNOWN)) for c in criteria),
    }


def readiness_summary(report: dict) -> str:
    judged = report.get("rows_judged", ALL_ROWS)
    lines = [f"data readiness: {report['rows']} rows{'' if judged == ALL_ROWS else f' ({judged})'}, positive rate {report['positive_rate']:.1%} "
             f"({report['positive_label']}); {len(report['missing_share'])} column(s) with missing values"]
    for item in report["criteria"]:
        lines.append(f"  {item['criterion']}: baseline {item['baseline_validation']:.4f} -> {item['verdict']}")
    if report.get("duplicate_rows") and report.get("id_column"):
        lines.append(f"  {report['duplicate_rows']} row(s) repeat another row's features and target exactly under "
                     f"another {report['id_column']}: alike cases, or one case entered twice, whose copies can land "
                     "in train and in test")
    elif report.get("duplicate_rows"):
        lines.append(f"  {report['duplicate_rows']} row(s) repeat another row's features and target exactly: a copy "
                     "can land in train and in test (declare data.id_column to refuse duplicates)")
    if report["small_groups"]:
        lines.append(f"  groups too small to judge: {', '.join(report['small_groups'])}")
    if report.get("uninformative_features"):
        lines.append(f"  features that carry no information: {', '.join(report['uninformative_features'])}")
    screening = report.get("screening") or {}
    for kind, key in (("leakage suspect", "leakage_suspects"), ("proxy", "proxies"), ("not screened", "not_judged")):
        lines += [f"  {kind}: {item}" for item in screening.get(key, [])]
    return "\n".join(lines)


def readiness_html(report: dict) -> str:
    sections = [
        html.key_values({"rows": report["rows"], "rows judged": report.get("rows_judged", ALL_ROWS),
                         "rows repeating another exactly": report.get("duplicate_rows", 0),
                         "positive rate": report["positive_rate"],
                         "positive class": report["positive_label"],
                         "ready": html.verdict(report["ready"], "yes" if report["ready"] else "no")}),
        html.heading("Success criteria against the baseline (validation)"),
        html.table(["criterion", "baseline", "verdict"],
                   [(c["criterion"], c["baseline_validation"], c["verdict"]) for c in report["criteria"]]),
        html.heading("Missing values"),
        html.table(["column", "share missing"], report["missing_share"].items()),
        html.heading("Sensitive groups"),
    ]
    for name, sizes in report["group_sizes"].items():
        sections.append(html.table([name, "rows"], sizes.items()))
    if report["small_groups"]:
        sections.append(html.paragraph("Too small to judge: " + ", ".join(report["small_groups"])))
    if report.get("uninformative_features"):
        sections.append(html.paragraph("Features that carry no information: "
                                       + ", ".join(report["uninformative_features"])))
    if report.get("screening"):
        sections += screening_sections(report["screening"])
    return html.page("Data readiness", *sections)


def screening_sections(screening: dict) -> list:
    """The leakage and proxy screening as HTML sections (the readiness report and the model card)."""
    found = [("leakage suspect", item) for item in screening["leakage_suspects"]]
    found += [("proxy", item) for item in screening["proxies"]] + [("not screened", item) for item in screening["not_judged"]]
    attributes = sorted({a for f in screening["features"] for a in f["proxy_auc"]})
    rows = [(f["feature"], f["target_auc"], f["recorded_after_outcome"], *[f["proxy_auc"].get(a) for a in attributes])
            for f in screening["features"]]
    return [html.heading(f"Leakage and proxy screening ({screening['rows_screened']} rows, out-of-fold AUC)"),
            html.table(["finding", "detail"], found) if found else html.paragraph("No leakage suspect or proxy found."),
            html.table(["feature", "AUC for the target", "recorded after outcome",
                        *[f"AUC for {a}" for a in attributes]], rows)]

"""Fairness with fairlearn's MetricFrame: per group of each sensitive attribute and of their
intersection. Groups smaller than the spec's `min_group_size` are reported and flagged, and kept
out of the headline ratios rather than silently averaged in."""

from __future__ import annotations

from typing import Dict

import numpy as np
import pandas as pd

from keel.reports import html, svg


def _auc(y_true, y_score) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) == 2 else float("nan")


def _group_table(y_true, decisions, scores, groups: pd.DataFrame | pd.Series) -> pd.DataFrame:
    from fairlearn.metrics import (MetricFrame, count, false_positive_rate, selection_rate,
                                   true_positive_rate)

    decision_frame = MetricFrame(
        metrics={"rows": count, "selection_rate": selection_rate, "tpr": true_positive_rate,
                 "fpr": false_positive_rate},
        y_true=y_true, y_pred=decisions, sensitive_features=groups)
    auc_frame = MetricFrame(metrics={"auc": _auc}, y_true=y_true, y_pred=scores, sensitive_features=groups)
    table = decision_frame.by_group.join(auc_frame.by_group)
    table["positives"] = pd.Series(y_true, index=groups.index).groupby(
        [groups[c] for c in groups] if isinstance(groups, pd.DataFrame) else groups).sum()
    return table


def _headline(table: pd.DataFrame) -> Dict[str, float]:
    if len(table) < 2:
        return {"demographic_parity_ratio": float("nan"), "demographic_parity_difference": float("nan"),
                "equalized_odds_difference": float("nan")}
    rates = table["selection_rate"]
    return {
        "demographic_parity_ratio": float(rates.min() / rates.max()) if rates.max() > 0 else 1.0,
        "demographic_parity_difference": float(rates.max() - rates.min()),
        "equalized_odds_difference": float(max(table["tpr"].max() - table["tpr"].min(),
                                               table["fpr"].max() - table["fpr"].min())),
    }


def _label(key) -> str:
    return " & ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def evaluate_fairness(y_true, decisions, scores, groups: pd.DataFrame, min_group_size: int,
                      favourable: str = "negative") -> dict:
    """Per-attribute and intersectional group metrics; headline values over judgeable groups.

    Rates are of the favourable decision: with `favourable="negative"` (e.g. not predicting default,
    i.e. approval) labels, decisions and scores are flipped so that "selected" means "approved".
    Equalized-odds differences are the same either way."""
    flip = favourable == "negative"
    y_true = pd.Series(1 - np.asarray(y_true) if flip else np.asarray(y_true), index=groups.index)
    decisions = np.asarray(decisions).astype(int)
    decisions = pd.Series(1 - decisions if flip else decisions, index=groups.index)
    scores = pd.Series(1 - np.asarray(scores) if flip else np.asarray(scores), index=groups.index)
    views = {name: groups[name] for name in groups.columns}
    if groups.shape[1] > 1:
        views[" x ".join(groups.columns)] = groups
    report = {"min_group_size": min_group_size, "favourable": favourable, "attributes": {}}
    for name, view in views.items():
        table = _group_table(y_true, decisions, scores, view)
        # Too few rows, or too few of either class for TPR/FPR to mean anything.
        judgeable = (table["rows"] >= min_group_size) & (table["positives"] >= 5) & \
                    (table["rows"] - table["positives"] >= 5)
        groups_out = [{"group": _label(key), "judgeable": bool(judgeable[key]),
                       **{k: (None if pd.isna(v) else round(float(v), 4)) for k, v in row.items()}}
                      for key, row in table.iterrows()]
        report["attributes"][name] = {"groups": groups_out, **_headline(table[judgeable]),
                                      "too_small": [g["group"] for g in groups_out if not g["judgeable"]]}
    worst = {"demographic_parity_ratio": min, "demographic_parity_difference": max,
             "equalized_odds_difference": max}
    # Gates use the declared attributes; the intersection is reported beside them (its groups are
    # small and its gaps noisy, so gating on it is a choice a spec should make explicitly).
    single = [report["attributes"][name] for name in groups.columns]
    for metric, pick in worst.items():
        values = [a[metric] for a in single if not np.isnan(a[metric])]
        report[metric] = float(pick(values)) if values else float("nan")
    return report


def fairness_html(report: dict) -> str:
    sections = [html.paragraph(
        f"Selection rate = share receiving the favourable decision ({report['favourable']} prediction) at the "
        "chosen threshold; TPR/FPR are of that decision. Groups with fewer than "
        f"{report['min_group_size']} rows, or fewer than 5 of either outcome, are flagged and kept "
        "out of the headline ratios."),
        html.table(["headline (worst over the declared attributes; intersection below)", "value"],
                   [(m, report[m]) for m in ("demographic_parity_ratio", "demographic_parity_difference",
                                             "equalized_odds_difference")])]
    for name, attribute in report["attributes"].items():
        sections.append(html.heading(name))
        sections.append(html.table(
            ["group", "rows", "selection rate", "TPR", "FPR", "AUC", "judged"],
            [(g["group"], g["rows"], g["selection_rate"], g["tpr"], g["fpr"], g["auc"],
              html.verdict(g["judgeable"], "yes" if g["judgeable"] else "too small")) for g in attribute["groups"]]))
        sections.append(html.table(["metric", "value"], [(m, attribute[m]) for m in (
            "demographic_parity_ratio", "demographic_parity_difference", "equalized_odds_difference")]))
        judged = [g for g in attribute["groups"] if g["judgeable"]]
        if judged:
            sections.append(svg.bar_chart([g["group"] for g in judged], [g["selection_rate"] for g in judged],
                                          f"Selection rate by {name}"))
    return html.page("Fairness (test split)", *sections)

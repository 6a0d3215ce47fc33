"""Fairness with fairlearn's MetricFrame: per group of each sensitive attribute and of their
intersection, with every rate of the decision favourable to the person (the spec says which).
Groups the small-group rule cannot judge are reported with the reason and kept out of the headline
ratios rather than silently averaged in; each group's rate has a Wilson interval. The rule counts rows
and actual outcomes, never the model's decisions: a group the model almost never favours is the very
thing demographic parity must see, not a group too small to judge."""

from __future__ import annotations

import itertools
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keel.reports import html, svg
from keel.spec.data import DataSpec, TargetSpec


def _auc(y_true, y_score) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) == 2 else float("nan")


def _group_table(y_true, decisions, scores, groups: pd.DataFrame | pd.Series, declared: List) -> pd.DataFrame:
    """One row per group with rows in `groups`, then one per `declared` group it lacks (0 rows): a group
    the test split happens to miss is the smallest group too small to judge, never one that is not there."""
    from fairlearn.metrics import (MetricFrame, count, false_positive_rate, selection_rate,
                                   true_positive_rate)

    decision_frame = MetricFrame(
        metrics={"rows": count, "selection_rate": selection_rate, "tpr": true_positive_rate,
                 "fpr": false_positive_rate},
        y_true=y_true, y_pred=decisions, sensitive_features=groups)
    auc_frame = MetricFrame(metrics={"auc": _auc}, y_true=y_true, y_pred=scores, sensitive_features=groups)
    table = decision_frame.by_group.join(auc_frame.by_group)
    keys = [groups[c] for c in groups] if isinstance(groups, pd.DataFrame) else groups
    table["favourable_outcomes"] = pd.Series(y_true, index=groups.index).groupby(keys).sum()
    table["favourable_decisions"] = pd.Series(decisions, index=groups.index).groupby(keys).sum()
    table = table[table["rows"].fillna(0) > 0]  # MetricFrame lists combinations no row has
    absent = [key for key in declared if key not in table.index]
    if not absent:
        return table
    index = (pd.MultiIndex.from_tuples(absent, names=table.index.names) if isinstance(table.index, pd.MultiIndex)
             else pd.Index(absent, name=table.index.name))
    empty = pd.DataFrame(np.nan, index=index, columns=table.columns)
    empty[["rows", "favourable_outcomes", "favourable_decisions"]] = 0
    return pd.concat([table, empty])


def declared_groups(data: DataSpec) -> Dict[str, List[str]]:
    """Each sensitive attribute's groups as the spec declares them, labelled as keel.data.groups labels rows:
    its categories, or one group per bin (a bin's lower edge lies in it). "(missing)" and values outside the
    bins are groups only when rows hold them."""
    from keel.data.groups import binned_groups

    return {name: (list(attribute.categories) if attribute.bins is None else
                   binned_groups(pd.Series(attribute.bins[:-1], dtype=float), attribute.bins).tolist())
            for name, attribute in data.sensitive_attributes.items()}


def _headline(parity: pd.DataFrame, odds: pd.DataFrame) -> Dict[str, float]:
    """Parity over the groups judged on their decision rates, the equalized-odds gap over those judged on
    their TPR and FPR; each NaN when fewer than two groups can be judged for it (and the ratio when no
    group is ever favoured)."""
    nan = float("nan")
    rates = parity["selection_rate"]
    top = rates.max() if len(parity) >= 2 else nan
    return {
        "demographic_parity_ratio": float(rates.min() / top) if top > 0 else nan,
        "demographic_parity_difference": float(top - rates.min()) if len(parity) >= 2 else nan,
        "equalized_odds_difference": float(max(odds["tpr"].max() - odds["tpr"].min(),
                                               odds["fpr"].max() - odds["fpr"].min())) if len(odds) >= 2 else nan,
    }


def _label(key) -> str:
    return " & ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def group_rule(data: DataSpec) -> dict:
    """The one small-group rule (evaluation, mitigation, gates, reports), stated in words too."""
    rows, each = data.min_group_size, data.min_group_outcomes
    return {"min_rows": rows, "min_each": each,
            "text": f"a group's favourable-decision rate (demographic parity) is judged with at least {rows} rows, "
                    f"its TPR and FPR (equalized odds, mitigation) only with {each} of each actual outcome too; "
                    "the model's decisions never exclude a group; other groups are shown but kept out of the "
                    "ratios and gates they cannot be judged for"}


def shortfalls(counts: Dict[str, Tuple[int, int]]) -> List[str]:
    """`{what: (count, least)}` -> "count what (< least)" for each count below its least, in order."""
    return [f"{count} {what} (< {least})" for what, (count, least) in counts.items() if count < least]


def too_few_rows(rows: int, rule: dict) -> str:
    """Why a group's decision rate cannot be judged under `rule` ('' when it can)."""
    return "; ".join(shortfalls({"rows": (rows, rule["min_rows"])}))


def unjudgeable_reason(rows: int, favourable_outcomes: int, rule: dict) -> str:
    """Why a group's rates given its actual outcome (TPR, FPR) cannot be judged under `rule` ('' when
    they can)."""
    counts = {"rows": (rows, rule["min_rows"]),
              "favourable outcomes": (favourable_outcomes, rule["min_each"]),
              "unfavourable outcomes": (rows - favourable_outcomes, rule["min_each"])}
    return "; ".join(shortfalls(counts))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Tuple[float, float]:
    """Wilson score interval of a proportion: sound for small groups and rates near 0 or 1."""
    if trials == 0:
        return float("nan"), float("nan")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def highest_parity_ratio(small: Tuple[float, float], judged: Sequence[Tuple[float, float]]) -> Optional[float]:
    """The highest parity ratio (least favoured rate / most favoured) the groups can be at, given the
    favourable rate's interval (low, high) of a group too small to judge and of each judged group, on
    whichever side the small group lies: favoured less than the most favoured judged group (its high over
    their low) or more than the least favoured one (their high over its low). Below a gate's minimum, the
    breach holds whatever the true rates. None when neither side can be bounded (no rate above 0)."""
    top = max((low for low, _ in judged), default=0.0)
    bottom = min((high for _, high in judged), default=None)
    ratios = [ratio for ratio in (small[1] / top if top > 0 else None,
                                  bottom / small[0] if bottom is not None and small[0] > 0 else None)
              if ratio is not None]
    return min(ratios) if ratios else None


def lowest_parity_difference(small: Tuple[float, float], judged: Sequence[Tuple[float, float]]) -> Optional[float]:
    """The lowest parity difference (most favoured rate - least favoured) the groups can be at, as
    highest_parity_ratio bounds the ratio, on either side of the judged groups. None without a judged group."""
    if not judged:
        return None
    return max(max(low for low, _ in judged) - small[1], small[0] - min(high for _, high in judged), 0.0)


def favourable_view(y_true, decisions, scores, target: TargetSpec):
    """(outcomes, decisions, scores) turned so that 1 means the favourable one for the person."""
    flip = target.favourable == "negative"
    y_true, decisions = np.asarray(y_true).astype(int), np.asarray(decisions).astype(int)
    scores = np.asarray(scores, dtype=float)
    return (1 - y_true, 1 - decisions, 1 - scores) if flip else (y_true, decisions, scores)


def evaluate_fairness(y_true, decisions, scores, groups: pd.DataFrame, data: DataSpec,
                      confidence: float = 0.95) -> dict:
    """Per-attribute and intersectional group metrics; headline values over judgeable groups.

    `y_true`, `decisions` and `scores` are of the positive class (1 = positive, as the model predicts);
    rates are reported of the decision favourable to the person (`data.target.favourable`), so a
    "selection rate" is e.g. an approval rate, TPR the share of rows with the favourable actual outcome
    given the favourable decision, FPR the share of rows with the unfavourable outcome given it."""
    target = data.target
    if groups.shape[1] and target.favourable is None:
        raise ValueError("fairness needs data.target.favourable (which decision benefits the person)")
    outcomes, favoured, favour_scores = favourable_view(y_true, decisions, scores, target)
    y_true = pd.Series(outcomes, index=groups.index)
    decisions = pd.Series(favoured, index=groups.index)
    scores = pd.Series(favour_scores, index=groups.index)
    views = {name: groups[name] for name in groups.columns}
    declared = declared_groups(data)
    expected = {name: declared.get(name, []) for name in groups.columns}
    if groups.shape[1] > 1:
        views[" x ".join(groups.columns)] = groups
        expected[" x ".join(groups.columns)] = list(itertools.product(*(expected[n] for n in groups.columns)))
    rule = group_rule(data)
    report = {"favourable": target.favourable, "favourable_decision": target.favourable_decision(),
              "orientation": f"selection rate = share given the favourable decision ({target.favourable_decision()}); "
                             f"TPR = share of rows with the favourable outcome ({target.favourable_outcome()}) "
                             "given it; FPR = share of rows with the unfavourable outcome given it",
              "rule": rule, "min_group_size": rule["min_rows"], "confidence": confidence, "attributes": {}}
    for name, view in views.items():
        table = _group_table(y_true, decisions, scores, view, expected[name])
        groups_out = []
        for key, row in table.iterrows():
            rows, chosen = int(row["rows"]), int(row["favourable_decisions"])
            reason = too_few_rows(rows, rule)
            odds_reason = unjudgeable_reason(rows, int(row["favourable_outcomes"]), rule)
            low, high = wilson_interval(chosen, rows, confidence)
            groups_out.append({"group": _label(key), "judgeable": not reason, "reason": reason,
                               "odds_judgeable": not odds_reason, "odds_reason": odds_reason,
                               **{k: (None if pd.isna(v) else round(float(v), 4)) for k, v in row.items()},
                               "selection_rate_low": round(low, 4), "selection_rate_high": round(high, 4)})
        judged = table[[g["judgeable"] for g in groups_out]]
        odds_judged = table[[g["odds_judgeable"] for g in groups_out]]
        report["attributes"][name] = {"groups": groups_out, **_headline(judged, odds_judged),
                                      "judged_groups": len(judged), "odds_judged_groups": len(odds_judged),
                                      "too_small": [g["group"] for g in groups_out if not g["judgeable"]]}
    worst = {"demographic_parity_ratio": min, "demographic_parity_difference": max,
             "equalized_odds_difference": max}
    # Gates use the declared attributes; the intersection is reported beside them (its groups are
    # small and its gaps noisy, so gating on it is a choice a spec should make explicitly).
    single = [report["attributes"][name] for name in groups.columns]
    for metric, pick in worst.items():
        values = [a[metric] for a in single if not np.isnan(a[metric])]
        # One attribute that cannot be judged leaves the worst case unknown: NaN, never the others' best.
        complete = values and len(values) == len(single)
        report[metric] = float(pick(values)) if complete else float("nan")
    return report


def judged_text(group: dict) -> str:
    """What the small-group rule judged of one group, in words (a report from before the rule counted
    outcomes apart has no `odds_judgeable`: its `judgeable` covered both)."""
    if not group["judgeable"]:
        return f"not judged: {group['reason']}"
    if group.get("odds_judgeable", True):
        return "judged"
    return f"parity judged; TPR/FPR not: {group['odds_reason']}"


def interval_text(group: dict) -> str:
    """A group's selection-rate interval as "low-high"; "-" for a group without rows (no rate to bound)."""
    low, high = group["selection_rate_low"], group["selection_rate_high"]
    return "-" if low is None or high is None or math.isnan(low) or math.isnan(high) else f"{low:.3f}-{high:.3f}"


def small_groups(attribute: dict) -> List[str]:
    """The groups of one attribute the small-group rule cannot judge, each with its rows in the test split."""
    return [f"{g['group']} ({int(g['rows'])} rows)" for g in attribute["groups"] if not g["judgeable"]]


def fairness_html(report: dict) -> str:
    sections = [html.paragraph(f"Favourable decision: {report['favourable_decision']}. {report['orientation']}. "
                               f"Rates at the chosen threshold, with {report['confidence']:.0%} Wilson intervals."),
                html.paragraph(f"Small-group rule: {report['rule']['text']}."),
                html.table(["headline (worst over the declared attributes; intersection below)", "value"],
                           [(m, report[m]) for m in ("demographic_parity_ratio", "demographic_parity_difference",
                                                     "equalized_odds_difference")])]
    for name, attribute in report["attributes"].items():
        sections.append(html.heading(name))
        sections.append(html.table(
            ["group", "rows", "favourable decisions", "selection rate (favourable)", "interval",
             "TPR (favourable)", "FPR (favourable)", "AUC", "judged"],
            [(g["group"], g["rows"], g["favourable_decisions"], g["selection_rate"],
              interval_text(g), g["tpr"], g["fpr"], g["auc"],
              html.verdict(g["judgeable"], judged_text(g)))
             for g in attribute["groups"]]))
        sections.append(html.table(["metric", "value"], [(m, attribute[m]) for m in (
            "demographic_parity_ratio", "demographic_parity_difference", "equalized_odds_difference")]))
        judged = [g for g in attribute["groups"] if g["judgeable"]]
        if judged:
            sections.append(svg.bar_chart([g["group"] for g in judged], [g["selection_rate"] for g in judged],
                                          f"Favourable-decision rate by {name}"))
    return html.page("Fairness (test split)", *sections)

"""Fairness while the model runs: per window and per group, the favourable-decision rate and the
parity ratio, and with labels the true-positive rate, under the same small-group rule as
evaluation (`keel.evaluation.fairness.group_rule`). Also how the labels are selected: outcomes
are often known only for approved applications, which biases every labelled metric.

Groups come from the sensitive attributes sent beside the features (logged, never passed to the
model) or from a file keyed by id (demographics held by another team). A row without its group is
counted, never guessed. A headline that cannot be judged (fewer than two judged groups) is NaN, and
a trigger on it is "not judged", never "fair".
"""

from __future__ import annotations

from typing import Dict, List, Optional, TypedDict

import numpy as np
import pandas as pd

from keel.evaluation.fairness import favourable_view, group_rule, shortfalls, too_few_rows, wilson_interval
from keel.spec.data import DataSpec
from keel.spec.production_fairness import GroupsFile, ProductionFairnessSpec

NO_GROUP = "(missing)"


def attributes_sent_with_requests(data: DataSpec, fairness: ProductionFairnessSpec) -> List[str]:
    """The sensitive attributes a scoring request (or a batch row) may carry for fairness monitoring: those
    the model does not see, when the spec says groups come with the requests."""
    if fairness.groups_from != "request":
        return []
    return [name for name in data.sensitive_attributes if name not in data.model_features]


class GroupsError(ValueError):
    """The groups file cannot be read or lacks a column; the message names the file and the key."""


def read_groups(source: GroupsFile, attributes: List[str], data: DataSpec) -> tuple:
    """(groups by entity id, counts): one row per id with each attribute's group as the spec names it
    (bins for a numeric attribute), NO_GROUP where empty or not one of the spec's. Ids given twice keep
    their first row; counts say how many rows were duplicates and how many values were not the spec's."""
    from keel.data.groups import sensitive_groups
    from keel.monitoring.labels import read_csv_as_text

    try:
        raw = read_csv_as_text(source)
    except FileNotFoundError:
        raise GroupsError(f"monitoring.fairness.groups_file.path: no such file {source.path}") from None
    except Exception as error:
        raise GroupsError(f"groups file {source.path}: cannot be read ({type(error).__name__}: {error})") from None
    missing = [c for c in [source.id_column, *attributes] if c not in raw.columns]
    if missing:
        raise GroupsError(f"groups file {source.path}: no column {missing[0]!r} (monitoring.fairness.groups_file"
                          f".id_column or a sensitive attribute); columns found: {list(raw.columns)}")
    raw = raw[raw[source.id_column].notna()]
    first = ~raw[source.id_column].duplicated(keep="first")
    kept = raw[first]
    values = kept[attributes].copy()
    for name in attributes:
        if data.sensitive_attributes[name].bins is not None:
            values[name] = pd.to_numeric(values[name], errors="coerce")
    groups = sensitive_groups(values, data.model_copy(update={"sensitive_attributes": {
        n: data.sensitive_attributes[n] for n in attributes}}))
    unknown = 0
    for name in attributes:
        declared = data.sensitive_attributes[name].categories
        if declared is not None:
            outside = ~groups[name].isin(declared) & (groups[name] != NO_GROUP)
            unknown += int(outside.sum())
            groups.loc[outside, name] = NO_GROUP
    groups.index = kept[source.id_column].astype(str).to_numpy()
    return groups, {"rows": int(len(raw)), "duplicate_ids": int((~first).sum()), "values_not_declared": unknown}


class GroupRates(TypedDict):
    group: str
    rows: int
    favourable_decisions: int
    favourable_rate: float
    favourable_rate_low: float
    favourable_rate_high: float
    judged: bool
    reason: str                  # why the group is not judged ('' when it is)
    labelled_rows: int
    tpr: Optional[float]         # favourable decision given the favourable outcome (None: not judged)
    tpr_reason: str


class AttributeFairness(TypedDict):
    groups: List[GroupRates]
    rows_without_group: int
    parity_ratio: float          # min/max favourable rate over judged groups (NaN: fewer than two)
    tpr_gap: float               # max-min TPR over groups judged on labels (NaN: fewer than two)


class LabelCoverage(TypedDict):
    favourable: Optional[float]     # share of rows given the favourable decision whose outcome is known
    unfavourable: Optional[float]
    selective: bool                 # outcomes known far more often for one decision than the other
    note: str


def _group_rates(group: str, decided: np.ndarray, outcomes: np.ndarray, labelled: np.ndarray, rule: dict) -> GroupRates:
    rows, chosen = len(decided), int(decided.sum())
    reason = too_few_rows(rows, rule)  # never the decisions: a group the model never favours is judged
    low, high = wilson_interval(chosen, rows)
    known = outcomes[labelled]
    favoured_outcomes = int(known.sum())
    tpr_reason = reason or "; ".join(shortfalls({
        "labelled favourable outcomes": (favoured_outcomes, rule["min_each"]),
        "labelled unfavourable outcomes": (len(known) - favoured_outcomes, rule["min_each"])}))
    tpr = None
    if not tpr_reason:
        tpr = round(float(decided[labelled][known == 1].mean()), 4)
    return {"group": group, "rows": rows, "favourable_decisions": chosen,
            "favourable_rate": round(chosen / rows, 4) if rows else float("nan"),
            "favourable_rate_low": round(low, 4), "favourable_rate_high": round(high, 4),
            "judged": not reason, "reason": reason, "labelled_rows": int(labelled.sum()), "tpr": tpr,
            "tpr_reason": tpr_reason}


def window_fairness(decisions: np.ndarray, groups: pd.DataFrame, labels: pd.Series, data: DataSpec) -> Dict[str, AttributeFairness]:
    """Per sensitive attribute (a column of `groups`, NO_GROUP where unknown): each group's rates and
    the headline parity ratio and TPR gap. `decisions` are the model's (1 = positive class), `labels`
    the known outcomes (1 = positive class, <NA> where not known yet), both aligned with `groups`."""
    from keel.evaluation.fairness import declared_groups

    rule = group_rule(data)
    declared = declared_groups(data)
    known = labels.notna().to_numpy()
    outcome_codes = labels.fillna(0).astype(int).to_numpy()
    outcomes, favoured, _ = favourable_view(outcome_codes, decisions, np.zeros(len(decisions)), data.target)
    report: Dict[str, AttributeFairness] = {}
    for name in groups.columns:
        column = groups[name].astype("string").fillna(NO_GROUP).to_numpy(dtype=object)
        # A declared group with no row in the window is listed (0 rows, not judged), as evaluation lists
        # one the test split lacks: a headline judged without it must be seen to be.
        present = set(column) - {NO_GROUP}
        names = sorted(present | {str(g) for g in declared.get(name, [])})
        rates = [_group_rates(g, favoured[column == g], outcomes[column == g], known[column == g], rule)
                 for g in names]
        judged = [r["favourable_rate"] for r in rates if r["judged"]]
        tprs = [r["tpr"] for r in rates if r["tpr"] is not None]
        report[name] = {
            "groups": rates, "rows_without_group": int((column == NO_GROUP).sum()),
            "parity_ratio": round(min(judged) / max(judged), 4) if len(judged) >= 2 and max(judged) > 0 else float("nan"),
            "tpr_gap": round(max(tprs) - min(tprs), 4) if len(tprs) >= 2 else float("nan"),
        }
    return report


def label_coverage(decisions: np.ndarray, labels: pd.Series, data: DataSpec, min_ratio: float = 0.5) -> LabelCoverage:
    """How often the outcome is known per decision. `selective` when one decision's coverage is below
    `min_ratio` times the other's (e.g. outcomes known only for approved applications): labelled
    metrics then describe the approved population, and a model retrained on them learns only from it."""
    _, favoured, _ = favourable_view(np.zeros(len(decisions), dtype=int), decisions, np.zeros(len(decisions)), data.target)
    known = labels.notna().to_numpy()
    shares = {}
    for key, mask in (("favourable", favoured == 1), ("unfavourable", favoured == 0)):
        shares[key] = round(float(known[mask].mean()), 4) if mask.any() else None
    present = [v for v in shares.values() if v is not None]
    selective = len(present) == 2 and max(present) > 0 and min(present) < min_ratio * max(present)
    note = ""
    if selective:
        more = "favourable" if shares["favourable"] > shares["unfavourable"] else "unfavourable"
        note = (f"outcomes are known for {shares['favourable']:.0%} of favourable and {shares['unfavourable']:.0%} "
                f"of unfavourable decisions: labelled metrics describe mostly the {more} decisions, and a model "
                "retrained on these labels learns from them only (selective labels)")
    return {"favourable": shares["favourable"], "unfavourable": shares["unfavourable"], "selective": selective,
            "note": note}


LABEL_COVERAGE = "label_coverage"  # a retrained version's metadata: the coverage of the decision that caused it


def coverage_rows(coverage: Optional[dict]) -> List[tuple]:
    """(fact, detail) rows for a model card and a retraining report: how the outcomes monitoring saw
    were selected by the decisions (none recorded: not a retraining from production)."""
    if not coverage:
        return []
    rows = [(f"Outcomes known for {kind} decisions", "no such decision in the window" if coverage.get(kind) is None
             else f"{coverage[kind]:.0%}") for kind in ("favourable", "unfavourable")]
    rows.append(("Selective labels", coverage["note"] if coverage.get("selective") else
                 "no: outcomes were known about as often for both decisions"))
    return rows


def record_label_coverage(model_name: str, version: int, coverage: dict) -> None:
    """Attach the label coverage of the decision that caused a retraining to the retrained version (its
    model card says so)."""
    from zenml import log_metadata
    from zenml.client import Client

    log_metadata(metadata={LABEL_COVERAGE: dict(coverage)},
                 model_version_id=Client().get_model_version(model_name, version).id)


def fairness_breaches(report: Dict[str, AttributeFairness], min_parity_ratio: Optional[float],
                      max_tpr_gap: Optional[float]) -> tuple:
    """(breaches, not judged, judged on): what crossed a threshold, which thresholds could not be judged,
    and for each judged one the groups it rests on and those left out with why (a pass over some
    groups is never a pass for the others)."""
    breaches, unjudged, judged_on = [], [], []
    for name, attribute in report.items():
        for metric, value, bound, worse in (("parity ratio", attribute["parity_ratio"], min_parity_ratio, np.less),
                                            ("TPR gap", attribute["tpr_gap"], max_tpr_gap, np.greater)):
            if bound is None:
                continue
            if np.isnan(value):
                unjudged.append(f"{name}: {metric} not judged (fewer than two groups judgeable)")
                continue
            if worse(value, bound):
                breaches.append(f"{name}: {metric} {value:.3f} beyond {bound:g}")
            judged_on.append(f"{name}: {metric} {value:.3f} " + _groups_judged(attribute["groups"], metric))
        if min_parity_ratio is not None:
            breaches += _small_group_breaches(name, attribute["groups"], min_parity_ratio)
    return breaches, unjudged, judged_on


def _small_group_breaches(name: str, groups: List[GroupRates], min_parity_ratio: float) -> List[str]:
    """A group too few rows to judge whose favourable rate's interval alone puts the parity ratio below the
    minimum, whatever its true rate, favoured less or more than the judged groups (as evaluation's parity
    gates: keel.evaluation.gates)."""
    from keel.evaluation.fairness import highest_parity_ratio

    judged = [(g["favourable_rate_low"], g["favourable_rate_high"]) for g in groups if g["judged"]]
    found = []
    for group in groups:
        small = (group["favourable_rate_low"], group["favourable_rate_high"])
        if group["judged"] or not group["rows"] or not judged or None in small:
            continue
        highest = highest_parity_ratio(small, judged)
        if highest is not None and highest < min_parity_ratio:
            found.append(f"{name}: parity ratio at most {highest:.3f} beyond {min_parity_ratio:g} on a group too "
                         f"small to judge: {group['group']} ({group['rows']} rows) favoured "
                         f"{group['favourable_rate_low']:.3f}-{group['favourable_rate_high']:.3f}")
    return found


def _groups_judged(groups: List[GroupRates], metric: str) -> str:
    """'judged on a, b; not judged: c (why)' for the parity ratio (rows) or the TPR gap (labelled outcomes)."""
    if metric == "parity ratio":
        judged = [g["group"] for g in groups if g["judged"]]
        left_out = [f"{g['group']} ({g['reason']})" for g in groups if not g["judged"]]
    else:
        judged = [g["group"] for g in groups if g["tpr"] is not None]
        left_out = [f"{g['group']} ({g['tpr_reason']})" for g in groups if g["tpr"] is None]
    return f"judged on {', '.join(judged)}" + (f"; not judged: {', '.join(left_out)}" if left_out else "")


def _window_rows(spec, window: dict, log_url: str, with_inputs: bool) -> pd.DataFrame:
    """The monitored version's predictions made in the judged window, online and/or batch."""
    from datetime import datetime, timedelta

    from keel.monitoring.batch_traffic import includes, read_batch_predictions
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.windows import read_predictions

    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    tick = timedelta(microseconds=1)  # the log reads since < time <= until; the window is [start, end)
    traffic = window.get("traffic", "online")
    frames = []
    if includes(traffic, "online"):
        frames.append(read_predictions(log_url, since=start - tick, until=end - tick, with_inputs=with_inputs,
                                       exclude_entity_prefixes=spec.monitoring.exclude_entity_prefixes))
    if includes(traffic, "batch"):
        sent = attributes_sent_with_requests(spec.data, spec.monitoring.fairness) if with_inputs else []
        batch = read_batch_predictions(monitoring_folder(spec), since=start - tick, attributes=sent)
        frames.append(batch[batch["time"] < pd.Timestamp(end)])
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return rows[rows["model_version"] == window["model_version"]].reset_index(drop=True)


def _window_groups(spec, rows: pd.DataFrame) -> Optional[pd.DataFrame]:
    fairness, data = spec.monitoring.fairness, spec.data
    attributes = list(data.sensitive_attributes)
    if not fairness.watched or not attributes:
        return None
    if fairness.groups_from == "request":
        from keel.data.groups import sensitive_groups

        sent = rows.reindex(columns=attributes)
        return sensitive_groups(sent, data)
    by_id, _ = read_groups(fairness.groups_file, attributes, data)
    ids = rows["entity_id"].astype("string").to_numpy(dtype=object)
    return by_id.reindex(ids).fillna(NO_GROUP).reset_index(drop=True)


def _window_labels(spec, rows: pd.DataFrame) -> Optional[pd.Series]:
    """Each row's known outcome (1 = positive class), joined as the drift's join joins them
    (keel.monitoring.labels.match_labels: never an earlier outcome of the same entity, a retried request
    judged once); <NA> where none is known yet; None without labels."""
    from keel.clock import utc_now
    from keel.monitoring.labels import match_labels, read_labels, usable_labels

    labels_spec = spec.monitoring.labels
    if labels_spec.source is None:
        return None
    labels = read_labels(labels_spec, spec.data.target.positive, spec.data.target.negative)
    usable, _ = usable_labels(labels, {}, utc_now())  # what the drift's join uses (its counts are reported there)
    predictions = pd.DataFrame({"_row": np.arange(len(rows)), "entity_id": rows["entity_id"].astype(str).to_numpy(),
                                "time": rows["time"]})
    matched, _, _ = match_labels(predictions, usable.astype({"entity_id": str}), "entity_id")
    known = pd.Series(pd.NA, index=np.arange(len(rows)), dtype="Int64")
    known[matched["_row"].to_numpy()] = matched["label"].to_numpy()
    return known.reset_index(drop=True)


def window_report(spec, window: dict, log_url: str) -> dict:
    """Fairness per group, label coverage per decision, and referrals of the judged window, with the
    breaches of `monitoring.fairness`'s thresholds. Sections that the spec does not ask for, or that
    have nothing to judge, are None."""
    from keel.serving.reviews import review_rates

    if window.get("start") is None:
        return {"fairness": None, "label_coverage": None, "reviews": None, "breaches": [], "not_judged": [],
                "judged_on": []}
    fairness_spec = spec.monitoring.fairness
    rows = _window_rows(spec, window, log_url, with_inputs=fairness_spec.groups_from == "request")
    decisions = rows["decision"].to_numpy(dtype=np.int64)
    labels = _window_labels(spec, rows)
    known = labels if labels is not None else pd.Series([pd.NA] * len(rows), dtype="Int64")
    groups = _window_groups(spec, rows)
    fairness = window_fairness(decisions, groups, known, spec.data) if groups is not None else None
    breaches, unjudged, judged_on = (fairness_breaches(fairness, fairness_spec.min_parity_ratio,
                                                       fairness_spec.max_tpr_gap)
                                     if fairness is not None else ([], [], []))
    reviews = None
    if spec.decisions.refer_band is not None:
        from datetime import datetime

        reviews = review_rates(log_url, datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]),
                               window["model_version"])
        reviews["refer_rate"] = round(reviews["referred"] / len(rows), 4) if len(rows) else None
    return {"rows": int(len(rows)), "fairness": fairness,
            "label_coverage": label_coverage(decisions, known, spec.data) if labels is not None and len(rows) else None,
            "reviews": reviews, "breaches": breaches, "not_judged": unjudged, "judged_on": judged_on}

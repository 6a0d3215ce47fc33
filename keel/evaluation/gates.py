"""Gates from the spec: every declared bar, its value, threshold and verdict, and the decision.

(No `from __future__ import annotations` here: under it Python 3.11's TypedDict counts `NotRequired`
keys as required.)"""

from typing import TYPE_CHECKING, Dict, List, NotRequired, Optional, Sequence, TypedDict, Union

from keel.reports import html
from keel.spec.metrics import CHAMPION_RELATIVE
from keel.spec.evaluation import FAIRNESS_METRICS, VALUE_METRICS, Gate

if TYPE_CHECKING:
    from keel.evaluation.record import EvaluationRecord


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
    if latency.get("p95_latency_ratio") is not None:  # None: no champion to compare with
        values["p95_latency_ratio"] = latency["p95_latency_ratio"]
    # Without a value matrix nothing is valued (the spec refuses value gates then).
    values.update({k: business[k] for k in VALUE_METRICS if business.get(k) is not None})
    return {k: float(v) for k, v in values.items()}


PROMOTE, REJECT, INCOMPLETE = "promote to staging", "reject", "incomplete"
BUILT_IN_CHECKS = ("champion_challenger", "hostile_inputs")  # judged whatever gates the spec declares


class GateRow(TypedDict):
    """One judged gate (or built-in check): `value` None when there is none; `known` whether it is a
    number the gate could judge. `interval` is the value's trusted bootstrap interval [low, high] when
    the performance report has one; `uncertain` that it crosses a bound (the verdict could go either
    way); `judged_on` "value" or "interval" (evaluation.judge_gates_on). `gate` carries both in words
    (and which groups a fairness gate judged), so every table showing it says so."""

    gate: str
    metric: str
    value: Optional[float]
    known: bool
    passed: bool
    interval: Optional[List[float]]
    uncertain: bool
    judged_on: str


class GateHistoryEntry(TypedDict):
    """One earlier evaluation of a version, as the gates step reads it from the audit trail."""

    time: Optional[str]
    run_name: Optional[str]
    decision: Optional[str]
    gates: str
    changes: str


class Decision(TypedDict):
    """What `decide` returns (the promotion_decision artifact). `decision` is PROMOTE, REJECT or
    INCOMPLETE. The gates step adds `values`, `gate_changes` and `gate_history`;
    `incomplete_decision` adds `failed_step`."""

    gates: List[GateRow]
    failed: List[str]
    missing: List[str]
    complete: bool
    passed: bool
    advisory: bool
    deployable: bool
    decision: str
    failed_step: NotRequired[Optional[str]]
    values: NotRequired[Dict[str, float]]
    gate_changes: NotRequired[List[str]]
    gate_history: NotRequired[List[GateHistoryEntry]]


def _known(value) -> bool:
    return value is not None and value == value and abs(value) != float("inf")


def _groups_text(groups: List[dict], count: str) -> str:
    return ", ".join(f"{g['group']} has {int(g[count] or 0)}" for g in groups)


def _attribute_no_value(metric: str, name: str, attribute: dict, rule: dict) -> Optional[str]:
    """Why one attribute's `metric` is NaN, from its fairness report (None when the report does not say)."""
    groups = attribute.get("groups") or []
    if metric == "equalized_odds_difference":
        judged = [g for g in groups if g.get("odds_judgeable", g.get("judgeable"))]
        if len(judged) < 2:
            others = [g for g in groups if g not in judged]
            return (f"{_how_many(len(judged))} of {name} has at least {rule['min_rows']} test rows and "
                    f"{rule['min_each']} of each actual outcome (TPR and FPR need both): "
                    + ", ".join(f"{g['group']} has {g.get('odds_reason') or g.get('reason')}" for g in others))
        return None
    judged = [g for g in groups if g.get("judgeable")]
    if len(judged) < 2:
        return (f"{_how_many(len(judged))} of {name} has at least {rule['min_rows']} test rows: "
                + _groups_text([g for g in groups if not g.get("judgeable")], "rows"))
    if metric == "demographic_parity_ratio" and not any(g.get("favourable_decisions") for g in judged):
        return f"no row of any group of {name} got the favourable decision: the ratio is 0/0"
    return None


def _how_many(judged: int) -> str:
    return "no group" if judged == 0 else f"only {judged} group"


def no_value_reason(key: str, reports: Optional[dict]) -> Optional[str]:
    """Why gate metric `key` has no value, when the evaluation's `reports` ({"fairness": ...,
    "performance": ..., "comparison": ...}) say (None when they do not): a fairness metric names the
    attribute and what kept it from being judged; a performance metric the report marks undefined says
    why; the champion comparison says why it has none."""
    if not reports:
        return None
    if key == "champion_challenger":  # e.g. too few test rows the champion did not train on
        return (reports.get("comparison") or {}).get("no_value_reason")
    metric, _, attribute = key.partition("[")
    attribute = attribute.rstrip("]")
    performance = reports.get("performance") or {}
    if metric in (performance.get("undefined") or {}):
        return f"undefined: {performance['undefined'][metric]}"
    fairness = reports.get("fairness") or {}
    if metric not in FAIRNESS_METRICS or not fairness.get("attributes") or not fairness.get("rule"):
        return None
    # The headline is the worst over the declared attributes (not their intersection): NaN when any is.
    names = [attribute] if attribute else [n for n in fairness["attributes"] if " x " not in n]
    reasons = [_attribute_no_value(metric, n, fairness["attributes"][n], fairness["rule"])
               for n in names if n in fairness["attributes"] and not _known(fairness["attributes"][n].get(metric))]
    return "; ".join(r for r in reasons if r) or None


def _missing_text(row: GateRow, reports: Optional[dict]) -> str:
    why = no_value_reason(row["metric"], reports)
    return f"{row['gate']}: no value" + (f" ({why})" if why else "")


def trusted_interval(key: str, reports: Optional[dict]) -> tuple[Optional[List[float]], Optional[str]]:
    """The performance report's interval of gate metric `key` when it can be trusted, else None and why
    (None, None: the report has no interval for it, as for fairness, latency and value metrics)."""
    from keel.evaluation.bootstrap import confusion_counts, untrusted_interval_reason

    performance = (reports or {}).get("performance") or {}
    if key not in (performance.get("intervals") or {}):
        return None, None
    rule = ((reports or {}).get("fairness") or {}).get("rule")
    interval = [float(v) for v in performance["intervals"][key]]
    # The first reason that applies: the metric's own, too few rows of a kind (the small-group rule), a
    # resample where it was undefined (the report's, when it keeps them), no finite interval.
    reasons = ((performance.get("undefined") or {}).get(key),
               untrusted_interval_reason(key, confusion_counts(performance), int(rule["min_each"])) if rule
               else "no small-group rule in the evaluation to judge it by",
               (performance.get("interval_unavailable") or {}).get(key),
               None if all(_known(v) for v in interval) else "the bootstrap gave no interval")
    why = next((reason for reason in reasons if reason), None)
    return (None, why) if why else (interval, None)


def _crosses(gate: Gate, interval: Optional[List[float]]) -> bool:
    """Whether the interval has values on both sides of a bound (strictly): the verdict could go either way."""
    if interval is None:
        return False
    low, high = interval
    return any(bound is not None and low < bound < high for bound in (gate.min, gate.max))


def _interval_value(gate: Gate, interval: List[float]) -> float:
    """The bound of the interval a gate judges under `interval`: the side that could fail it."""
    if gate.min is not None and gate.max is not None:  # both bounds: the interval must sit inside them
        return interval[0] if interval[0] < gate.min else interval[1]
    return interval[0] if gate.min is not None else interval[1]


def _interval_words(interval: List[float], confidence: Optional[float]) -> str:
    level = f"{confidence:.0%} " if confidence else ""
    return f"{level}interval {interval[0]:.4f} to {interval[1]:.4f}"


def judge_gate(gate: Gate, value: Optional[float], reports: Optional[dict]) -> GateRow:
    """One declared gate's row: judged on its value or (evaluation.judge_gates_on: interval) on its
    interval's bound; an interval crossing the bound marks it uncertain; a fairness gate names the
    groups it judged and the ones too small to judge."""
    interval, untrusted = trusted_interval(gate.key, reports)
    confidence = ((reports or {}).get("performance") or {}).get("confidence")
    # Which groups a fairness value rests on; a gate with no value says why in its missing text instead.
    notes = [judged_groups_text(gate.key, reports)] if gate.metric in FAIRNESS_METRICS and _known(value) else []
    if gate.metric == "value_uplift_vs_baseline" and ((reports or {}).get("business") or {}).get("declared"):
        from keel.evaluation.business import baseline_text

        # The baseline is the champion when there is one, else deciding negative for everyone: say which.
        champion = (reports.get("comparison") or {}).get("champion")
        notes.append(f"baseline: {baseline_text(reports['business'], champion)}")
    judged, uncertain = value, _crosses(gate, interval)
    crossing = ", which crosses the bound" if uncertain else ""
    if gate.judged_on == "interval":
        judged = _interval_value(gate, interval) if interval is not None and _known(value) else None
        notes.append(f"judged on the {_interval_words(interval, confidence)}{crossing}" if judged is not None else
                     "judged on the interval, which is not available: "
                     + (untrusted or f"{gate.metric} has no bootstrap interval"))
    elif uncertain:
        notes.append(f"the {_interval_words(interval, confidence)} crosses the bound")
    elif untrusted and _known(value):
        notes.append(f"no trusted interval: {untrusted}")
    breaches = small_group_breaches(gate, reports) if _known(judged) else []
    notes = [n for n in notes if n] + breaches + vacuous_calibration_bound(gate, reports)
    return {"gate": gate.describe() + (f" ({'; '.join(notes)})" if notes else ""), "metric": gate.key,
            "value": value, "known": _known(judged), "passed": gate.passes(judged) and not breaches,
            "interval": interval, "uncertain": uncertain, "judged_on": gate.judged_on}


def small_group_breaches(gate: Gate, reports: Optional[dict]) -> List[str]:
    """A parity gate's breach that a group too small to judge shows on its own: its favourable-decision rate's
    interval lies so far below the most favoured judged group's interval, or above the least favoured one's,
    that the ratio is below `min` (or the difference above `max`) whatever the rates within their intervals.
    Such a group is left out of the value, as too small for a point estimate; its evidence of unequal
    treatment is not left out of the verdict."""
    from keel.evaluation.fairness import highest_parity_ratio, lowest_parity_difference

    metric, _, attribute = gate.key.partition("[")
    bound = gate.min if metric == "demographic_parity_ratio" else gate.max
    if metric not in ("demographic_parity_ratio", "demographic_parity_difference") or bound is None:
        return []
    attributes = ((reports or {}).get("fairness") or {}).get("attributes") or {}
    names = [attribute.rstrip("]")] if attribute else [n for n in attributes if " x " not in n]
    found = []
    for name in names:
        groups = (attributes.get(name) or {}).get("groups") or []
        judged = [g for g in groups if g.get("judgeable") and g.get("selection_rate_low") is not None]
        if not judged:
            continue
        intervals = [(g["selection_rate_low"], g["selection_rate_high"]) for g in judged]
        # a breach is named beside the judged group it is set against: the least favoured one for a small
        # group favoured more than every judged group, else the most favoured one
        least = min(judged, key=lambda g: g["selection_rate_high"])
        most = max(judged, key=lambda g: g["selection_rate_low"])
        highest_high = max(high_ for _, high_ in intervals)
        for small in groups:
            low, high = small.get("selection_rate_low"), small.get("selection_rate_high")
            if small.get("judgeable") or not small.get("rows") or low is None or high is None:
                continue
            other = least if low > highest_high else most
            if metric == "demographic_parity_ratio":
                highest = highest_parity_ratio((low, high), intervals)
                beyond, shown = highest is not None and highest < bound, f"at most {highest or 0:.3f}"
            else:
                lowest = lowest_parity_difference((low, high), intervals)
                beyond, shown = lowest is not None and lowest > bound, f"at least {lowest or 0:.3f}"
            if beyond:
                found.append(f"FAIL on a group too small to judge: {name} {small['group']} ({int(small['rows'])} rows) "
                             f"is favoured {low:.3f}-{high:.3f}, {other['group']} "
                             f"{other['selection_rate_low']:.3f}-{other['selection_rate_high']:.3f}: {metric} {shown}")
    return found


def vacuous_calibration_bound(gate: Gate, reports: Optional[dict]) -> List[str]:
    """The note of an expected-calibration-error bound at or above the rarer class's rate on the test split:
    a model scoring every row as the commoner class, with certainty, has exactly that rate as its ECE, so
    the gate cannot tell it from a calibrated one (a 0.05 bound on a 3% outcome). The bound is the spec's
    choice (a loosened gate is one), so the verdict stands; the gate says it is no evidence of calibration
    and which bound would be."""
    if gate.metric != "expected_calibration_error" or gate.max is None:
        return []
    rate = ((reports or {}).get("performance") or {}).get("positive_rate")
    if not _known(rate):
        return []
    rarer = min(rate, 1 - rate)
    if gate.max < rarer:
        return []
    return [f"no evidence of calibration: the bound is not below the rarer class's rate on the test split "
            f"({rarer:.3f}), so scoring every row {0 if rate <= 0.5 else 1} would pass it; a max below {rarer:.3f} would be"]


def judged_groups_text(key: str, reports: Optional[dict]) -> str:
    """For a fairness gate: "judged on A, B; too small: C, D" per attribute that left a group out ('' when
    every group was judged, or the report does not say)."""
    metric, _, attribute = key.partition("[")
    attributes = ((reports or {}).get("fairness") or {}).get("attributes") or {}
    names = [attribute.rstrip("]")] if attribute else [n for n in attributes if " x " not in n]
    flag = "odds_judgeable" if metric == "equalized_odds_difference" else "judgeable"
    texts = []
    for name in names:
        groups = (attributes.get(name) or {}).get("groups") or []
        judged = [str(g["group"]) for g in groups if g.get(flag, g.get("judgeable"))]
        left_out = [str(g["group"]) for g in groups if not g.get(flag, g.get("judgeable"))]
        if left_out:
            prefix = f"{name}: " if not attribute else ""
            texts.append(f"{prefix}judged on {', '.join(judged) or 'no group'}; too small: {', '.join(left_out)}")
    return "; ".join(texts)


def _built_in(gate: str, metric: str, value: Optional[float], known: bool, passed: bool) -> GateRow:
    return {"gate": gate, "metric": metric, "value": value, "known": known, "passed": passed, "interval": None,
            "uncertain": False, "judged_on": "value"}


def decide(gates: List[Gate], values: Dict[str, float], comparison: Optional[dict],
           hostile_inputs_passed: Optional[bool] = True, blocking: bool = True,
           missing_evidence: Sequence[str] = (), reports: Optional[dict] = None) -> Decision:
    """The decision from a complete evidence set only.

    A gate whose value is missing or not a number, a comparison without a result, or any entry of
    `missing_evidence` (a dimension that could not be measured) makes the decision `incomplete`:
    neither staged nor deployable. Otherwise every gate passing promotes to staging; a failing gate
    rejects, unless `blocking` is false: then the failures are advisory (recorded, shown, deployable).
    `reports` ({"fairness": ..., "performance": ...}) explain a missing value and give the intervals
    a gate is marked uncertain by (and judged on, under evaluation.judge_gates_on: interval)."""
    has_champion = bool(comparison and comparison.get("champion"))
    rows: List[GateRow] = [
        judge_gate(g, values.get(g.key), reports) if has_champion or g.metric not in CHAMPION_RELATIVE else
        _built_in(f"{g.describe()} (no champion: not applicable)", g.key, None, True, True)
        for g in gates]
    if has_champion:
        known = _known(comparison.get("ci_low")) and comparison.get("accepted") is not None
        rows.append(_built_in(f"challenger {comparison['mode'].replace('_', '-')} vs {comparison['champion']} "
                              f"(margin {comparison['margin']:g}, {comparison['metric']})",
                              "champion_challenger", comparison.get("ci_low"), known,
                              known and bool(comparison["accepted"])))
    rows.append(_built_in("hostile inputs (out of range, unseen categories) answered", "hostile_inputs",
                          None if hostile_inputs_passed is None else float(hostile_inputs_passed),
                          hostile_inputs_passed is not None, bool(hostile_inputs_passed)))
    missing = [_missing_text(r, reports) for r in rows if not r["known"]] + list(missing_evidence)
    failed = [r["gate"] for r in rows if r["known"] and not r["passed"]]
    if missing:
        outcome = INCOMPLETE
    elif failed and blocking:
        outcome = REJECT
    else:
        outcome = PROMOTE
    return {"gates": rows, "failed": failed, "missing": missing, "complete": not missing,
            "passed": not missing and not failed, "advisory": bool(failed) and not blocking and not missing,
            "deployable": outcome == PROMOTE, "decision": outcome}


def is_deployable(evaluation: Optional["EvaluationRecord"]) -> bool:
    """Only a complete evaluation that promoted (all gates passed, or failures advisory) is deployable;
    a record without these fields (never evaluated, or evaluated before they existed) is not."""
    return evaluation is not None and evaluation.get("decision") == PROMOTE and evaluation.get("complete") is True \
        and evaluation.get("deployable") is True


def describe_decision(decision: Union[Decision, "EvaluationRecord"]) -> str:
    """One line: the decision and why, e.g. "reject (1 gate(s) failed: roc_auc >= 0.75)"."""
    if decision["decision"] == INCOMPLETE:
        where = f" at step {decision['failed_step']}" if decision.get("failed_step") else ""
        return f"{INCOMPLETE}{where}: {'; '.join(decision.get('missing') or []) or 'evaluation did not finish'}"
    failed = f"{len(decision['failed'])} gate(s) failed: {'; '.join(decision['failed'])}"
    if decision.get("advisory"):
        return f"{decision['decision']} (advisory: {failed}; evaluation.blocking is false)"
    if decision["decision"] == REJECT:
        return f"{REJECT} ({failed})"
    declared = [g for g in decision["gates"] if g["metric"] not in BUILT_IN_CHECKS]
    return f"{decision['decision']} ({'all gates pass' if declared else 'no gates declared in the spec'})"


def incomplete_decision(failed_step: Optional[str], error: str) -> Decision:
    """The decision recorded when the evaluation run itself failed or stopped (`failed_step` None: no
    step is known to have failed, e.g. a run still going or whose process died; `error` says which)."""
    return {"gates": [], "failed": [], "missing": [f"step {failed_step} failed: {error}" if failed_step else error],
            "complete": False, "passed": False, "advisory": False, "deployable": False,
            "decision": INCOMPLETE, "failed_step": failed_step}


def result_text(row: GateRow) -> str:
    """A gate row's result in words: "pass", "FAIL", "no value", and ", but uncertain" when its interval
    crosses the bound (rows recorded before intervals were judged have no `uncertain`)."""
    if row.get("known") is False:
        return "no value"
    return ("pass" if row["passed"] else "FAIL") + (", but uncertain" if row.get("uncertain") else "")


def _verdict(row: GateRow):
    if not row.get("known", True):
        return html.verdict(None, "no value")
    if row.get("uncertain"):
        return html.verdict(None if row["passed"] else False, result_text(row))
    return html.verdict(row["passed"])


def gates_table(decision: Decision) -> str:
    return html.table(["gate", "value", "result"],
                      [(r["gate"], "-" if r["value"] is None else r["value"], _verdict(r)) for r in decision["gates"]])


def gates_html(decision: Decision, title: str = "Gates and decision") -> str:
    state = True if decision["passed"] else (None if decision.get("advisory") else False)
    facts = {"decision": html.verdict(state, describe_decision(decision))}
    if decision.get("missing"):
        facts["missing evidence"] = "; ".join(decision["missing"])
    return html.page(title, html.key_values(facts), gates_table(decision))

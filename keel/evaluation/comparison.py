"""Champion/challenger on the same test rows: paired bootstrap of the primary-metric difference
and McNemar's test on the decisions, with its direction. "Better" only when the interval (or, for the
decisions, the test) says so."""

from __future__ import annotations

from typing import Iterable, List, Optional

import numpy as np
import pandas as pd

from keel.evaluation.bootstrap import Sorted, poisson_weights, weighted_metrics
from keel.reports import html
from keel.spec.metrics import improvement
from keel.spec.evaluation import ComparisonSpec
from keel.training.metrics import score


# Champion's training rows: which of the challenger's test rows the champion was fitted on. Its score on
# those rows is in-sample (a seed-7 champion scored 0.745 AUC on its own training rows among a seed-12
# challenger's test split, 0.681 on the rest) and would decide the comparison for it.

ROW_KEY_BY_ID, ROW_KEY_BY_HASH = "id", "hash"


def row_key(id_column: Optional[str], features: Iterable[str], target: str, trained_columns: Iterable[str]) -> dict:
    """How test rows are matched with the champion's training rows: by the spec's id column when there is
    one and the training split holds it, else by a hash of the features and target (an identical row is
    the same evidence). `{"by": None, "why": ...}` when the training split lacks what either needs."""
    available = set(trained_columns)
    if id_column and id_column in available:
        return {"by": ROW_KEY_BY_ID, "columns": [id_column], "text": f"by id column '{id_column}'"}
    columns = sorted({*features, target})
    missing = [c for c in columns if c not in available]
    if missing:
        return {"by": None, "columns": [], "why": f"its training split has no column {', '.join(map(repr, missing))}"
                                                  + (f" nor the id column '{id_column}'" if id_column else "")}
    return {"by": ROW_KEY_BY_HASH, "columns": columns, "text": "by a hash of each row's features and target"}


def _hashable(column: pd.Series) -> pd.Series:
    """Numbers as float64 and everything else as text: the same row hashes alike whether a column was
    read as integers in one split and floats (or categories) in another."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    return column.astype("string").fillna("<missing>")


def row_keys(frame: pd.DataFrame, key: dict) -> np.ndarray:
    """Each row's key under `key` (from `row_key`): its id as text, or a 64-bit hash of its columns."""
    if key["by"] == ROW_KEY_BY_ID:
        return frame[key["columns"][0]].astype("string").fillna("<missing>").to_numpy(dtype=object)
    normalized = pd.DataFrame({c: _hashable(frame[c]) for c in key["columns"]})
    return pd.util.hash_pandas_object(normalized, index=False).to_numpy()


def trained_on(test: pd.DataFrame, trained: dict) -> np.ndarray:
    """Which test rows the champion trained on (a boolean mask); `trained` is {"key": row_key(...),
    "keys": the champion's training rows' keys}."""
    return np.isin(row_keys(test, trained["key"]), trained["keys"])


def rows_compared_text(report: dict) -> str:
    """The rows the comparison rests on, in words (also why it has no value, when it has none)."""
    total, compared = report["test_rows"], report["rows_compared"]
    if not report.get("overlap_checked"):
        text = (f"compared on all {total} test rows: whether any is a row the champion was trained on could not "
                f"be checked ({report['overlap_unchecked']}), so its score on them may be in-sample")
    else:
        text = (f"compared on {compared} of {total} test rows: {report['rows_left_out']} were the champion's "
                f"training rows (matched {report['matched_by']}) and are left out")
    if report.get("no_value_reason"):
        text += f"; no value: {report['no_value_reason']}"
    return text


def no_comparison(metric: str, spec: ComparisonSpec, why: str) -> dict:
    """The comparison's fields when it cannot be judged: no difference, no interval, no verdict (the gate
    has no value and the decision is incomplete)."""
    nan = float("nan")
    return {"metric": metric, "mode": spec.mode, "margin": spec.margin, "confidence": spec.confidence,
            "difference": nan, "ci_low": nan, "ci_high": nan, "better": None, "accepted": None, "mcnemar": None,
            "no_value_reason": why, "rule": _rule(spec)}


def _rule(spec: ComparisonSpec) -> str:
    bound = spec.margin if spec.mode == "superiority" else -spec.margin
    return f"lower bound of the {spec.confidence:.0%} interval of (challenger - champion) must exceed {bound:+g}"


def mcnemar(y, champion_decisions, challenger_decisions, confidence: float) -> dict:
    """McNemar's exact test on the rows where exactly one model decides right, with its direction.

    A p-value alone does not say which model is better: the discordant counts do. The better model's
    decisions are named only when the test is significant at 1 - `confidence`."""
    from scipy.stats import binomtest

    y = np.asarray(y).astype(int)
    champion_right = np.asarray(champion_decisions).astype(int) == y
    challenger_right = np.asarray(challenger_decisions).astype(int) == y
    only_challenger = int((challenger_right & ~champion_right).sum())
    only_champion = int((champion_right & ~challenger_right).sum())
    discordant = only_challenger + only_champion
    p_value = float(binomtest(only_challenger, discordant, 0.5).pvalue) if discordant else 1.0
    leaning = ("challenger" if only_challenger > only_champion else
               "champion" if only_champion > only_challenger else None)
    better = leaning if p_value < 1 - confidence else None
    report = {"only_challenger_correct": only_challenger, "only_champion_correct": only_champion,
              "p_value": p_value, "alpha": round(1 - confidence, 10), "better_decisions": better}
    return {**report, "summary": mcnemar_summary(report)}


def mcnemar_summary(report: dict) -> str:
    """One sentence: the discordant counts, the p-value and which model's decisions are better."""
    counts = (f"challenger right where the champion was wrong on {report['only_challenger_correct']} rows, "
              f"the reverse on {report['only_champion_correct']}")
    if report["better_decisions"]:
        verdict = f"the {report['better_decisions']}'s decisions are better"
    else:
        verdict = "neither model's decisions are significantly better"
    return f"{counts}; McNemar p = {report['p_value']:.4g} (alpha {report['alpha']:g}): {verdict}"


def compare(y_true, champion_scores, challenger_scores, champion_threshold: float,
            challenger_threshold: float, metric: str, spec: ComparisonSpec) -> dict:
    """Difference = challenger - champion (sign flipped for lower-is-better metrics)."""
    y = np.asarray(y_true).astype(int)
    a, b = np.asarray(champion_scores, dtype=float), np.asarray(challenger_scores, dtype=float)
    rng = np.random.default_rng(spec.seed)
    observed = improvement(metric, score(y, a, champion_threshold)[metric], score(y, b, challenger_threshold)[metric])
    ranked_a, ranked_b = Sorted(y, a), Sorted(y, b)
    differences = np.concatenate([
        improvement(metric, weighted_metrics(y, a, champion_threshold, weights, ranked_a)[metric],
                    weighted_metrics(y, b, challenger_threshold, weights, ranked_b)[metric])
        for weights in poisson_weights(rng, spec.bootstrap_samples, len(y))])
    alpha = 1 - spec.confidence
    low, high = np.nanquantile(differences, [alpha / 2, 1 - alpha / 2])
    bound = spec.margin if spec.mode == "superiority" else -spec.margin
    accepted = bool(low > bound)
    return {"metric": metric, "mode": spec.mode, "margin": spec.margin, "confidence": spec.confidence,
            "difference": float(observed), "ci_low": float(low), "ci_high": float(high),
            "better": bool(low > 0), "accepted": accepted,
            "mcnemar": mcnemar(y, a >= champion_threshold, b >= challenger_threshold, spec.confidence),
            "rule": _rule(spec)}


def _rows_line(report: dict) -> str:
    return f"; rows: {rows_compared_text(report)}" if "test_rows" in report else ""  # older reports lack it


def comparison_text(report: dict | None) -> str:
    """The comparison in words, for the model card and the console: the metric's verdict and the
    decisions' (discordant counts and which model decides better), and the test rows it rests on."""
    if not report or not report.get("champion"):
        return "no champion (no production or staging version): judged by the absolute gates only"
    if report.get("mcnemar") is None:
        return f"vs {report['champion']}: {report['metric']} difference: no value{_rows_line(report)}"
    return (f"vs {report['champion']}: {report['metric']} difference (challenger - champion) "
            f"{report['difference']:+.4f}, {report['confidence']:.0%} interval "
            f"[{report['ci_low']:+.4f}, {report['ci_high']:+.4f}], "
            f"{'accepted' if report['accepted'] else 'rejected'} ({report['mode'].replace('_', '-')}); "
            f"decisions: {report['mcnemar']['summary']}{_rows_line(report)}")


def _rows_values(report: dict) -> dict:
    if "test_rows" not in report:
        return {}
    left_out = report["rows_left_out"] if report.get("overlap_checked") else "not checked"
    return {"test rows compared": f"{report['rows_compared']} of {report['test_rows']}",
            "left out: the champion's training rows": left_out, "rows": rows_compared_text(report)}


def comparison_html(report: dict | None) -> str:
    if not report or not report.get("champion"):
        return html.page("Champion / challenger", html.paragraph(
            "No champion (no production or staging version): the candidate is judged by its absolute gates."))
    if report.get("mcnemar") is None:
        return html.page(
            "Champion / challenger (same test rows)",
            html.key_values({"champion": report["champion"], "metric": report["metric"], "mode": report["mode"],
                             "rule": report["rule"], **_rows_values(report),
                             "verdict": html.verdict(None, "no value")}),
            html.paragraph(comparison_text(report)))
    return html.page(
        "Champion / challenger (same test rows)",
        html.key_values({"champion": report["champion"], "metric": report["metric"], "mode": report["mode"],
                         "difference (challenger - champion)": report["difference"],
                         f"{report['confidence']:.0%} interval": f"[{report['ci_low']:.4f}, {report['ci_high']:.4f}]",
                         "rule": report["rule"], **_rows_values(report),
                         "verdict": html.verdict(report["accepted"], "accepted" if report["accepted"] else "rejected"),
                         "decisions: challenger right, champion wrong": report["mcnemar"]["only_challenger_correct"],
                         "decisions: champion right, challenger wrong": report["mcnemar"]["only_champion_correct"],
                         "McNemar p-value (decisions)": report["mcnemar"]["p_value"],
                         "better decisions": report["mcnemar"]["better_decisions"] or "neither (not significant)"}),
        html.paragraph(report["mcnemar"]["summary"]))

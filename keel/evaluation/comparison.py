"""Champion/challenger on the same test rows: paired bootstrap of the primary-metric difference
and McNemar's test on the decisions, with its direction. "Better" only when the interval (or, for the
decisions, the test) says so."""

from __future__ import annotations

import numpy as np

from keel.evaluation.bootstrap import Sorted, poisson_weights, weighted_metrics
from keel.reports import html
from keel.spec.metrics import improvement
from keel.spec.evaluation import ComparisonSpec
from keel.training.metrics import score


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
            "rule": (f"lower bound of the {spec.confidence:.0%} interval of (challenger - champion) "
                     f"must exceed {bound:+g}")}


def comparison_text(report: dict | None) -> str:
    """The comparison in words, for the model card and the console: the metric's verdict and the
    decisions' (discordant counts and which model decides better)."""
    if not report or not report.get("champion"):
        return "no champion (no production or staging version): judged by the absolute gates only"
    return (f"vs {report['champion']}: {report['metric']} difference (challenger - champion) "
            f"{report['difference']:+.4f}, {report['confidence']:.0%} interval "
            f"[{report['ci_low']:+.4f}, {report['ci_high']:+.4f}], "
            f"{'accepted' if report['accepted'] else 'rejected'} ({report['mode'].replace('_', '-')}); "
            f"decisions: {report['mcnemar']['summary']}")


def comparison_html(report: dict | None) -> str:
    if not report or not report.get("champion"):
        return html.page("Champion / challenger", html.paragraph(
            "No champion (no production or staging version): the candidate is judged by its absolute gates."))
    return html.page(
        "Champion / challenger (same test rows)",
        html.key_values({"champion": report["champion"], "metric": report["metric"], "mode": report["mode"],
                         "difference (challenger - champion)": report["difference"],
                         f"{report['confidence']:.0%} interval": f"[{report['ci_low']:.4f}, {report['ci_high']:.4f}]",
                         "rule": report["rule"],
                         "verdict": html.verdict(report["accepted"], "accepted" if report["accepted"] else "rejected"),
                         "decisions: challenger right, champion wrong": report["mcnemar"]["only_challenger_correct"],
                         "decisions: champion right, challenger wrong": report["mcnemar"]["only_champion_correct"],
                         "McNemar p-value (decisions)": report["mcnemar"]["p_value"],
                         "better decisions": report["mcnemar"]["better_decisions"] or "neither (not significant)"}),
        html.paragraph(report["mcnemar"]["summary"]))

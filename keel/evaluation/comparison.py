"""Champion/challenger on the same test rows: paired bootstrap of the primary-metric difference
and McNemar's test on the decisions. "Better" only when the interval says so."""

from __future__ import annotations

import numpy as np

from keel.evaluation.bootstrap import Sorted, poisson_weights, weighted_metrics
from keel.reports import html
from keel.spec.models import LOWER_IS_BETTER, ComparisonSpec
from keel.training.metrics import score


def _mcnemar(y, champion_decisions, challenger_decisions) -> dict:
    from scipy.stats import binomtest

    champion_right = champion_decisions == y
    challenger_right = challenger_decisions == y
    only_challenger = int((challenger_right & ~champion_right).sum())
    only_champion = int((champion_right & ~challenger_right).sum())
    discordant = only_challenger + only_champion
    p_value = binomtest(only_challenger, discordant, 0.5).pvalue if discordant else 1.0
    return {"only_challenger_correct": only_challenger, "only_champion_correct": only_champion,
            "p_value": float(p_value)}


def compare(y_true, champion_scores, challenger_scores, champion_threshold: float,
            challenger_threshold: float, metric: str, spec: ComparisonSpec) -> dict:
    """Difference = challenger - champion (sign flipped for lower-is-better metrics)."""
    y = np.asarray(y_true).astype(int)
    a, b = np.asarray(champion_scores, dtype=float), np.asarray(challenger_scores, dtype=float)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    rng = np.random.default_rng(spec.seed)
    observed = sign * (score(y, b, challenger_threshold)[metric] - score(y, a, champion_threshold)[metric])
    ranked_a, ranked_b = Sorted(y, a), Sorted(y, b)
    differences = np.concatenate([
        sign * (weighted_metrics(y, b, challenger_threshold, weights, ranked_b)[metric]
                - weighted_metrics(y, a, champion_threshold, weights, ranked_a)[metric])
        for weights in poisson_weights(rng, spec.bootstrap_samples, len(y))])
    alpha = 1 - spec.confidence
    low, high = np.nanquantile(differences, [alpha / 2, 1 - alpha / 2])
    bound = spec.margin if spec.mode == "superiority" else -spec.margin
    accepted = bool(low > bound)
    return {"metric": metric, "mode": spec.mode, "margin": spec.margin, "confidence": spec.confidence,
            "difference": float(observed), "ci_low": float(low), "ci_high": float(high),
            "better": bool(low > 0), "accepted": accepted,
            "mcnemar": _mcnemar(y, a >= champion_threshold, b >= challenger_threshold),
            "rule": (f"lower bound of the {spec.confidence:.0%} interval of (challenger - champion) "
                     f"must exceed {bound:+g}")}


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
                         "McNemar p-value (decisions)": report["mcnemar"]["p_value"]}))

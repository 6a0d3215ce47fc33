"""Champion/challenger on the same test rows: paired bootstrap of the primary-metric difference
and McNemar's test on the decisions. "Better" only when the interval says so."""

from __future__ import annotations

import numpy as np

from keel.reports import html
from keel.spec.models import LOWER_IS_BETTER, ComparisonSpec
from keel.training.metrics import score


def _weighted_auc(order, y_sorted, ties, weights) -> np.ndarray:
    """ROC AUC for many bootstrap weight vectors at once (rows of `weights`), scores pre-sorted."""
    w = weights[:, order]
    pos, neg = w * y_sorted, w * (1 - y_sorted)
    pos_tie = np.stack([np.bincount(ties, p) for p in pos])
    neg_tie = np.stack([np.bincount(ties, n) for n in neg])
    below = np.cumsum(neg_tie, axis=1) - neg_tie
    numerator = (pos_tie * (below + 0.5 * neg_tie)).sum(axis=1)
    return numerator / (pos.sum(axis=1) * neg.sum(axis=1))


def _paired_bootstrap_auc(y, champion, challenger, samples: int, rng) -> np.ndarray:
    """Challenger AUC minus champion AUC on the same Poisson-bootstrap resamples (weights ~ Poisson(1),
    the large-sample equivalent of resampling rows), 50 resamples at a time."""
    n = len(y)
    prepared = []
    for scores in (champion, challenger):
        order = np.argsort(scores, kind="stable")
        _, ties = np.unique(scores[order], return_inverse=True)
        prepared.append((order, y[order].astype(float), ties))
    differences = []
    for chunk in np.array_split(np.arange(samples), max(1, samples // 50)):
        weights = rng.poisson(1.0, size=(len(chunk), n)).astype(float)
        auc = [_weighted_auc(order, y_sorted, ties, weights) for order, y_sorted, ties in prepared]
        differences.append(auc[1] - auc[0])
    return np.concatenate(differences)


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
    n = len(y)
    observed = sign * (score(y, b, challenger_threshold)[metric] - score(y, a, champion_threshold)[metric])
    if metric == "roc_auc":
        differences = _paired_bootstrap_auc(y, a, b, spec.bootstrap_samples, rng)
    else:
        differences = []
        for _ in range(spec.bootstrap_samples):
            rows = rng.integers(0, n, n)
            differences.append(sign * (score(y[rows], b[rows], challenger_threshold)[metric]
                                       - score(y[rows], a[rows], champion_threshold)[metric]))
        differences = np.asarray(differences)
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

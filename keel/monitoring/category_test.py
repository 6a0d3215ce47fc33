"""Did a categorical feature's distribution change? A two-sample test of category counts.

Pearson's chi-square on the 2 x k table of the window's and the reference's counts: both are samples,
unlike a goodness-of-fit test that takes the reference's proportions as exact (whylogs' ChiSquare, which
also rounds expected counts down and gives p = 0 for any category the reference lacks: a feature with
150 levels drifted on rows drawn from the training distribution itself). Categories expected fewer than
MIN_EXPECTED times in either sample are pooled into one cell first (Cochran's rule), so that sparse
levels neither fake drift nor make the statistic's distribution unlike chi-square's.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

MIN_EXPECTED = 5.0  # the usual floor for the chi-square approximation of each cell


def _pooled_cells(window: np.ndarray, reference: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The counts with every category expected fewer than MIN_EXPECTED times (in the smaller sample)
    pooled into one cell, itself merged with the next rarest category until it is expected enough."""
    total = window + reference
    smaller = min(window.sum(), reference.sum()) / total.sum()
    order = np.argsort(total, kind="stable")
    rare = order[total[order] * smaller < MIN_EXPECTED]
    common = order[total[order] * smaller >= MIN_EXPECTED]
    if len(rare) == 0:
        return window, reference
    pooled_window, pooled_reference = window[rare].sum(), reference[rare].sum()
    while len(common) and (pooled_window + pooled_reference) * smaller < MIN_EXPECTED:
        pooled_window, pooled_reference = pooled_window + window[common[0]], pooled_reference + reference[common[0]]
        common = common[1:]
    return (np.append(window[common], pooled_window), np.append(reference[common], pooled_reference))


def category_test(window: Dict[str, int], reference: Dict[str, int]) -> Optional[Tuple[float, float, int]]:
    """(chi-square statistic, p-value, cells tested) of the hypothesis that both counts come from one
    distribution; None when fewer than two cells remain to compare (too few rows for the categories)."""
    from scipy.stats import chi2_contingency

    levels = sorted(set(window) | set(reference))
    counts_w = np.array([window.get(level, 0) for level in levels], dtype=float)
    counts_r = np.array([reference.get(level, 0) for level in levels], dtype=float)
    if counts_w.sum() <= 0 or counts_r.sum() <= 0:
        return None
    counts_w, counts_r = _pooled_cells(counts_w, counts_r)
    if len(counts_w) < 2:
        return None
    # Pearson's statistic as it is (no continuity correction, which scipy applies to a 2 x 2 table only).
    tested = chi2_contingency(np.vstack([counts_w, counts_r]), correction=False)
    return float(tested.statistic), float(tested.pvalue), len(counts_w)

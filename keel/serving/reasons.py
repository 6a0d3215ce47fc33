"""Principal reasons of a decision: the features that pushed the score toward it the most.

A declined applicant is owed the principal reasons (US ECOA / Regulation B adverse-action notices;
the EU AI Act's transparency duties). They come from the model's own additive contributions, in
log-odds: LightGBM's `pred_contrib` (exact TreeSHAP values), or a logistic regression's linear terms
(relative to the training mean of each scaled numeric and to "no category" of each one-hot block).
A feature's contribution is the sum over the columns it was encoded into (value and missing
indicator; one column per category). A sensitive attribute or a flagged proxy is never a reason.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, TypedDict

import numpy as np

from keel.serving.fast_path import RowScorer


class Reason(TypedDict):
    feature: str
    statement: str
    contribution: float  # log-odds pushed toward the decision


def encoded_owners(scorer: RowScorer) -> List[str]:
    """The feature each encoded column comes from, in the encoder's column order."""
    numeric = scorer.numeric
    blocks = {
        "numeric": list(numeric.columns) + [numeric.columns[i] for i in numeric.indicator_of],
        "categorical": [column for column, categories in zip(scorer.categorical.columns, scorer.categorical.categories)
                        for _ in categories],
    }
    return [owner for name in scorer.order for owner in blocks[name]]


def column_contributions(estimator, matrix: np.ndarray) -> Optional[np.ndarray]:
    """Additive log-odds contributions per encoded column (rows x columns), or None for a model that
    has none (then no reasons are given, and the answer says so)."""
    booster = getattr(estimator, "booster_", None)
    if booster is not None and getattr(estimator, "n_classes_", 2) == 2:
        # One thread, as the fast path predicts: OpenMP's team for a few rows costs tens of ms on busy cores.
        contributions = booster.predict(matrix, pred_contrib=True, num_threads=1)
        return np.asarray(contributions)[:, :-1]  # the last column is the bias
    coefficients = getattr(estimator, "coef_", None)
    if coefficients is not None and np.asarray(coefficients).shape[0] == 1:
        return matrix * np.asarray(coefficients)[0]
    return None


def feature_contributions(columns: np.ndarray, owners: Sequence[str], features: Sequence[str]) -> np.ndarray:
    """Column contributions summed per feature: rows x `features`."""
    position = {name: index for index, name in enumerate(features)}
    owner_index = np.array([position[o] for o in owners], dtype=np.int64)
    summed = np.zeros((columns.shape[0], len(features)))
    np.add.at(summed.T, owner_index, columns.T)
    return summed


def principal_reasons(contributions: np.ndarray, features: Sequence[str], toward_positive: bool,
                      statements: Dict[str, str], excluded: Sequence[str], count: int) -> List[Reason]:
    """The `count` features of one row that pushed its score most toward the decision (toward the positive
    class when `toward_positive`), never one of `excluded`; only features that pushed that way."""
    sign = 1.0 if toward_positive else -1.0
    pushes = sign * np.asarray(contributions, dtype=float)
    skip = set(excluded)
    ranked = sorted((i for i, name in enumerate(features) if name not in skip and pushes[i] > 0),
                    key=lambda i: (-pushes[i], features[i]))
    return [{"feature": features[i], "statement": statements.get(features[i], features[i]),
             "contribution": round(float(pushes[i]), 6)} for i in ranked[:count]]

"""The explanation of one logged prediction, by the model version that answered it; and the exact
additive explanation behind `/explain` and `run.py explain`: base value + contributions = raw output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class AdditiveExplanation:
    """Per row: `base_value + contributions.sum(axis=1) == raw_output` (log-odds of the positive class)."""

    contributions: pd.DataFrame  # rows x the spec's model features
    base_value: np.ndarray
    raw_output: np.ndarray


def _is_tree_booster(estimator) -> bool:
    return hasattr(estimator, "booster_")


def background_rows(validation: pd.DataFrame, features: Sequence[str], rows: int) -> pd.DataFrame:
    """The rows a version's decisions are explained against (governance.explanation_background_rows):
    the first `rows` of its validation split, its `features`, as the service's bundle holds them."""
    return validation[list(features)].head(rows)


def explain_additively(model, rows: pd.DataFrame, data, background: Optional[pd.DataFrame] = None
                       ) -> AdditiveExplanation:
    """Contributions (log-odds) of each spec feature, the base value they start from and the raw output
    they add up to, for a fitted `Pipeline(features -> model)` of a family keel trains.

    LightGBM: its own TreeSHAP (`pred_contrib`), whose last column is the expected raw score. Linear:
    coef * (x - mean of the background), from intercept + coef . mean (what SHAP's LinearExplainer
    computes, but over the whole background, where SHAP silently samples 100 rows). No background:
    the rows themselves, as `keel.evaluation.explainability.shap_contributions` does. Encoded columns
    (one-hot, missing indicators) are summed back to the feature they encode."""
    from keel.evaluation.explainability import original_feature

    encoder, estimator = model.named_steps["features"], model.named_steps["model"]
    x = np.asarray(encoder.transform(rows[data.model_features]), dtype=float)
    if _is_tree_booster(estimator):
        contributions_with_base = np.asarray(estimator.predict(x, pred_contrib=True), dtype=float)
        encoded, base = contributions_with_base[:, :-1], contributions_with_base[:, -1]
        raw = np.asarray(estimator.predict(x, raw_score=True), dtype=float)
    elif hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        reference = np.asarray(encoder.transform((background if background is not None else rows)[data.model_features]),
                               dtype=float)
        coefficients, mean = np.ravel(estimator.coef_), reference.mean(axis=0)
        encoded = (x - mean) * coefficients
        base = np.full(len(x), float(np.ravel(estimator.intercept_)[0] + coefficients @ mean))
        raw = np.asarray(estimator.decision_function(x), dtype=float)
    else:
        raise TypeError(f"no additive explanation for a {type(estimator).__name__}: keel explains LightGBM "
                        f"and linear models")
    frame = pd.DataFrame(encoded, columns=encoder.get_feature_names_out(), index=rows.index)
    owners = [original_feature(c, data.model_features) for c in frame.columns]
    contributions = frame.T.groupby(owners, sort=False).sum().T[data.model_features]
    return AdditiveExplanation(contributions, base, raw)


def logged_inputs_frame(inputs: dict, data, columns: Optional[list] = None) -> pd.DataFrame:
    """The logged record as the one-row frame the scorer built (numbers as floats, None as missing).
    `columns`: what the model reads (its `feature_names_in_`), e.g. the model features plus a sensitive
    attribute a mitigated version decides with; default: the spec's model features."""
    features = list(columns) if columns is not None else data.model_features
    frame = pd.DataFrame([{name: inputs.get(name) for name in features}], columns=features)
    numeric = [n for n in features if n in data.features and data.features[n].type != "categorical"]
    frame[numeric] = frame[numeric].astype(float)
    return frame


def explain_logged(row: dict, model, threshold: Optional[float], data, background: Optional[pd.DataFrame],
                   top: int) -> dict:
    """Contributions (log-odds) of the logged inputs with the base value they start from:
    base + contributions (top ones + all other features) = the model's raw output. The score is
    recomputed to show the model explained is the one that answered."""
    from keel.training.fit import predict_scores

    frame = logged_inputs_frame(row["inputs"], data, getattr(model, "feature_names_in_", None))
    explanation = explain_additively(model, frame, data, background)
    contributions = explanation.contributions.iloc[0]
    ranked = contributions.reindex(contributions.abs().sort_values(ascending=False).index)
    score = float(predict_scores(model, frame)[0])
    return {"request_id": row["request_id"], "row": row["row"], "entity_id": row["entity_id"],
            "model_version": int(row["model_version"]), "logged_score": float(row["score"]), "recomputed_score": score,
            "same_score": bool(abs(score - float(row["score"])) <= 1e-6), "decision": int(row["decision"]),
            "threshold": threshold,
            "base_value": float(explanation.base_value[0]), "raw_output": float(explanation.raw_output[0]),
            "contributions": [(name, float(value), row["inputs"].get(name)) for name, value in ranked.head(top).items()],
            "other_features": float(ranked.iloc[top:].sum()) if len(ranked) > top else 0.0,
            "finite": bool(np.isfinite(ranked.to_numpy()).all())}

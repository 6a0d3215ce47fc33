"""The explanation of one logged prediction, by the model version that answered it."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd


def logged_inputs_frame(inputs: dict, data) -> pd.DataFrame:
    """The logged record as the one-row frame the scorer built (numbers as floats, None as missing)."""
    features = data.model_features
    frame = pd.DataFrame([{name: inputs.get(name) for name in features}], columns=features)
    numeric = [n for n in features if data.features[n].type != "categorical"]
    frame[numeric] = frame[numeric].astype(float)
    return frame


def explain_logged(row: dict, model, threshold: Optional[float], data, background: Optional[pd.DataFrame],
                   top: int) -> dict:
    """SHAP contributions (log-odds) of the logged inputs; the score is recomputed to show the model
    explained is the one that answered."""
    from keel.evaluation.explainability import shap_contributions
    from keel.training.fit import predict_scores

    frame = logged_inputs_frame(row["inputs"], data)
    contributions = shap_contributions(model, frame, data, background).iloc[0]
    ranked = contributions.reindex(contributions.abs().sort_values(ascending=False).index)
    score = float(predict_scores(model, frame)[0])
    return {"request_id": row["request_id"], "row": row["row"], "entity_id": row["entity_id"],
            "model_version": int(row["model_version"]), "logged_score": float(row["score"]), "recomputed_score": score,
            "same_score": bool(abs(score - float(row["score"])) <= 1e-6), "decision": int(row["decision"]),
            "threshold": threshold,
            "contributions": [(name, float(value), row["inputs"].get(name)) for name, value in ranked.head(top).items()],
            "other_features": float(ranked.iloc[top:].sum()) if len(ranked) > top else 0.0,
            "finite": bool(np.isfinite(ranked.to_numpy()).all())}

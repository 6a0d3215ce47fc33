"""Reference profiles stored with each model version: its training data, and its own predictions
on its held-out test split (what the served scores and decisions are compared with)."""

from __future__ import annotations

from typing import Tuple

import pandas as pd

from keel.monitoring.profiles import Profile, profile_frame
from keel.spec.models import Spec


def reference_profiles(model, train: pd.DataFrame, test: pd.DataFrame, threshold: float,
                       spec: Spec) -> Tuple[Profile, Profile, dict]:
    """(training-data profile with the target, test-prediction profile, reference summary: threshold,
    decision rate, training label rate, test metrics at the threshold)."""
    from keel.training.fit import predict_scores
    from keel.training.metrics import score

    features = spec.data.model_features
    target = spec.data.target
    labels_train = (train[target.column] == target.positive).astype(int)
    labels_test = (test[target.column] == target.positive).astype(int)
    profiling = spec.monitoring.profiling
    options = {"workers": profiling.workers, "chunk_rows": profiling.chunk_rows,
               "parallel_from_rows": profiling.parallel_from_rows}
    data_profile = profile_frame(train[features].assign(**{target.column: labels_train}).reset_index(drop=True),
                                 **options)
    scores = predict_scores(model, test[features])
    decisions = (scores >= threshold).astype(int)
    prediction_profile = profile_frame(pd.DataFrame({"score": scores, "decision": decisions}), **options)
    summary = {"threshold": float(threshold), "decision_rate": float(decisions.mean()),
               "label_rate": float(labels_train.mean()), "label_rows": int(len(labels_train)),
               "test_rows": int(len(test)), "metrics": {k: float(v) for k, v in score(labels_test, scores, threshold).items()}}
    return data_profile, prediction_profile, summary

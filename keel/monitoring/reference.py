"""Reference profiles stored with each model version: its training data, and its own predictions
on its held-out test split (what the served scores and decisions are compared with)."""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from keel.monitoring.profiles import Profile, profile_frame
from keel.spec.models import Spec


class ImplausibleReference(ValueError):
    """A reference value monitoring would judge against cannot be right (a NaN metric, a label rate
    of 0 or 1, a target that is not the encoded 0/1): drift against it would be meaningless."""


def encoded_labels(frame: pd.DataFrame, column: str, where: str) -> np.ndarray:
    """The target as validation encoded it (`keel.data.schema.encode_target`: 1 = the spec's
    positive class), used as it is. Comparing it with the class's own spelling again gave a label
    rate of 0 for text classes and inverted every label for positive=0 / negative=1."""
    values = frame[column]
    if values.isna().any() or not set(pd.unique(values)) <= {0, 1}:
        found = ", ".join(map(repr, pd.unique(values)[:5]))
        raise ImplausibleReference(f"the {where} target column {column!r} is not the encoded 0/1 of validation "
                                   f"(found {found}): refusing to compute a reference label rate from it")
    return values.to_numpy(dtype=np.int64)


# A stored reference is judged by monitoring; one made before the target was encoded once (text
# classes, positive=0) is wrong, and the way out is to rebuild it.
REBUILD = "; evaluate the model version again to rebuild its reference (python run.py evaluate --model-version N)"


def check_label_rate(rate: Optional[float], rows: int, where: str = "reference") -> None:
    """A label rate a model was trained on lies strictly between 0 and 1 (both classes were present)."""
    if rate is None:
        return
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0.0 < rate < 1.0) or rows <= 0:
        raise ImplausibleReference(f"the {where} label rate is {rate!r} over {rows} rows: a trained model's "
                                   "training data holds both classes, so it lies strictly between 0 and 1"
                                   + (REBUILD if where == "reference" else ""))


def check_metrics(metrics: Dict[str, float], where: str = "reference") -> None:
    """Every reference metric is a finite number (NaN: e.g. ROC AUC on a test split of one class)."""
    broken = sorted(name for name, value in metrics.items() if value is None or not math.isfinite(float(value)))
    if broken:
        raise ImplausibleReference(f"the {where} metric(s) {', '.join(broken)} are "
                                   f"{', '.join(repr(metrics[name]) for name in broken)}: performance drift "
                                   "could never be judged against them (does the test split hold both classes?)"
                                   + (REBUILD if where == "reference" else ""))


def reference_profiles(model, train: pd.DataFrame, test: pd.DataFrame, threshold: float,
                       spec: Spec) -> Tuple[Profile, Profile, dict]:
    """(training-data profile with the target, test-prediction profile, reference summary: threshold,
    decision rate, training label rate, test metrics at the threshold). Raises `ImplausibleReference`
    rather than store a reference that monitoring could not judge against."""
    from keel.training.fit import predict_scores
    from keel.training.metrics import score

    features = spec.data.model_features
    target = spec.data.target
    labels_train = encoded_labels(train, target.column, "training")
    labels_test = encoded_labels(test, target.column, "test")
    label_rate = float(labels_train.mean()) if len(labels_train) else float("nan")
    check_label_rate(label_rate, len(labels_train), "training")
    profiling = spec.monitoring.profiling
    options = {"workers": profiling.workers, "chunk_rows": profiling.chunk_rows,
               "parallel_from_rows": profiling.parallel_from_rows}
    data_profile = profile_frame(train[features].assign(**{target.column: labels_train}).reset_index(drop=True),
                                 **options)
    scores = predict_scores(model, test)  # the model's own inputs (a mitigated one adds its attribute)
    decisions = (scores >= threshold).astype(int)
    metrics = {k: float(v) for k, v in score(labels_test, scores, threshold).items()}
    check_metrics(metrics, "test")
    prediction_profile = profile_frame(pd.DataFrame({"score": scores, "decision": decisions}), **options)
    summary = {"threshold": float(threshold), "decision_rate": float(decisions.mean()),
               "label_rate": label_rate, "label_rows": int(len(labels_train)),
               "test_rows": int(len(test)), "metrics": metrics}
    return data_profile, prediction_profile, summary

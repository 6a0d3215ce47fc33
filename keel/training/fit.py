"""Fit the baseline and the searched candidate on the shared feature pipeline; select one.

Each fitted model is returned as one scikit-learn `Pipeline(features -> model)`, so what is
evaluated, registered and served is exactly one object.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from dataclasses import dataclass
from typing import Dict, List, Tuple

import pandas as pd

from keel.spec.metrics import higher_is_better
from keel.spec.data import DataSpec
from keel.spec.training import TrainingSpec
from keel.training.estimators import lightgbm_trial_params, make_lightgbm, make_logistic_regression
from keel.training.metrics import score
from keel.training.search import Trial, run_search, sample_parameters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FittedModel:
    name: str
    pipeline: object
    params: Dict[str, object]
    validation_metrics: Dict[str, float]


def _compose(preprocessor, model):
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", preprocessor), ("model", model)])


def predict_scores(model, frame: pd.DataFrame):
    """Probability of the positive class for each row; the model picks the columns it was fit on."""
    return model.predict_proba(frame[list(model.feature_names_in_)])[:, 1]


def fit_baseline(preprocessor, train: pd.DataFrame, validation: pd.DataFrame, data: DataSpec,
                 training: TrainingSpec) -> FittedModel:
    model = make_logistic_regression(training.baseline, training.seed)
    model.fit(preprocessor.transform(train[data.model_features]), train[data.target.column])
    pipeline = _compose(preprocessor, model)
    metrics = score(validation[data.target.column], predict_scores(pipeline, validation))
    return FittedModel("logistic_regression", pipeline, training.baseline.model_dump(), metrics)


def fit_candidate(preprocessor, train: pd.DataFrame, validation: pd.DataFrame, data: DataSpec,
                  training: TrainingSpec) -> tuple[FittedModel, List[Trial]]:
    """Random search over the LightGBM space; the best trial on the primary metric wins."""
    x_train = preprocessor.transform(train[data.model_features])
    x_validation = preprocessor.transform(validation[data.model_features])
    y_train, y_validation = train[data.target.column], validation[data.target.column]
    parameter_sets = sample_parameters(training.candidate, training.seed)
    metric = training.primary_metric

    def evaluate(sampled):
        params = lightgbm_trial_params(training.candidate, sampled)
        model = make_lightgbm(params, training.seed, training.threads).fit(x_train, y_train)
        value = score(y_validation, model.predict_proba(x_validation)[:, 1])[metric]
        logger.info("trial %d/%d: %s=%.4f %s", len(trials_seen) + 1, len(parameter_sets), metric,
                    value, sampled)
        trials_seen.append(value)
        return value, (params, model)

    trials_seen: List[float] = []
    trials, (params, model) = run_search(parameter_sets, evaluate, metric)
    pipeline = _compose(preprocessor, model)
    metrics = score(y_validation, predict_scores(pipeline, validation))
    return FittedModel("lightgbm", pipeline, params, metrics), trials


def choose_summary(summaries: List[dict], metric: str) -> dict:
    """Pick the summary with the best validation `metric`; the first listed wins ties.

    Each summary is {name, params, validation_metrics}; the result records all of them.
    """
    reverse = higher_is_better(metric)
    best = sorted(summaries, key=lambda s: s["validation_metrics"][metric], reverse=reverse)[0]
    return {"chosen": best["name"], "primary_metric": metric, "params": best["params"],
            "validation_metrics": best["validation_metrics"],
            "compared": {s["name"]: s["validation_metrics"][metric] for s in summaries}}


def model_hash(pipeline) -> str:
    """SHA-256 of the pickled pipeline, pickled without pickle's memo (fast mode): the bytes depend on the
    model's contents only, not on which of its equal objects share memory. That sharing differs between a
    model fitted in the process and one loaded from the artifact store, so a version registered from a
    cached training run recorded another hash than the same model fitted fresh, and `reproduce` called
    it non-determinism. A model holding a reference cycle (none of keel's) is hashed with the memo."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True
    try:
        pickler.dump(pipeline)
    except ValueError:  # fast mode refuses cyclic objects
        return memo_model_hash(pipeline)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


# A rebuilt model's fact (never recorded): its hash as keel recorded it before `model_hash`.
MEMO_MODEL_SHA256 = "model_sha256_with_pickle_memo"


def memo_model_hash(pipeline) -> str:
    """SHA-256 of the pipeline pickled as usual (with the memo): the model hash keel recorded before
    `model_hash`, kept so that `reproduce` recognises the versions registered then."""
    return hashlib.sha256(pickle.dumps(pipeline, protocol=5)).hexdigest()


def model_size(pipeline) -> int:
    """Serialized size in bytes."""
    return len(pickle.dumps(pipeline, protocol=5))


def artifact_boundary(value):
    """What a pipeline step receives from an upstream step: the object after a store-and-load round trip.
    A pickle's bytes depend on which objects share memory; the pipeline's steps each load their inputs
    fresh, so a rebuild in one process (reproduce) passes objects across the same boundaries to hash the
    same bytes."""
    return pickle.loads(pickle.dumps(value, protocol=5))


def fit_and_choose(preprocessor, train: pd.DataFrame, validation: pd.DataFrame, data: DataSpec,
                   training: TrainingSpec) -> Tuple[FittedModel, dict]:
    """The training pipeline's baseline, candidate search and selection in one process, each fit given
    the preprocessor across an artifact boundary as its step is: (the chosen model, the selection record)."""
    baseline = fit_baseline(artifact_boundary(preprocessor), train, validation, data, training)
    candidate, _ = fit_candidate(artifact_boundary(preprocessor), train, validation, data, training)
    fitted = {m.name: m for m in (baseline, candidate)}
    chosen = choose_summary([{"name": m.name, "params": m.params, "validation_metrics": m.validation_metrics}
                             for m in fitted.values()], training.primary_metric)
    return fitted[chosen["chosen"]], chosen

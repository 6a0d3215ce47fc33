"""The dask engine's training: the chosen LightGBM model (searched in memory on a seeded sample) refit
on the whole training split with `lightgbm.dask.DaskLGBMClassifier`, and metrics computed by
partition on whole splits.

The refit model is `to_local()`: an ordinary `LGBMClassifier`, composed with the same feature
pipeline as every keel model, so the registry, serving, SHAP and the model hash work unchanged.

Reproducibility: LightGBM's distributed result depends on which rows each worker holds. Partitions
are placed explicitly — contiguous blocks of partitions per worker, workers ordered by address — so
the same data on the same layout (workers, threads, partitions) gives the same model; another layout
gives another model with metrics within a tolerance (see `keel.engine.reproduction`).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from keel.engine.cluster import ordered_workers
from keel.spec.data import DataSpec
from keel.spec.training import TrainingSpec
from keel.training.metrics import score


def _features_and_label(part: pd.DataFrame, features, data: DataSpec) -> Tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features.transform(part[data.model_features]), dtype=np.float64)
    return x, part[data.target.column].to_numpy()


def _placed_arrays(client, train, features, data: DataSpec):
    """(X, y) as Dask arrays whose partition i lives on worker i * workers // partitions."""
    import dask.array as da
    from dask import delayed

    workers = ordered_workers(client)
    parts = train.to_delayed()
    n = len(parts)
    pairs = [client.compute(delayed(_features_and_label)(part, features, data),
                            workers=[workers[i * len(workers) // n]], allow_other_workers=False)
             for i, part in enumerate(parts)]
    shapes = client.gather([client.submit(lambda pair: pair[0].shape, pair, workers=[workers[i * len(workers) // n]],
                                          allow_other_workers=False) for i, pair in enumerate(pairs)])
    kept = [(i, pair, shape) for i, (pair, shape) in enumerate(zip(pairs, shapes)) if shape[0] > 0]
    x_blocks, y_blocks = [], []
    for i, pair, shape in kept:
        worker = [workers[i * len(workers) // n]]
        x = client.submit(lambda p: p[0], pair, workers=worker, allow_other_workers=False)
        y = client.submit(lambda p: p[1], pair, workers=worker, allow_other_workers=False)
        x_blocks.append(da.from_delayed(delayed(x), shape=shape, dtype=np.float64))
        y_blocks.append(da.from_delayed(delayed(y), shape=(shape[0],), dtype=np.int64))
    return da.concatenate(x_blocks), da.concatenate(y_blocks), pairs


def refit_lightgbm(client, pipeline, params: Dict[str, object], train, data: DataSpec, training: TrainingSpec):
    """The chosen model's parameters, trained on every row of `train` (a Dask DataFrame) across the
    cluster; returns the features + `to_local()` model pipeline."""
    from lightgbm.dask import DaskLGBMClassifier
    from sklearn.pipeline import Pipeline

    features = pipeline.named_steps["features"]
    x, y, held = _placed_arrays(client, train, features, data)
    model = DaskLGBMClassifier(client=client, **params, random_state=training.seed, deterministic=True,
                               force_row_wise=True, verbose=-1)
    with client.as_current():  # LightGBM waits on the default client, ours is not set as default
        model.fit(x, y)
    local = model.to_local()
    local.set_params(n_jobs=training.threads)  # as a locally trained model: serving's thread count
    del held
    return Pipeline([("features", features), ("model", local)])


def scores_by_partition(client, model, frame, data: DataSpec) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of every row, predicted partition by partition on the workers."""
    from keel.training.fit import predict_scores

    def predict(part: pd.DataFrame) -> pd.DataFrame:
        scores = predict_scores(model, part) if len(part) else np.empty(0)
        return pd.DataFrame({"label": part[data.target.column].to_numpy(), "score": scores})

    meta = pd.DataFrame({"label": pd.Series([], dtype="int64"), "score": pd.Series([], dtype="float64")})
    result = client.compute(frame.map_partitions(predict, meta=meta)).result()
    return result["label"].to_numpy(), result["score"].to_numpy()




def whole_split_metrics(client, model, frame, data: DataSpec) -> Dict[str, float]:
    labels, scores = scores_by_partition(client, model, frame, data)
    return score(labels, scores)

"""The dask engine's training: the chosen LightGBM model (searched in memory on a seeded sample) refit
on the whole training split with `lightgbm.dask.DaskLGBMClassifier`, and metrics computed by
partition on whole splits.

The refit model is `to_local()`: an ordinary `LGBMClassifier`, composed with the same feature
pipeline as every keel model, so the registry, serving, SHAP and the model hash work unchanged.

Reproducibility: LightGBM's distributed result depends on which rows each machine (rank) holds.
Partitions are placed explicitly — one contiguous block of partitions per worker, workers ordered by
address — and the machine ranks follow the same order (`_ranks_by_worker_address`), so that the same
data on the same layout (workers, threads, partitions) gives the same model, byte for byte
(deterministic=True, force_row_wise, the seed; the training network's ports removed and the
estimator's attributes in one order). Another layout gives another model, with metrics within the
tolerance of `keel.engine.reproduction`.
"""

from __future__ import annotations

import operator
import pickle
from contextlib import contextmanager
from typing import Dict, Tuple

import numpy as np
import pandas as pd

from keel.engine.cluster import ordered_workers
from keel.spec.data import DataSpec
from keel.spec.training import TrainingSpec
from keel.training.metrics import score


# The refit's features stay float64, as the local engine trains: a model trained on float32 features
# scores some float64 rows differently (a float64 value just past a threshold that is itself a float32
# value rounds onto it; seen on the test module's data), a skew between training and serving.
FEATURE_DTYPE = np.float64


def _features_of(part: pd.DataFrame, features, data: DataSpec) -> Tuple[np.ndarray, np.ndarray]:
    """One partition's training rows as model features and labels (its pandas rows are released as
    soon as this returns: a worker never holds all its partitions' rows at once)."""
    if len(part) == 0:  # a partition with no training rows (scikit-learn refuses to transform none)
        x = np.empty((0, len(features.get_feature_names_out())), dtype=FEATURE_DTYPE)
    else:
        x = np.ascontiguousarray(features.transform(part[data.model_features]), dtype=FEATURE_DTYPE)
    return x, part[data.target.column].to_numpy(dtype=np.int64)


def _block(*pairs: Tuple[np.ndarray, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """One worker's partitions (in order) as one block, written into arrays allocated once: the
    partitions' feature arrays and the block are the only copies of the rows at any moment."""
    rows = sum(len(y) for _, y in pairs)
    width = pairs[0][0].shape[1] if pairs else 0
    x = np.empty((rows, width), dtype=FEATURE_DTYPE)
    y = np.empty(rows, dtype=np.int64)
    start = 0
    for part_x, part_y in pairs:
        x[start:start + len(part_y)] = part_x
        y[start:start + len(part_y)] = part_y
        start += len(part_y)
    return x, y


def _shape(pair: Tuple[np.ndarray, np.ndarray]) -> Tuple[int, int]:
    return pair[0].shape


def _placed_arrays(client, parts: list, features, data: DataSpec):
    """(X, y) as Dask arrays of one block per worker: worker r (workers by address) holds the
    contiguous partitions i with i * workers // partitions == r. LightGBM ranks its machines in the
    order of the blocks, so rank r always trains on block r: the same layout, the same model.

    Memory: every task of a block (reading, validating, selecting, transforming a partition) runs on
    its worker; each partition becomes float64 features there, so a worker's peak while building its
    block is two copies of its training features (the partitions' and the block's) and one partition
    of pandas rows, not its every row in pandas plus their transformed copies. (Training then holds
    two copies again: lightgbm.dask copies a worker's block into one array to train on.)"""
    import dask.array as da
    from dask import delayed
    from distributed import wait

    workers = ordered_workers(client)
    n = len(parts)
    blocks = [[part for i, part in enumerate(parts) if i * len(workers) // n == r] for r in range(len(workers))]
    placed = [(worker, client.compute(delayed(_block)(*[delayed(_features_of)(part, features, data) for part in block]),
                                      workers=[worker], allow_other_workers=False))
              for worker, block in zip(workers, blocks) if block]
    shapes = client.gather([client.submit(_shape, pair, workers=[worker], allow_other_workers=False)
                            for worker, pair in placed])
    x_blocks, y_blocks, held = [], [], []
    for (worker, pair), shape in zip(placed, shapes):
        if shape[0] == 0:
            continue
        x = client.submit(operator.getitem, pair, 0, workers=[worker], allow_other_workers=False)
        y = client.submit(operator.getitem, pair, 1, workers=[worker], allow_other_workers=False)
        held += [x, y]
        x_blocks.append(da.from_delayed(delayed(x), shape=shape, dtype=FEATURE_DTYPE))
        y_blocks.append(da.from_delayed(delayed(y), shape=(shape[0],), dtype=np.int64))
    # The pairs go once their items are held: the worker's memory accounting then counts the block
    # once (a pair and its items share the arrays), so Dask does not spill or pause on a double count.
    with client.as_current():  # `wait` asks for the default client
        wait(held)
    del placed
    return da.concatenate(x_blocks), da.concatenate(y_blocks), held


@contextmanager
def _ranks_by_worker_address(client):
    """Within it, `client.who_has` lists keys in the order of the workers holding them (workers by
    address), so that LightGBM's machine ranks follow the workers' order, and rank r trains on block r.

    Why: lightgbm.dask ranks its machines in the order `client.who_has(parts)` returns the parts, and
    distributed's `Client.who_has` asks the scheduler for `list({f.key for f in futures})`: a set of
    string keys, ordered by Python's per-process hash randomisation. Each worker's histograms, hence
    the split points, come from its own rows, so with two workers the two orders give two different
    models about half the time (seen here: two hashes over three refits of the same data and layout,
    the 1,789- and 1,810-row blocks swapping ranks 0 and 1)."""
    order = {address: position for position, address in enumerate(ordered_workers(client))}
    last = len(order)
    asked = client.who_has

    def ordered_who_has(futures=None, **kwargs):
        found = asked(futures, **kwargs)
        holders = {key: sorted(workers, key=lambda worker: (order.get(worker, last), worker))
                   for key, workers in found.items()}
        return dict(sorted(holders.items(), key=lambda item: (order.get(item[1][0], last) if item[1] else last,
                                                              str(item[0]))))

    client.who_has = ordered_who_has
    try:
        yield
    finally:
        del client.who_has  # the class's method again


def refit_lightgbm(client, pipeline, params: Dict[str, object], train, data: DataSpec, training: TrainingSpec):
    """The chosen model's parameters, trained on every row of `train` (delayed partitions) across the
    cluster; returns the features + `to_local()` model pipeline."""
    from lightgbm.dask import DaskLGBMClassifier
    from sklearn.pipeline import Pipeline

    features = pipeline.named_steps["features"]
    x, y, held = _placed_arrays(client, train, features, data)
    model = DaskLGBMClassifier(client=client, **params, random_state=training.seed, deterministic=True,
                               force_row_wise=True, verbose=-1)
    with client.as_current(), _ranks_by_worker_address(client):  # LightGBM waits on the default client
        model.fit(x, y)
    local = _without_network_parameters(model.to_local())
    local.set_params(n_jobs=training.threads)  # as a locally trained model: serving's thread count
    del held
    # In its stored form (as the registry loads it), so that its hash is the registered one's.
    return pickle.loads(pickle.dumps(Pipeline([("features", features), ("model", local)]), protocol=5))


def _labels_and_scores(part: pd.DataFrame, model, data: DataSpec) -> Tuple[np.ndarray, np.ndarray]:
    from keel.training.fit import predict_scores

    scores = predict_scores(model, part) if len(part) else np.empty(0)
    return part[data.target.column].to_numpy(), scores


NETWORK_PARAMETERS = ("[machines:", "[local_listen_port:")


def _without_network_parameters(model):
    """The model with its booster's record of the training network (random ports, this run's
    addresses) removed: the trees are the model, the ports are not (nor do they affect prediction)."""
    import lightgbm

    text = model.booster_.model_to_string()
    kept = "\n".join(line for line in text.split("\n") if not line.startswith(NETWORK_PARAMETERS))
    model._Booster = lightgbm.Booster(model_str=kept)
    for name in ("machines", "local_listen_port", "num_machines"):  # also kept by the estimator as parameters
        model._other_params.pop(name, None)
        if name in vars(model):
            delattr(model, name)
    # lightgbm.dask sets the estimator's attributes in an order that varies between processes (seen:
    # `num_machines` before or after `fitted_`), and a pickle follows that order: one order, by name.
    model.__dict__ = dict(sorted(vars(model).items()))
    model._other_params = dict(sorted(model._other_params.items()))
    # In its stored form: a LightGBM model pickles differently before and after one round trip, and
    # the registered hash is taken of the stored artifact.
    return pickle.loads(pickle.dumps(model, protocol=5))


def scores_by_partition(client, model, parts: list, data: DataSpec) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of every row, predicted partition by partition on the workers (the model is
    sent to each worker once)."""
    from dask import delayed

    [shared] = client.scatter([model], broadcast=True)
    pairs = client.gather(client.compute([delayed(_labels_and_scores)(part, shared, data) for part in parts]))
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])




def whole_split_metrics(client, model, parts: list, data: DataSpec) -> Dict[str, float]:
    labels, scores = scores_by_partition(client, model, parts, data)
    return score(labels, scores)

"""What `reproduce` may expect of a model trained on the dask engine, and its retraining there.

LightGBM's distributed training depends on which rows each machine rank holds (each rank's
histograms, and so the split points, come from its own rows). keel places partitions and ranks
deterministically (keel.engine.dask_training), so:
- the same data on the same layout (workers, threads per worker, partitions) gives the identical
  model hash: `reproduce` demands it, as on the local engine (tests/integration/test_dask_engine.py
  refits the registered model byte for byte on 2 workers);
- on another layout the model differs; its test metrics must be within METRIC_TOLERANCE of the
  recorded ones (absolute difference), and everything the layout does not touch (model family,
  hyperparameters from the seeded sample's search, rows per split, data fingerprint) must be equal.
  Observed here: see benchmarks/RESULTS.md, "Dask engine".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from keel import registration as keys

METRIC_TOLERANCE: Dict[str, float] = {"roc_auc": 0.02, "pr_auc": 0.04}
LAYOUT_KEYS = ("workers", "threads_per_worker", "partitions")
EXACT_ON_ANOTHER_LAYOUT = (keys.MODEL_FAMILY, keys.HYPERPARAMETERS, keys.ROWS)


def same_layout(recorded: dict, now: dict) -> bool:
    return all(recorded.get(key) == now.get(key) for key in LAYOUT_KEYS)


def describe_layout(layout: dict) -> str:
    return ", ".join(f"{key} {layout.get(key)}" for key in LAYOUT_KEYS)


def compare_reproduction(recorded_engine: dict, recorded_hash: str, recorded_metrics: Dict[str, float],
                         now_engine: dict, now_hash: str, now_metrics: Dict[str, float]) -> List[str]:
    """Problems with a reproduction (empty: reproduced): the identical hash on the same layout, else
    each metric with a tolerance within it."""
    if same_layout(recorded_engine.get("layout", {}), now_engine.get("layout", {})):
        if recorded_hash == now_hash:
            return []
        return [f"model SHA-256 {now_hash[:12]} differs from the recorded {recorded_hash[:12]} on the same layout "
                f"({describe_layout(now_engine.get('layout', {}))})"]
    problems = []
    for metric, tolerance in METRIC_TOLERANCE.items():
        difference = abs(now_metrics[metric] - recorded_metrics[metric])
        if difference > tolerance:
            problems.append(f"{metric} {now_metrics[metric]:.4f} differs from the recorded "
                            f"{recorded_metrics[metric]:.4f} by {difference:.4f} (tolerance {tolerance} on another layout)")
    return problems




@dataclass
class DaskRetrain:
    """What retraining on the dask engine came to: the facts a version records (None when the data no
    longer validates or is other data: then nothing was trained), the validation report, the fingerprint."""

    facts: Optional[dict]
    report: object
    fingerprint: Optional[str]


def _frame_boundary(frame):
    """A frame as a step receives it from an upstream one: through Parquet, as ZenML's pandas
    materializer stores it. Not a pickle: a pickled frame's arrays carry an unpickled dtype object,
    which the fitted features then hold beside numpy's own (seen: the StandardScaler's `mean_` pickled
    with a dtype of its own), and the model's bytes, hence its hash, differ from the registered one."""
    import io

    import pandas as pd

    return pd.read_parquet(io.BytesIO(frame.to_parquet()))


def retrain_on_dask(spec, engine, expected_fingerprint: Optional[str]) -> DaskRetrain:
    """The training pipeline's dask path (keel.engine.dask_run: prepare, search on the seeded samples,
    refit), without ZenML, with its artifact boundaries; only when the data validates and its
    fingerprint is `expected_fingerprint` (keel never retrains on other data and calls it a reproduction)."""
    from keel.engine.dask_run import prepare, refit
    from keel.features.preprocessing import fit_preprocessor
    from keel.training.fit import MEMO_MODEL_SHA256, artifact_boundary, fit_and_choose, memo_model_hash, model_hash

    data, training = spec.data, spec.training
    prepared = prepare(data, spec.split, engine)
    if not prepared.report.passed or prepared.fingerprint != expected_fingerprint:
        return DaskRetrain(None, prepared.report, prepared.fingerprint)
    samples = prepared.samples
    train, validation = _frame_boundary(samples["train"]), _frame_boundary(samples["validation"])
    features = artifact_boundary(fit_preprocessor(train, data))
    selected, selection = fit_and_choose(features, train, validation, data, training)
    model, selection, record = refit(artifact_boundary(selected.pipeline), selection, data, spec.split,
                                     training, engine, artifact_boundary(prepared.record))
    facts = {keys.MODEL_FAMILY: selection["chosen"], keys.HYPERPARAMETERS: selection["params"],
             keys.VALIDATION_METRICS: selection["validation_metrics"], keys.TEST_METRICS: record["test_metrics"],
             keys.MODEL_SHA256: model_hash(model),
             MEMO_MODEL_SHA256: memo_model_hash(model), keys.ROWS: record["rows"],
             keys.DATA_FINGERPRINT: prepared.fingerprint, keys.ENGINE: record}
    return DaskRetrain(facts, prepared.report, prepared.fingerprint)

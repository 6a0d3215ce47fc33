"""A NumPy scorer for few rows, compiled from a fitted keel pipeline and checked against it.

scikit-learn's `ColumnTransformer` costs about 4 ms per call on a one-row DataFrame (column
selection, validation, hstack), while the arithmetic it does is a few microseconds. Serving pays
that per request, so the scorer encodes records straight from their dicts with the fitted
statistics. It is used only when it reproduces the pipeline's scores on a check set; otherwise
serving keeps the pipeline (`compile_row_scorer` returns None and says why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# Scores must match the pipeline's to this tolerance on every check row, or the fast path is refused.
MATCH_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NumericEncoding:
    columns: List[str]
    fill: np.ndarray             # the imputer's statistics, one per column
    indicator_of: np.ndarray     # column positions that get a missing-value indicator
    mean: Optional[np.ndarray]   # the scaler's, over imputed values followed by indicators
    scale: Optional[np.ndarray]


@dataclass(frozen=True)
class CategoricalEncoding:
    columns: List[str]
    categories: List[List[object]]


class RowScorer:
    """Scores a list of record dicts (feature name -> value) the way the fitted pipeline does."""

    def __init__(self, numeric: NumericEncoding, categorical: CategoricalEncoding, order: Sequence[str],
                 predict_positive: Callable[[np.ndarray], np.ndarray]):
        self.numeric = numeric
        self.categorical = categorical
        self.order = list(order)  # the transformer's block order: "numeric", "categorical"
        self.predict_positive = predict_positive
        self._positions = [{c: i for i, c in enumerate(cats)} for cats in categorical.categories]
        self._width = sum(len(c) for c in categorical.categories)

    def encode(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        blocks = {"numeric": self._numeric_block(records), "categorical": self._categorical_block(records)}
        return np.hstack([blocks[name] for name in self.order])

    def _numeric_block(self, records) -> np.ndarray:
        spec = self.numeric
        values = np.array([[np.nan if r.get(c) is None else r[c] for c in spec.columns] for r in records],
                          dtype=np.float64).reshape(len(records), len(spec.columns))
        missing = np.isnan(values)
        imputed = np.where(missing, spec.fill, values)
        block = np.hstack([imputed, missing[:, spec.indicator_of].astype(np.float64)])
        if spec.mean is not None:
            block -= spec.mean
        if spec.scale is not None:
            block /= spec.scale
        return block

    def _categorical_block(self, records) -> np.ndarray:
        block = np.zeros((len(records), self._width), dtype=np.float64)
        offset = 0
        for column, positions, categories in zip(self.categorical.columns, self._positions,
                                                 self.categorical.categories):
            for row, record in enumerate(records):
                position = positions.get(record.get(column))
                if position is not None:  # unknown or missing: all zeros, as handle_unknown="ignore"
                    block[row, offset + position] = 1.0
            offset += len(categories)
        return block

    def scores(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        return self.predict_positive(self.encode(records))


def _positive_class_predictor(estimator) -> Callable[[np.ndarray], np.ndarray]:
    booster = getattr(estimator, "booster_", None)
    if booster is not None and getattr(estimator, "n_classes_", 2) == 2:
        # LGBMClassifier.predict_proba wraps exactly this call (plus ~0.6 ms of checks per call). One
        # thread: OpenMP's team for a few rows costs more than it saves, and on busy cores (the
        # service's other workers and requests) waiting for it took 20-30 ms a row instead of 0.06 ms
        # (benchmarks/RESULTS.md, serving); the workers are the parallelism.
        return lambda matrix: booster.predict(matrix, num_threads=1)
    return lambda matrix: estimator.predict_proba(matrix)[:, 1]


def _describe_numeric(name: str, transformer, columns) -> NumericEncoding:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    if not (len(steps) == 2 and isinstance(steps[0], SimpleImputer) and isinstance(steps[1], StandardScaler)):
        raise ValueError(f"block `{name}` is not SimpleImputer -> StandardScaler")
    imputer, scaler = steps
    if imputer.strategy not in ("median", "mean", "most_frequent", "constant"):
        raise ValueError(f"imputer strategy {imputer.strategy!r}")
    if imputer.statistics_.shape[0] != len(columns):  # empty features were dropped
        raise ValueError("the imputer dropped columns")
    indicator = imputer.indicator_.features_ if imputer.add_indicator else np.array([], dtype=int)
    return NumericEncoding(list(columns), imputer.statistics_.astype(np.float64), np.asarray(indicator, dtype=int),
                           scaler.mean_ if scaler.with_mean else None,
                           scaler.scale_ if scaler.with_std else None)


def _describe_categorical(name: str, transformer, columns) -> CategoricalEncoding:
    from sklearn.preprocessing import OneHotEncoder

    if not isinstance(transformer, OneHotEncoder):
        raise ValueError(f"block `{name}` is not a OneHotEncoder")
    if transformer.drop is not None or transformer.handle_unknown != "ignore":
        raise ValueError("the one-hot encoder drops a category or rejects unknown ones")
    if getattr(transformer, "_infrequent_enabled", False):
        raise ValueError("the one-hot encoder groups infrequent categories")
    return CategoricalEncoding(list(columns), [list(c) for c in transformer.categories_])


def _describe(pipeline) -> RowScorer:
    from sklearn.compose import ColumnTransformer

    features, estimator = pipeline.named_steps["features"], pipeline.named_steps["model"]
    if not isinstance(features, ColumnTransformer) or features.sparse_output_:
        raise ValueError("the feature step is not a dense ColumnTransformer")
    numeric, categorical, order = None, CategoricalEncoding([], []), []
    for name, transformer, columns in features.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        if transformer == "drop" or len(columns) == 0:
            continue
        if name == "numeric":
            numeric = _describe_numeric(name, transformer, columns)
        elif name == "categorical":
            categorical = _describe_categorical(name, transformer, columns)
        else:
            raise ValueError(f"unexpected block `{name}`")
        order.append(name)
    if numeric is None:
        raise ValueError("no numeric block")
    if "categorical" not in order:
        order.append("categorical")  # an empty block adds no columns
    return RowScorer(numeric, categorical, order, _positive_class_predictor(estimator))


def _check_rows(frame: pd.DataFrame, categorical: CategoricalEncoding) -> List[dict]:
    """The check set: real rows, each row with every value missing, and unknown categories."""
    rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict(orient="records")]
    edge = [dict(rows[0]) for _ in range(2)]
    for key in edge[0]:
        edge[0][key] = None
    for column in categorical.columns:
        edge[1][column] = "__unseen_category__"
    return rows + edge


def compile_row_scorer(pipeline, sample: pd.DataFrame) -> Optional[RowScorer]:
    """A `RowScorer` for `pipeline`, or None when it cannot reproduce the pipeline on `sample`
    (plus all-missing and unseen-category rows). `sample` holds the model's input columns."""
    try:
        scorer = _describe(pipeline)
        columns = list(pipeline.feature_names_in_)
        records = _check_rows(sample[columns].head(200), scorer.categorical)
        expected = pipeline.predict_proba(pd.DataFrame(records, columns=columns).astype(
            {c: float for c in scorer.numeric.columns}))[:, 1]
        # Score one row at a time too: that is how most requests arrive.
        together = scorer.scores(records)
        one_by_one = np.concatenate([scorer.scores([r]) for r in records[:20]])
    except Exception as error:  # any structure it does not know: keep the pipeline
        logger.info("serving: the pipeline's fast path is off (%s)", error)
        return None
    worst = max(float(np.max(np.abs(together - expected))), float(np.max(np.abs(one_by_one - expected[:20]))))
    if not worst <= MATCH_TOLERANCE:
        logger.warning("serving: the fast path differs from the pipeline by %.3g; using the pipeline", worst)
        return None
    return scorer

"""The model families keel trains, built from the spec with fixed seeds and thread counts."""

from __future__ import annotations

from typing import Any, Dict

from keel.spec.training import LightGBMSpec, LogisticRegressionSpec


def make_logistic_regression(spec: LogisticRegressionSpec, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=spec.C, max_iter=spec.max_iter, random_state=seed)


def make_lightgbm(params: Dict[str, Any], seed: int, threads: int):
    """LightGBM in deterministic mode: same data, seed and threads give the same trees."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        **params,
        random_state=seed,
        n_jobs=threads,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def lightgbm_trial_params(spec: LightGBMSpec, sampled: Dict[str, Any]) -> Dict[str, Any]:
    return {**spec.params, **sampled}

"""Drift of a categorical feature with many levels (stores, cities, product codes), unlike the credit
demo's few categories: rows drawn from the reference's own distribution raise no alarm, a real shift
does, and levels the reference never saw or rarely saw neither fake drift nor crash the test."""

import numpy as np
import pandas as pd

from keel.monitoring.category_test import category_test
from keel.monitoring.drift import feature_drift
from keel.monitoring.profiles import compare_columns, profile_frame
from keel.spec.monitoring import FeatureDriftSpec


def _stores(rng, rows: int, levels: int = 150, weights=None) -> pd.Series:
    names = np.array([f"s{i:03d}" for i in range(levels)])
    return pd.Series(rng.choice(names, rows, p=weights), name="store")


def _counts(values: pd.Series) -> dict:
    return values.value_counts().to_dict()


def test_rows_from_the_reference_distribution_raise_no_alarm_through_the_profiles():
    """4,000 training rows and 1,000 production rows of two 150-level features from one generator: whylogs'
    goodness-of-fit chi-square gave p = 6e-12 and 6e-6 here, and both features drifted."""
    rng = np.random.default_rng(11)
    weights = rng.dirichlet(np.ones(150))
    reference = pd.DataFrame({"store": _stores(rng, 4000, weights=weights), "city": _stores(rng, 4000)})
    window = pd.DataFrame({"store": _stores(rng, 1000, weights=weights), "city": _stores(rng, 1000)})
    comparisons = compare_columns(profile_frame(window), profile_frame(reference), ["store", "city"])
    for name in ("store", "city"):
        assert comparisons[name]["test"] == "chi-square" and comparisons[name]["p_value"] > 0.01, comparisons[name]
    assert feature_drift(comparisons, FeatureDriftSpec())["drifted"] == []


def test_the_p_value_is_calibrated_on_sparse_levels():
    """Under no change, p < 0.05 about 5% of the time (not far more), for 150 levels seen ~7 times each."""
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.ones(150))
    p_values = [category_test(_counts(_stores(rng, 1000, weights=weights)),
                              _counts(_stores(rng, 4000, weights=weights)))[1] for _ in range(300)]
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.08


def test_a_real_shift_is_detected_and_judged_drift():
    rng = np.random.default_rng(5)
    weights = np.full(150, 1 / 150)
    shifted = weights.copy()
    shifted[:15] *= 4  # a tenth of the stores take 40% of the traffic
    shifted /= shifted.sum()
    reference = pd.DataFrame({"store": _stores(rng, 4000, weights=weights)})
    window = pd.DataFrame({"store": _stores(rng, 1000, weights=shifted)})
    comparison = compare_columns(profile_frame(window), profile_frame(reference), ["store"])
    assert comparison["store"]["p_value"] < 1e-10 and comparison["store"]["effect"] > 0.2
    assert feature_drift(comparison, FeatureDriftSpec())["drifted"] == ["store"]


def test_levels_the_reference_never_or_rarely_saw_are_pooled_not_infinite():
    """Three declared levels absent from training each appear once in production: whylogs' test gave an
    infinite statistic and p = 0."""
    rng = np.random.default_rng(8)
    reference = _counts(_stores(rng, 3000, levels=40))
    window = _counts(_stores(rng, 800, levels=40))
    window.update({"new-1": 1, "new-2": 1, "new-3": 1})
    statistic, p_value, cells = category_test(window, reference)
    assert np.isfinite(statistic) and p_value > 0.01 and cells <= 41
    many_new = {**window, "new-1": 120}  # a new level taking 13% of the traffic is a change
    assert category_test(many_new, reference)[1] < 1e-10


def test_too_few_rows_to_compare_any_two_cells_is_no_test():
    assert category_test({"a": 2, "b": 1}, {"a": 1, "b": 3}) is None
    assert category_test({}, {"a": 3}) is None

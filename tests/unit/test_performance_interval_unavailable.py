"""A metric undefined in some bootstrap resample (no positive row drawn) has no interval and says why,
instead of an interval over the remaining resamples; no numpy warning reaches the terminal."""

import math
import warnings

import numpy as np

from keel.evaluation.performance import evaluate_performance, performance_html


def test_a_metric_undefined_in_a_resample_has_no_interval_and_says_why():
    y = np.zeros(3000, dtype=int)
    y[:2] = 1
    scores = np.full(3000, 0.1)
    scores[[0, 5, 6]] = 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = evaluate_performance(y, scores, 0.5, interval_samples=400)
    for name in ("recall", "roc_auc", "pr_auc"):
        assert report["interval_unavailable"][name].startswith("undefined in "), name
        assert all(math.isnan(v) for v in report["intervals"][name])
    assert "accuracy" not in report["interval_unavailable"]
    assert "not available: undefined in " in performance_html(report)

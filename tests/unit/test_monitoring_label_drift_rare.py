"""Label drift on rare positives (fraud, 1.5 %): an absolute bound at or above the base rate cannot see
the rate fall, so no drift under it is "not judgeable", not "stable"; a declared `max_rate_ratio` judges
the rate relatively, and either declared bound fires (with the z-test)."""

import numpy as np
import pytest
from pydantic import ValidationError

from keel.monitoring.drift import label_drift
from keel.spec.monitoring import LabelDriftSpec

REFERENCE_RATE, REFERENCE_ROWS = 0.0148, 20_000


def _labels(rate: float, rows: int = 3000) -> np.ndarray:
    positives = round(rate * rows)
    return np.array([1] * positives + [0] * (rows - positives))


def test_a_rare_positive_rate_that_almost_tripled_is_not_called_stable_by_the_absolute_bound():
    drift = label_drift(_labels(0.0408), REFERENCE_RATE, REFERENCE_ROWS, LabelDriftSpec(), min_rows=300)
    assert drift["p_value"] < 1e-6 and not drift["drifted"] and not drift["judged"]
    assert drift["reason"].startswith("not judgeable by max_rate_change 0.05 at a 1.5 % base rate")
    assert "declare monitoring.drift.label.max_rate_ratio" in drift["reason"]


def test_a_declared_ratio_fires_on_a_rise_and_on_a_fall():
    spec = LabelDriftSpec(max_rate_ratio=2.0)
    risen = label_drift(_labels(0.0408), REFERENCE_RATE, REFERENCE_ROWS, spec, min_rows=300)
    assert risen["judged"] and risen["drifted"]
    fallen = label_drift(_labels(0.004, rows=20_000), REFERENCE_RATE, REFERENCE_ROWS, spec, min_rows=300)
    assert fallen["judged"] and fallen["drifted"]
    within = label_drift(_labels(0.017), REFERENCE_RATE, REFERENCE_ROWS, spec, min_rows=300)
    assert within["judged"] and not within["drifted"]
    # The ratio the bound judged is stored beside the change, and the verdict's summary names both.
    from keel.monitoring.drift import classify

    assert risen["ratio"] == pytest.approx(122 / 3000 / REFERENCE_RATE) and risen["ratio"] > 2.0
    assert fallen["ratio"] == pytest.approx(80 / 20_000 / REFERENCE_RATE) and fallen["ratio"] < 1 / 2.0
    quiet = {"drifted": []}
    summary = classify(quiet, {"drifted": False}, risen, {"drifted": False})["summary"]
    assert summary == "the positive rate moved by +0.026 (1.48% -> 4.07%, x2.75)"


def test_the_absolute_bound_still_fires_on_a_large_rise_and_judges_common_positives_as_before():
    assert label_drift(_labels(0.09), REFERENCE_RATE, REFERENCE_ROWS, LabelDriftSpec(), min_rows=300)["drifted"]
    common = label_drift(_labels(0.32), 0.30, REFERENCE_ROWS, LabelDriftSpec(), min_rows=300)
    assert common["judged"] and not common["drifted"] and "reason" not in common


def test_a_label_drift_spec_needs_a_bound():
    assert LabelDriftSpec(max_rate_change=None, max_rate_ratio=3.0).max_rate_ratio == 3.0
    with pytest.raises(ValidationError, match="max_rate_change .absolute. or max_rate_ratio"):
        LabelDriftSpec(max_rate_change=None)
    with pytest.raises(ValidationError):
        LabelDriftSpec(max_rate_ratio=0.5)  # a ratio bound is above 1

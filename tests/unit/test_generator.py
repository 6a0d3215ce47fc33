import numpy as np

from keel.data.fingerprint import fingerprint_frame
from keel.data.generator import SHIFTABLE, TARGET, generate_credit_applications
from keel.spec.data import GeneratorSource


def _generate(**overrides):
    return generate_credit_applications(GeneratorSource(kind="generator", **{"rows": 20_000, "seed": 3,
                                                                             **overrides}))


def test_same_seed_same_rows_other_seed_other_rows():
    assert fingerprint_frame(_generate()) == fingerprint_frame(_generate())
    assert fingerprint_frame(_generate()) != fingerprint_frame(_generate(seed=4))


def test_shape_missing_values_and_realistic_imbalance(default_spec):
    frame = _generate()
    features = default_spec.data.features
    assert len(features) >= 15 and set(features) <= set(frame.columns)
    assert {"numeric", "integer", "categorical"} <= {f.type for f in features.values()}
    assert frame[["employment_years", "credit_utilization", "savings_balance"]].isna().mean().between(
        0.03, 0.07).all()
    assert 0.1 < frame[TARGET].mean() < 0.3
    assert frame["application_id"].is_unique and frame["application_date"].is_monotonic_increasing


def test_labels_carry_signal():
    from sklearn.metrics import roc_auc_score

    frame = _generate()
    # One strong feature alone ranks defaulters above non-defaulters.
    assert roc_auc_score(frame[TARGET], frame["num_late_payments_2y"]) > 0.55
    assert roc_auc_score(frame[TARGET], frame["interest_rate"]) > 0.7


def _rate_gap(frame):
    rates = frame.groupby("sex", observed=True)[TARGET].mean()
    return rates["female"] - rates["male"]


def test_historical_bias_knob_raises_recorded_defaults_of_women_only():
    fair, biased = _generate(), _generate(historical_bias=1.0)
    assert abs(_rate_gap(fair)) < 0.02
    assert _rate_gap(biased) > 0.1
    # The features themselves are untouched: the bias lives in the labels.
    assert fingerprint_frame(fair.drop(columns=[TARGET])) == fingerprint_frame(biased.drop(columns=[TARGET]))


def test_covariate_shift_moves_only_the_chosen_features():
    base, shifted = _generate(), _generate(covariate_shift=1.0, shifted_features=["credit_utilization"])
    assert shifted["credit_utilization"].mean() > base["credit_utilization"].mean() + 0.1
    for name in ("income", "loan_amount", "num_credit_lines", "debt_to_income"):
        assert np.isclose(shifted[name].mean(), base[name].mean())


def test_concept_shift_changes_labels_not_inputs():
    base, drifted = _generate(), _generate(concept_shift=1.0)
    inputs = [c for c in base.columns if c != TARGET]
    assert fingerprint_frame(base[inputs]) == fingerprint_frame(drifted[inputs])
    assert (base[TARGET] != drifted[TARGET]).mean() > 0.1


def test_unknown_shifted_feature_is_refused():
    import pytest

    with pytest.raises(ValueError, match="cannot shift"):
        _generate(covariate_shift=1.0, shifted_features=["sex"])
    assert "sex" not in SHIFTABLE

"""Infinite and huge numbers in a feature with no declared bounds (sensor readings, amounts): refused by
name wherever data enters (file validation, a request, a batch row), never a crash in training or in
every later `monitor` run, and `init` writes bounds that validate."""

import numpy as np
import pandas as pd
import pytest

from keel.spec import SpecError, validate_spec

FEATURES = {"reading": {"type": "numeric"}, "site": {"type": "categorical", "categories": ["a", "b"]}}


def _spec(features=FEATURES):
    return validate_spec({
        "problem": {"name": "sensors", "objective": "o", "business_metric": "b",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "unused.csv"},
                 "target": {"column": "fault", "positive": "yes", "negative": "no"}, "features": features}},
        "sensors.yaml")


def _rows(readings) -> pd.DataFrame:
    return pd.DataFrame({"reading": readings, "site": ["a", "b"] * (len(readings) // 2),
                         "fault": ["yes", "no"] * (len(readings) // 2)})


def test_validation_refuses_infinite_and_overflowing_values_by_column():
    from keel.data.schema import validate_frame

    _, report = validate_frame(_rows([1.5, np.inf, -np.inf, 1e300, 2.0, -3e151]), _spec().data)
    assert not report.passed
    [failure] = [f for f in report.failures if f.column == "reading" and "maximum" in f.check]
    assert failure.failing_rows == 2 and "1e+150" in failure.check
    [failure] = [f for f in report.failures if f.column == "reading" and "minimum" in f.check]
    assert failure.failing_rows == 2
    assert validate_frame(_rows([1.5, 1e149, -2.0, 0.0]), _spec().data)[1].passed


def test_the_service_and_the_batch_contract_refuse_them_in_the_same_words():
    from keel.batch.contract import check_chunk
    from keel.serving.payload import PayloadError, parse_records, record_model

    data = _spec().data
    with pytest.raises(PayloadError) as raised:
        parse_records({"reading": 1e300, "site": "a"}, record_model(data))
    [error] = raised.value.errors
    assert error["field"] == "reading" and raised.value.status == 422
    good, rejects = check_chunk(pd.DataFrame({"reading": [1e300, 2.5, -1e200], "site": ["a", "b", "a"]}), data, 0)
    assert good.index.tolist() == [1]
    assert rejects["row"].tolist() == [0, 2] and rejects["field"].tolist() == ["reading", "reading"]
    assert rejects["problem"].iloc[0] == error["problem"]


def test_declared_bounds_must_be_finite_and_computable():
    for bound in ({"max": 1e200}, {"min": float("-inf")}):
        with pytest.raises(SpecError, match="within ±1e\\+150"):
            _spec({"reading": {"type": "numeric", **bound}})
    assert _spec({"reading": {"type": "numeric", "max": 1e150}}).data.features["reading"].bounds == (-1e150, 1e150)


def test_init_writes_finite_bounds_and_warns_of_the_values_validation_will_refuse(tmp_path):
    from keel.data.infer import infer_spec

    rng = np.random.default_rng(2)
    readings = rng.normal(20, 5, 200)
    readings[[3, 50]] = [np.inf, 1e300]
    path = tmp_path / "sensors.csv"
    pd.DataFrame({"reading": readings, "fault": rng.choice(["yes", "no"], 200)}).to_csv(path, index=False)
    inferred = infer_spec(path, "fault")
    assert inferred.features["reading"]["max"] == readings[np.isfinite(readings) & (readings < 1e150)].max()
    assert any("'reading': 2 value(s) infinite or beyond" in w for w in inferred.warnings), inferred.warnings
    spec_path = tmp_path / "sensors.yaml"
    spec_path.write_text(inferred.spec_text)
    from keel.spec import load_spec

    assert load_spec(spec_path).data.features["reading"].max < 1e150


def test_a_prediction_log_written_before_keel_refused_them_still_profiles_merges_and_compares():
    """A logged 1e300 overflowed whylogs' merge of two profiles (OverflowError), stopping every later
    `monitor`; it is now profiled as an infinity, out of the distribution the drift test reads."""
    from keel.monitoring.profiles import column_summary, compare_columns, merge_profiles, profile_frame

    rng = np.random.default_rng(0)
    reference = profile_frame(pd.DataFrame({"reading": rng.normal(size=500)}))
    logged = rng.normal(size=500)
    logged[[3, 4]] = [1e300, -1e200]
    hours = [profile_frame(pd.DataFrame({"reading": values})) for values in (logged, rng.normal(size=500))]
    window = merge_profiles(hours)
    assert column_summary(window, "reading")["count"] == 1000
    [comparison] = compare_columns(window, reference, ["reading"]).values()
    assert comparison["problem"] is None and 0.05 < comparison["p_value"] <= 1

"""Issue 12, "right verdicts on data keel has never seen".

Defect 4: missing values in every feature type the spec accepts (numeric, integer, categorical, a
categorical of one category) must survive profiling, the reference profiles, the feature pipeline,
the payload contract and the monitoring windows and drift.

Defect 5: a target given as text (">50K" / "<=50K"), or as integers with positive=0 / negative=1, is
encoded once (keel.data.schema) and used as encoded afterwards: the reference label rate and ROC AUC
are the true ones, delayed labels go through the same mapping, and a reference that cannot be right
is an error, never a silent "stable".

Every frame is built here, small and explicit (not from keel's credit generator).
"""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from keel.data.schema import encode_target, target_codes, validate_frame
from keel.features.preprocessing import fit_preprocessor
from keel.monitoring.drift import assess, label_drift, performance_drift
from keel.monitoring.labels import read_labels
from keel.monitoring.profiles import column_summary, compare_columns, profile_frame
from keel.monitoring.reference import ImplausibleReference, reference_profiles
from keel.spec import load_spec
from keel.spec.data import DataSpec
from keel.spec.monitoring import LabelDriftSpec, LabelsSpec, PerformanceDriftSpec
from tests.conftest import ROOT

UTC = timezone.utc
ROWS = 80
CATEGORIES = ["a", "b", "c"]
MISSING_SHARE = {"none": 0.0, "some": 0.3, "all": 1.0}
KINDS = ["numeric", "integer", "categorical", "one_category"]
FEATURE_SPECS = {
    "numeric": {"type": "numeric", "nullable": True},
    "integer": {"type": "integer", "min": 0, "max": 9, "nullable": True},
    "categorical": {"type": "categorical", "categories": CATEGORIES, "nullable": True},
    "one_category": {"type": "categorical", "categories": ["only"], "nullable": True},
}


def _data_spec(target=None, features=None) -> DataSpec:
    return DataSpec.model_validate({
        "source": {"kind": "csv", "path": "unused.csv"},
        "target": target or {"column": "y"},
        "features": features or FEATURE_SPECS})


def _spec(data: DataSpec):
    """The default spec with this test's data section (only data and monitoring are read)."""
    return load_spec(ROOT / "configs" / "credit_risk.yaml").model_copy(update={"data": data})


def _missing_mask(level: str, rows: int, rng) -> np.ndarray:
    if level == "all":
        return np.ones(rows, dtype=bool)
    mask = rng.random(rows) < MISSING_SHARE[level]
    if level == "some":
        mask[:2] = [True, False]  # at least one missing and one present value
    return mask


def _column(kind: str, level: str, rows: int, rng) -> pd.Series:
    """One feature as validation hands it on: numbers as float64, categories as pandas categories
    of the spec's levels (missing values are NaN in both)."""
    missing = _missing_mask(level, rows, rng)
    if kind == "numeric":
        return pd.Series(np.where(missing, np.nan, rng.normal(50.0, 10.0, rows)))
    if kind == "integer":
        return pd.Series(np.where(missing, np.nan, rng.integers(0, 10, rows).astype(float)))
    categories = CATEGORIES if kind == "categorical" else ["only"]
    values = np.where(missing, None, rng.choice(categories[:2] if kind == "categorical" else categories, rows))
    return pd.Series(pd.Categorical(values, categories=categories))


def _frame(level: str, rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({kind: _column(kind, level, rows, rng) for kind in KINDS})


def _with_target(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """An encoded 0/1 target with both classes, related to the numeric feature where it is known."""
    rng = np.random.default_rng(seed + 100)
    signal = frame["numeric"].fillna(50.0).to_numpy() + rng.normal(0.0, 10.0, len(frame))
    labels = (signal > np.median(signal)).astype("int64")
    labels[:2] = [0, 1]
    return frame.assign(y=labels)


def _fitted_pipeline(train: pd.DataFrame, data: DataSpec):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    preprocessor = fit_preprocessor(train, data)
    model = LogisticRegression(max_iter=1000).fit(preprocessor.transform(train[data.model_features]),
                                                  train[data.target.column])
    return Pipeline([("features", preprocessor), ("model", model)])


# --- defect 4: profiles ----------------------------------------------------------------------------


@pytest.mark.parametrize("level", list(MISSING_SHARE))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", ["validated", "served"])
def test_every_feature_type_is_profiled_with_no_some_or_all_values_missing(kind, level, form):
    """`validated`: as the training/test splits hold the column; `served`: as the prediction log's
    JSON gives it back (text with None, or floats with NaN)."""
    import whylogs as why

    column = _column(kind, level, ROWS, np.random.default_rng(3))
    as_text = column.astype(object).where(column.notna(), None)
    if form == "served" and (kind in ("categorical", "one_category") or level == "all"):
        column = as_text  # Arrow gives an all-null column back as None objects, whatever its type
    profile = profile_frame(pd.DataFrame({kind: column}))
    summary = column_summary(profile, kind)
    missing = int(column.isna().sum())
    assert summary["count"] == ROWS and summary["nulls"] == missing
    if level == "all":
        assert summary["kind"] == "missing"
    elif kind in ("categorical", "one_category"):
        assert summary["kind"] == "categorical"
        assert summary["frequencies"] == {str(k): int(v) for k, v in column.value_counts().items() if v}
    else:
        assert summary["kind"] == "numeric"
        assert summary["mean"] == pytest.approx(column.mean())
    # whylogs on the plain column (categories as text objects) counts the same
    plain = as_text if isinstance(column.dtype, pd.CategoricalDtype) else column
    theirs = why.log(pandas=pd.DataFrame({kind: plain})).view().get_column(kind).get_metric("counts")
    assert (theirs.n.value, theirs.null.value) == (summary["count"], summary["nulls"])


def test_missing_categories_in_parallel_chunks_merge_to_the_whole_frames_counts():
    frame = pd.concat([_frame("some", seed=5), _frame("all", seed=6), _frame("none", seed=7)], ignore_index=True)
    whole = profile_frame(frame)
    chunked = profile_frame(frame, workers=2, chunk_rows=70, parallel_from_rows=100)
    for name in KINDS:
        mine, theirs = column_summary(chunked, name), column_summary(whole, name)
        assert (mine["count"], mine["nulls"], mine["frequencies"]) == (theirs["count"], theirs["nulls"],
                                                                         theirs["frequencies"])
        assert mine["nulls"] == int(frame[name].isna().sum())


# --- defect 4: reference profiles, feature pipeline, fast path ----------------------------------------


@pytest.mark.parametrize("level", list(MISSING_SHARE))
def test_reference_profiles_survive_missing_values_in_every_feature_type(level):
    data = _data_spec()
    train, test = _with_target(_frame(level, seed=1)), _with_target(_frame(level, seed=2), seed=2)
    model = _fitted_pipeline(train, data)
    data_profile, prediction_profile, summary = reference_profiles(model, train, test, 0.5, _spec(data))
    for name in KINDS:
        assert column_summary(data_profile, name)["nulls"] == int(train[name].isna().sum())
    assert column_summary(data_profile, "y")["mean"] == pytest.approx(train["y"].mean())
    assert column_summary(prediction_profile, "score")["count"] == len(test)
    assert summary["label_rate"] == pytest.approx(train["y"].mean())
    assert all(np.isfinite(value) for value in summary["metrics"].values())


@pytest.mark.parametrize("train_level", list(MISSING_SHARE))
def test_feature_pipeline_fits_and_transforms_missing_values_of_every_type(train_level):
    data = _data_spec()
    train = _with_target(_frame(train_level, seed=1))
    preprocessor = fit_preprocessor(train, data)
    width = preprocessor.transform(train[data.model_features]).shape[1]
    for level in MISSING_SHARE:  # what serving may meet, whatever training saw
        encoded = preprocessor.transform(_frame(level, seed=9)[data.model_features])
        assert encoded.shape == (ROWS, width) and np.isfinite(encoded).all()


@pytest.mark.parametrize("train_level", list(MISSING_SHARE))
def test_serving_scores_missing_values_the_same_through_the_pipeline_and_the_fast_path(train_level):
    """Requests arrive as JSON: None for a missing value, categories as text. The pipeline (what
    the scorer falls back to) and the fast path must both answer them, and agree."""
    from keel.serving.fast_path import compile_row_scorer
    from keel.training.fit import predict_scores

    data = _data_spec()
    train = _with_target(_frame(train_level, seed=1))
    model = _fitted_pipeline(train, data)
    records = []
    for level in MISSING_SHARE:
        frame = _frame(level, rows=10, seed=4)
        records += [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                    for row in frame.astype(object).to_dict(orient="records")]
    served = pd.DataFrame(records, columns=data.model_features)  # as keel.serving.scorer builds it
    served[["numeric", "integer"]] = served[["numeric", "integer"]].astype(float)
    scores = predict_scores(model, served)
    assert np.isfinite(scores).all()
    fast = compile_row_scorer(model, train[data.model_features])
    assert fast is not None
    assert np.allclose(fast.scores(records), scores, atol=1e-9)


# --- defect 4: payload contract -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_payload_accepts_a_missing_value_of_a_nullable_feature_and_refuses_it_otherwise(kind):
    from pydantic import ValidationError

    from keel.serving.payload import PayloadError, parse_records, record_model

    good = {"numeric": 1.5, "integer": 3.0, "categorical": "a", "one_category": "only"}
    nullable = record_model(_data_spec())
    assert getattr(parse_records({**good, kind: None}, nullable)[0], kind) is None
    assert getattr(parse_records({k: v for k, v in good.items() if k != kind}, nullable)[0], kind) is None
    rows = parse_records([{k: None for k in good}, {}], nullable)  # every value missing
    assert all(getattr(row, name) is None for row in rows for name in good)
    with pytest.raises(PayloadError):  # NaN is not "missing": JSON has null for that
        parse_records({**good, kind: float("nan")}, nullable)
    strict = record_model(_data_spec(features={**FEATURE_SPECS, kind: {**FEATURE_SPECS[kind], "nullable": False}}))
    with pytest.raises(ValidationError):
        strict.model_validate({**good, kind: None})


# --- defect 4: monitoring windows and drift -------------------------------------------------------


def test_windows_from_the_prediction_log_with_missing_categories_are_profiled_and_compared(tmp_path):
    """Hours where a category is sometimes, always or never missing, as the log's JSON returns them,
    profiled and compared with a reference that has missing values too."""
    from keel.monitoring.drift import feature_drift
    from keel.monitoring.windows import WindowStore
    from keel.serving.prediction_log import PredictionLog

    url = f"sqlite:///{tmp_path / 'log.db'}"
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    rows = []
    for hour, level in enumerate(MISSING_SHARE):
        frame = _frame(level, rows=30, seed=hour)
        for i, record in enumerate(frame.astype(object).to_dict(orient="records")):
            inputs = {k: (None if pd.isna(v) else v) for k, v in record.items()}
            rows.append({"request_id": f"r{hour}-{i}", "row": 0, "entity_id": f"e{hour}-{i}",
                         "time": start + timedelta(hours=hour, minutes=i), "model_name": "m", "model_version": 1,
                         "arm": "champion", "shadow": False, "inputs": inputs, "score": 0.3, "decision": 0,
                         "latency_ms": 1.0})
    PredictionLog(url).append(rows)
    store = WindowStore(tmp_path / "monitoring")
    assert sum(store.add_from_log(url, KINDS).values()) == 90
    reference = profile_frame(_frame("some", seed=11))
    for hour, level in enumerate(MISSING_SHARE):
        window = store.window_profile(1, "hour", start + timedelta(hours=hour))
        expected = _frame(level, rows=30, seed=hour)
        for name in KINDS:
            assert column_summary(window, name)["nulls"] == int(expected[name].isna().sum())
        drift = feature_drift(compare_columns(window, reference, KINDS),
                              _spec(_data_spec()).monitoring.drift.features)
        if level == "all":
            assert set(drift["problems"]) == set(KINDS)
            assert all(p == "all values missing in the window" for p in drift["problems"].values())
        else:
            assert drift["features"]["categorical"]["test"] == "chi-square"
            assert drift["features"]["numeric"]["test"] == "ks"
    whole_day = store.window_profile(1, "day", start)
    assert column_summary(whole_day, "categorical")["nulls"] == sum(
        int(_frame(level, rows=30, seed=h)["categorical"].isna().sum()) for h, level in enumerate(MISSING_SHARE))


def test_a_category_column_that_is_entirely_missing_in_the_reference_is_reported_not_compared():
    reference = profile_frame(_frame("all", seed=1))
    window = profile_frame(_frame("some", seed=2))
    comparisons = compare_columns(window, reference, KINDS)
    assert all(c["problem"] == "all values missing in the reference" for c in comparisons.values())
    assert all(c["p_value"] is None for c in comparisons.values())


# --- defect 5: one encoding of the target ----------------------------------------------------------


TEXT_TARGET = {"column": "income", "positive": ">50K", "negative": "<=50K", "positive_label": "high income"}
INVERTED_INTEGER_TARGET = {"column": "repaid", "positive": 0, "negative": 1, "positive_label": "not repaid"}


def test_target_codes_map_text_and_integer_classes_and_nothing_else():
    text = target_codes(pd.Series([">50K", "<=50K", None, ">50k", "1"]), ">50K", "<=50K")
    assert text.iloc[:2].tolist() == [1, 0] and text.iloc[2:].isna().all()
    inverted = target_codes(pd.Series([0, 1, 1, 0]), 0, 1)
    assert inverted.tolist() == [1, 0, 0, 1]
    spelled = target_codes(pd.Series(["0", "1.0", "0.0", "2", None]), 0, 1)  # a label file's text
    assert spelled.iloc[:3].tolist() == [1, 0, 1] and spelled.iloc[3:].isna().all()
    with pytest.raises(ValueError, match="neither"):
        encode_target(pd.Series([">50K", "maybe"]), _data_spec(target=TEXT_TARGET).target)


@pytest.mark.parametrize("positive,negative", [("True", "False"), (True, False), (1, 0), ("false", "true")])
def test_a_boolean_target_column_matches_its_classes_however_the_spec_spells_them(positive, negative):
    """A CSV column of True/False is read as booleans; `init` declares its classes as the text "True" and
    "False", YAML may say true/false, and 1/0 are its numbers: each spelling is the same class."""
    column = pd.Series([True, False, None, True], dtype="boolean")
    codes = target_codes(column, positive, negative)
    expected = [1, 0, 1] if str(positive).lower() in ("true", "1") else [0, 1, 0]
    assert codes.iloc[[0, 1, 3]].tolist() == expected and codes.isna().tolist() == [False, False, True, False]
    assert target_codes(column, "yes", "no").isna().all()  # spellings of neither truth value match nothing


def _raw_frame(target: dict, rows: int, seed: int) -> pd.DataFrame:
    """Rows as a file gives them: the target in its own spelling, positives where `numeric` is high."""
    rng = np.random.default_rng(seed)
    frame = _frame("some", rows=rows, seed=seed).drop(columns=["one_category"])
    frame["categorical"] = frame["categorical"].astype(object)
    signal = frame["numeric"].fillna(50.0) + rng.normal(0.0, 8.0, rows)
    positive = signal > np.quantile(signal, 0.76)  # about a quarter positive, like the adult data
    frame[target["column"]] = np.where(positive, target["positive"], target["negative"])
    return frame


@pytest.mark.parametrize("target", [TEXT_TARGET, INVERTED_INTEGER_TARGET], ids=["text", "inverted_integer"])
def test_reference_label_rate_and_roc_auc_are_the_true_ones(target):
    from sklearn.metrics import roc_auc_score

    from keel.training.fit import predict_scores

    features = {k: v for k, v in FEATURE_SPECS.items() if k != "one_category"}
    data = _data_spec(target=target, features=features)
    raw_train, raw_test = _raw_frame(target, 600, seed=1), _raw_frame(target, 300, seed=2)
    train, report = validate_frame(raw_train, data)
    test, test_report = validate_frame(raw_test, data)
    assert report.passed and test_report.passed
    model = _fitted_pipeline(train, data)
    _, _, summary = reference_profiles(model, train, test, 0.5, _spec(data))

    truth_train = (raw_train[target["column"]] == target["positive"]).to_numpy()
    truth_test = (raw_test[target["column"]] == target["positive"]).to_numpy()
    assert 0.15 < truth_train.mean() < 0.35  # the test's own data is what it claims
    assert summary["label_rate"] == pytest.approx(truth_train.mean())
    expected_auc = roc_auc_score(truth_test, predict_scores(model, test))
    assert expected_auc > 0.7
    assert summary["metrics"]["roc_auc"] == pytest.approx(expected_auc, abs=1e-6)


@pytest.mark.parametrize("target", [TEXT_TARGET, INVERTED_INTEGER_TARGET], ids=["text", "inverted_integer"])
def test_delayed_labels_go_through_the_training_encoding_and_judge_against_the_true_reference(target, tmp_path):
    """The same raw outcomes, once as training data and once as a labels file: the same 0/1; and the
    window's label rate and ROC AUC are judged against the true reference (no phantom label drift)."""
    from keel.training.fit import predict_scores

    features = {k: v for k, v in FEATURE_SPECS.items() if k != "one_category"}
    data = _data_spec(target=target, features=features)
    train, _ = validate_frame(_raw_frame(target, 600, seed=1), data)
    test, _ = validate_frame(_raw_frame(target, 300, seed=2), data)
    model = _fitted_pipeline(train, data)
    spec = _spec(data)
    _, _, reference = reference_profiles(model, train, test, 0.5, spec)

    production = _raw_frame(target, 400, seed=3)
    path = tmp_path / "labels.csv"
    pd.DataFrame({"entity_id": [f"e{i}" for i in range(len(production))], "label": production[target["column"]],
                  "time": "2026-03-02T12:00:00Z"}).to_csv(path, index=False)
    labels = read_labels(LabelsSpec(source={"kind": "csv", "path": path}), target["positive"], target["negative"])
    encoded, _ = validate_frame(production, data)
    assert labels["label"].astype(int).tolist() == encoded[target["column"]].tolist()

    scores = predict_scores(model, encoded)
    drift = spec.monitoring.drift
    label = label_drift(labels["label"].to_numpy(dtype=int), reference["label_rate"], reference["label_rows"],
                        drift.label, min_rows=10)
    assert label["judged"] and abs(label["change"]) < 0.1 and not label["drifted"]
    performance = performance_drift(labels["label"].to_numpy(dtype=int), scores, 0.5, reference["metrics"],
                                    PerformanceDriftSpec(metric="roc_auc", max_drop=0.05), min_rows=10)
    assert performance["judged"] and np.isfinite(performance["reference"])
    assert abs(performance["drop"]) < 0.1 and not performance["drifted"]


# --- defect 5: a reference that cannot be right is an error ------------------------------------------


def test_a_nan_reference_metric_is_an_error_naming_the_metric_not_a_stable_verdict():
    labels, scores = np.array([0, 1] * 50), np.linspace(0.0, 1.0, 100)
    with pytest.raises(ImplausibleReference, match=r"roc_auc.*evaluate the model version again"):
        performance_drift(labels, scores, 0.5, {"roc_auc": float("nan")},
                          PerformanceDriftSpec(metric="roc_auc", max_drop=0.05), min_rows=10)


@pytest.mark.parametrize("rate", [0.0, 1.0, float("nan"), -0.1])
def test_a_reference_label_rate_that_cannot_be_right_is_an_error(rate):
    with pytest.raises(ImplausibleReference, match="label rate"):
        label_drift(np.array([0, 1] * 50), rate, 1000, LabelDriftSpec(), min_rows=10)


def test_assessing_a_window_against_a_broken_reference_raises_instead_of_reporting_stable():
    spec = _spec(_data_spec())
    window = profile_frame(_frame("some", seed=1).assign(score=np.linspace(0, 1, ROWS), decision=0))
    reference = {"threshold": 0.5, "decision_rate": 0.2, "label_rate": 0.0, "label_rows": 500,
                 "metrics": {"roc_auc": float("nan")}}
    comparisons = compare_columns(window, window, KINDS)
    score = compare_columns(window, window, ["score"])["score"]
    with pytest.raises(ImplausibleReference):
        assess(comparisons, score, 0.0, reference, np.array([0, 1] * 300), np.linspace(0, 1, 600), 5000,
               spec.monitoring.drift)


def test_reference_profiles_refuse_a_target_that_is_not_encoded_or_has_one_class():
    data = _data_spec(target=TEXT_TARGET, features={"numeric": FEATURE_SPECS["numeric"]})
    frame = pd.DataFrame({"numeric": np.linspace(0, 1, 40), "income": [0, 1] * 20})
    model = _fitted_pipeline(frame, data)
    raw = frame.assign(income=np.where(frame["income"] == 1, ">50K", "<=50K"))
    with pytest.raises(ImplausibleReference, match="0/1"):
        reference_profiles(model, raw, frame, 0.5, _spec(data))  # the raw text, never encoded
    one_class = frame.assign(income=0)
    with pytest.raises(ImplausibleReference, match="roc_auc"):
        reference_profiles(model, frame, one_class, 0.5, _spec(data))  # a test split of one class
    with pytest.raises(ImplausibleReference, match="label rate"):
        reference_profiles(model, one_class, frame, 0.5, _spec(data))


@pytest.mark.parametrize("value, bound", [(float("nan"), 0.7), (0.6, float("nan"))])
def test_comparing_nan_with_a_performance_bound_is_an_error(value, bound):
    from keel.monitoring.policy import worse_than

    with pytest.raises(ValueError, match="roc_auc"):
        worse_than(value, bound, "roc_auc")


def test_the_performance_trigger_refuses_a_nan_value_instead_of_staying_quiet():
    from keel.monitoring.policy import evaluate_triggers
    from keel.spec.monitoring import RetrainingSpec

    policy = RetrainingSpec(performance={"metric": "roc_auc", "min": 0.7})
    status = {"performance": {"metric": "roc_auc", "judged": True, "value": float("nan"), "rows": 500}}
    with pytest.raises(ValueError, match="roc_auc"):
        evaluate_triggers(datetime(2026, 3, 2, tzinfo=UTC), status, 0, datetime(2026, 3, 1, tzinfo=UTC), policy)

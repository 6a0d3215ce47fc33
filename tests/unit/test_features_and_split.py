import numpy as np
import pandas as pd
import pytest

from keel.data.generator import generate_credit_applications
from keel.data.schema import validate_frame
from keel.data.split import SplitError, split_frame
from keel.features.preprocessing import fit_preprocessor


@pytest.fixture
def frame(default_spec):
    raw = generate_credit_applications(default_spec.data.source.model_copy(update={"rows": 3000}))
    return validate_frame(raw, default_spec.data)[0]


def test_random_split_is_disjoint_complete_and_stratified(frame, default_spec):
    train, validation, test = split_frame(frame, default_spec.split, "default")
    ids = [set(part["application_id"]) for part in (train, validation, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert sum(map(len, ids)) == len(frame)
    assert (len(train), len(validation), len(test)) == (1800, 600, 600)
    rates = [part["default"].mean() for part in (train, validation, test)]
    assert max(rates) - min(rates) < 0.01


def test_time_split_keeps_the_newest_rows_for_test(frame, default_spec):
    spec = default_spec.split.model_copy(update={"strategy": "time"})
    train, validation, test = split_frame(frame.sample(frac=1, random_state=1), spec, "default",
                                          "application_date")
    assert train["application_date"].max() <= validation["application_date"].min()
    assert validation["application_date"].max() <= test["application_date"].min()


def test_each_splits_period_is_recorded_and_shown_on_the_card_and_annex_iv(default_spec):
    """helper-61: a time-split model's card said only "3600 / 1200 / 1200" rows, never which months each
    split covered (the fraud rate rose from 9.8% in train to 22.8% in test), and Annex IV gave a seed a time
    split ignores."""
    from keel.data.split import periods_text, split_periods
    from keel.governance.annex_iv import documentation_sections
    from tests.unit.test_gate_intervals import card_with

    days = np.repeat(pd.date_range("2025-01-01", periods=30, freq="D", tz="Asia/Kolkata").to_numpy(), 20)
    rows = pd.DataFrame({"when": days, "x": np.arange(600.0), "label": np.tile([0, 1], 300)})
    time_split = default_spec.split.model_copy(update={"strategy": "time"})
    parts = dict(zip(("train", "validation", "test"), split_frame(rows.sample(frac=1, random_state=3), time_split,
                                                                   "label", "when")))
    periods = split_periods(parts, "when")
    assert periods == {"train": ["2024-12-31T18:30:00+00:00", "2025-01-17T18:30:00+00:00"],
                       "validation": ["2025-01-18T18:30:00+00:00", "2025-01-23T18:30:00+00:00"],
                       "test": ["2025-01-24T18:30:00+00:00", "2025-01-29T18:30:00+00:00"]}
    text = periods_text(periods)
    assert text.startswith("train 2024-12-31T18:30:00+00:00 to 2025-01-17T18:30:00+00:00; validation ")

    spec = default_spec.model_copy(update={"split": time_split, "data": default_spec.data.model_copy(
        update={"time_column": "application_date"})})
    metadata = {"rows": {"train": 360, "validation": 120, "test": 120}, "split_periods": periods}
    assert f"| Periods (application_date; split by time) | {text} |" in card_with(spec, training=metadata)
    annex = {item: value for section in documentation_sections(spec, "m", 1, metadata, {}, [])
             for item, value, _ in section["rows"]}
    assert annex["Periods (application_date)"] == text and annex["Split"] == "time, validation 0.2, test 0.2"


def test_a_time_split_cuts_between_days_never_within_one(default_spec):
    """Dated, not timed: 30 days of 20 rows. A cut inside a day put that day's rows in train and in test;
    rows on a cut day now go to the later part (as the dask engine cuts), and times that cannot be cut
    at all (every row on one day) are refused in words."""
    days = np.repeat(pd.date_range("2024-03-01", periods=30, freq="D").to_numpy(), 20)
    rows = pd.DataFrame({"when": days, "x": np.arange(600.0), "label": np.tile([0, 1], 300)})
    split = default_spec.split.model_copy(update={"strategy": "time"})
    train, validation, test = split_frame(rows.sample(frac=1, random_state=2), split, "label", "when")
    assert train["when"].max() < validation["when"].min() and validation["when"].max() < test["when"].min()
    assert len(train) + len(validation) + len(test) == 600 and all(len(p) % 20 == 0 for p in (train, validation, test))
    with pytest.raises(SplitError, match=r"the train and validation split\(s\) would be empty.*1 distinct time"):
        split_frame(rows.assign(when=days[0]), split, "label", "when")


@pytest.mark.parametrize("update,part,hint", [
    ({"strategy": "time"}, "validation", "ordered by time"),   # a rare event, every case in the oldest rows
    ({"stratify": False, "seed": 3}, "validation", "split.stratify: true"),
])
def test_a_part_holding_one_class_is_refused_in_words_before_anything_is_fitted(default_spec, update, part, hint):
    rare = pd.DataFrame({"x": np.arange(600.0), "label": [1] * 4 + [0] * 596, "when": np.arange(600)})
    split = default_spec.split.model_copy(update=update)
    with pytest.raises(SplitError, match=f"the {part} split \\(120 rows\\) holds only one class of 'label'") as error:
        split_frame(rare, split, "label", "when")
    assert hint in str(error.value) and "train: {0: 356, 1: 4}" in str(error.value)
    # With both classes in every part, the same rows split (stratified).
    stratified = default_spec.split.model_copy(update={"stratify": True})
    parts = split_frame(rare.assign(label=[1] * 30 + [0] * 570), stratified, "label", "when")
    assert all(p["label"].nunique() == 2 for p in parts)


def test_a_class_too_rare_to_stratify_is_refused_in_words_not_scikit_learns_traceback(default_spec):
    """helper-48: 3 positives in 888 rows made `check` print scikit-learn's ValueError with its traceback."""
    rare = pd.DataFrame({"x": np.arange(888.0), "readmitted": [1] * 3 + [0] * 885})
    stratified = default_spec.split.model_copy(update={"stratify": True})
    with pytest.raises(SplitError, match=r"stratified by 'readmitted': rows per class \{'0': 885, '1': 3\}"):
        split_frame(rare, stratified, "readmitted")


def test_feature_pipeline_learns_from_training_rows_only(frame, default_spec):
    train, validation, _ = split_frame(frame, default_spec.split, "default")
    fitted = fit_preprocessor(train, default_spec.data)
    numeric = fitted.named_transformers_["numeric"]
    imputer, scaler = numeric.named_steps["simpleimputer"], numeric.named_steps["standardscaler"]
    columns = fitted.transformers_[0][2]
    assert np.allclose(imputer.statistics_, train[columns].median().to_numpy())
    # Wildly different validation rows change nothing that was learned.
    refit = fit_preprocessor(train, default_spec.data)
    validation.loc[:, "income"] = 1e9
    assert np.allclose(refit.named_transformers_["numeric"].named_steps["standardscaler"].mean_,
                       scaler.mean_)
    assert "sex" not in fitted.feature_names_in_ and "default" not in fitted.feature_names_in_


def test_unseen_category_and_missing_values_do_not_break_the_transform(frame, default_spec):
    train, validation, _ = split_frame(frame, default_spec.split, "default")
    fitted = fit_preprocessor(train, default_spec.data)
    odd = validation.head(3).copy()
    odd["region"] = pd.Categorical(["mars", None, "north"])
    odd.loc[:, "income"] = np.nan
    transformed = fitted.transform(odd[default_spec.data.model_features])
    assert np.isfinite(transformed).all()

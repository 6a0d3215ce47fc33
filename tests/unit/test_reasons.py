"""Issue 19 item 1: principal reasons from the model's own contributions (keel.serving.reasons).

A hiring-shaped problem built here: the favourable decision is the positive class ("hired"), so the
reasons of an unfavourable decision are the features that pushed the score DOWN; a churn-shaped one
(favourable negative) the other way. `years_coding` decides most; `zip_code_band` is a proxy."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.pipeline import Pipeline

from keel.features.preprocessing import fit_preprocessor
from keel.serving.fast_path import compile_row_scorer
from keel.serving.reasons import column_contributions, encoded_owners, feature_contributions, principal_reasons
from keel.spec.data import DataSpec
from keel.spec.decisions import DecisionsSpec
from tests.conftest import ROOT

ROWS = 2_000
STATEMENTS = {"years_coding": "Too little coding experience", "test_score": "Technical test score too low"}


def _data() -> DataSpec:
    return DataSpec.model_validate({
        "source": {"kind": "csv", "path": "unused.csv"},
        "target": {"column": "hired", "positive": "yes", "negative": "no"},
        "features": {"years_coding": {"type": "numeric", "min": 0, "nullable": True},
                     "test_score": {"type": "numeric"},
                     "zip_code_band": {"type": "categorical", "categories": ["a", "b", "c"], "nullable": True},
                     "shoe_size": {"type": "numeric"}},
    })


def _frame(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = rng.exponential(4, ROWS)
    score = rng.normal(60, 15, ROWS)
    band = rng.choice(["a", "b", "c"], ROWS)
    logit = 1.2 * (years - 4) + 0.05 * (score - 60) + np.where(band == "a", 0.8, 0.0)
    hired = rng.random(ROWS) < 1 / (1 + np.exp(-logit))
    years[rng.random(ROWS) < 0.05] = np.nan
    return pd.DataFrame({"years_coding": years, "test_score": score, "zip_code_band": band,
                         "shoe_size": rng.normal(42, 2, ROWS), "hired": hired.astype(int)})


def _pipeline(kind: str):
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression

    data, frame = _data(), _frame()
    preprocessor = fit_preprocessor(frame, data)
    model = (LGBMClassifier(n_estimators=60, num_leaves=8, n_jobs=1, verbose=-1, random_state=0) if kind == "lightgbm"
             else LogisticRegression(max_iter=1000))
    model.fit(preprocessor.transform(frame[data.model_features]), frame["hired"])
    pipeline = Pipeline([("features", preprocessor), ("model", model)])
    scorer = compile_row_scorer(pipeline, frame[data.model_features])
    assert scorer is not None
    return data, frame, pipeline, scorer


@pytest.mark.parametrize("kind", ["lightgbm", "logistic"])
def test_contributions_add_up_to_the_score_and_the_deciding_feature_is_the_first_reason(kind):
    data, frame, pipeline, scorer = _pipeline(kind)
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
               for r in frame[data.model_features].head(300).to_dict(orient="records")]
    matrix = scorer.encode(records)
    columns = column_contributions(pipeline.named_steps["model"], matrix)
    owners = encoded_owners(scorer)
    # Each encoded column is owned by the feature scikit-learn names it after (value, indicator, category).
    names = pipeline.named_steps["features"].get_feature_names_out()
    assert len(owners) == len(names) == matrix.shape[1] and all(o in n for o, n in zip(owners, names))
    assert owners.count("years_coding") == 2 and owners.count("zip_code_band") == 3
    per_feature = feature_contributions(columns, owners, data.model_features)
    assert per_feature.shape == (300, 4)
    # Additive in log-odds: contributions plus the model's base value give the score the service gives.
    scores = scorer.scores(records)
    inside = (scores > 1e-6) & (scores < 1 - 1e-6)  # the logit of a score this near 0 or 1 has lost its digits
    base = np.log(scores / (1 - scores)) - per_feature.sum(axis=1)
    assert inside.sum() > 250 and np.ptp(base[inside]) < 1e-6
    declined = [i for i in range(300) if scores[i] < 0.2 and records[i]["years_coding"] is not None
                and records[i]["years_coding"] < 1]
    assert len(declined) > 10
    firsts = [principal_reasons(per_feature[i], data.model_features, toward_positive=False, statements=STATEMENTS,
                                excluded=[], count=2)[0] for i in declined]
    share = sum(r["feature"] == "years_coding" for r in firsts) / len(firsts)
    assert share > 0.8, firsts[:5]
    assert {r["statement"] for r in firsts if r["feature"] == "years_coding"} == {"Too little coding experience"}


def test_only_features_pushing_toward_the_decision_are_reasons_ranked_and_proxies_never():
    features = ["years_coding", "test_score", "zip_code_band", "shoe_size"]
    contributions = np.array([-1.5, 0.4, -2.0, -0.1])
    toward_negative = principal_reasons(contributions, features, False, STATEMENTS, excluded=["zip_code_band"], count=4)
    assert [r["feature"] for r in toward_negative] == ["years_coding", "shoe_size"]
    assert toward_negative[0] == {"feature": "years_coding", "statement": "Too little coding experience",
                                  "contribution": 1.5}
    assert toward_negative[1]["statement"] == "shoe_size"  # no statement declared: named by its column
    toward_positive = principal_reasons(contributions, features, True, STATEMENTS, excluded=[], count=1)
    assert [r["feature"] for r in toward_positive] == ["test_score"]
    assert principal_reasons(np.zeros(4), features, True, STATEMENTS, [], 4) == []


def test_a_model_without_additive_contributions_gives_none():
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=2).fit(np.eye(4), [0, 1, 0, 1])
    assert column_contributions(model, np.eye(4)) is None


@pytest.mark.parametrize("section, problem", [
    ({"refer_band": [0.6, 0.4]}, "0 <= low < high <= 1"),
    ({"refer_band": [0.2, 1.5]}, "0 <= low < high <= 1"),
    ({"reasons": {"income": " "}}, "empty"),
    ({"reasons": {"income": {"higher": "Income above typical", "lower": ""}}}, "empty"),
    ({"reasons": {"income": {"higher": "Income above typical"}}}, "lower"),
    ({"top_reasons": 0}, "greater than or equal to 1"),
    ({"reason": {}}, "reason"),
])
def test_a_wrong_decisions_section_is_one_clear_error(section, problem):
    with pytest.raises(ValidationError) as error:
        DecisionsSpec.model_validate(section)
    assert problem in str(error.value)


def test_a_linear_models_reasons_are_measured_from_the_background_as_explain_measures_them():
    """helper-39 F4: measured from "no category" for one-hot columns, 11 of 84 declined rows ranked their
    reasons otherwise than `/explain`. Now from the background's mean encoded row, as explain_additively."""
    from keel.governance.explanations import explain_additively
    from keel.serving.reasons import ReasonGiver

    _, frame, pipeline, scorer = _pipeline("logistic")
    data = DataSpec.model_validate({**_data().model_dump(mode="json"), "target": {
        "column": "hired", "positive": "yes", "negative": "no", "favourable": "positive"}})
    decisions = DecisionsSpec.model_validate({"top_reasons": 4})
    background = frame[data.model_features].head(200)
    assert ReasonGiver.for_pipeline(pipeline, scorer, data, decisions) is None  # linear: no reference, no reasons
    giver = ReasonGiver.for_pipeline(pipeline, scorer, data, decisions, background=background)
    rows = _frame(seed=1)[data.model_features].head(400)
    given = giver.for_frame(rows)
    explained = explain_additively(pipeline, rows, data, background).contributions.to_numpy()
    expected = [principal_reasons(explained[r], data.model_features, False, {}, [], 4) for r in range(len(rows))]
    assert [[r["feature"] for r in row] for row in given] == [[r["feature"] for r in row] for row in expected]
    np.testing.assert_allclose([r["contribution"] for row in given for r in row],
                               [r["contribution"] for row in expected for r in row], atol=2e-6)
    giver.baseline = None  # the old reference (zeros) ranks some rows otherwise: the test can tell them apart
    assert [[r["feature"] for r in row] for row in giver.for_frame(rows)] != [[r["feature"] for r in row]
                                                                             for row in expected]


def _told(giver, rows, feature):
    """The reasons of `rows` (the same online, as records, and in batch, as a frame) and, for each reason
    naming `feature`, (the row's value, the statement it was given)."""
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
               for r in rows.to_dict(orient="records")]
    online, batch = giver.for_records(records), giver.for_frame(rows)
    assert online == batch
    return online, [(records[i][feature], r["statement"]) for i, given in enumerate(online) for r in given
                    if r["feature"] == feature]


def test_a_sided_statement_names_the_side_of_the_typical_value_the_persons_value_is_on():
    """helper-40 #8: "Amount too high" was given for a low amount that pushed toward decline. A test score far
    from 60 either way lowers the chance of being hired here, so declined people are given `test_score` as a
    reason for a high score and for a low one: each is told the side their own value is on (against the
    median of the background rows), the same online (records) and in batch (frames)."""
    from lightgbm import LGBMClassifier

    from keel.serving.reasons import ReasonGiver

    rng = np.random.default_rng(3)
    frame = _frame()
    frame["test_score"] = rng.normal(60, 15, ROWS)
    logit = 0.6 * (frame["years_coding"].fillna(4) - 4) + 2.0 - 0.01 * (frame["test_score"] - 60) ** 2
    frame["hired"] = (rng.random(ROWS) < 1 / (1 + np.exp(-logit))).astype(int)
    data = DataSpec.model_validate({**_data().model_dump(mode="json"), "target": {
        "column": "hired", "positive": "yes", "negative": "no", "favourable": "positive"}})
    preprocessor = fit_preprocessor(frame, data)
    model = LGBMClassifier(n_estimators=60, num_leaves=8, n_jobs=1, verbose=-1, random_state=0)
    model.fit(preprocessor.transform(frame[data.model_features]), frame["hired"])
    pipeline = Pipeline([("features", preprocessor), ("model", model)])
    background = frame[data.model_features].head(300)
    scorer = compile_row_scorer(pipeline, background)
    sided = {"higher": "Technical test score above the range hired", "lower": "Technical test score too low"}
    decisions = DecisionsSpec.model_validate({"top_reasons": 4, "reasons": {"test_score": sided, **{
        "years_coding": "Too little coding experience"}}})
    giver = ReasonGiver.for_pipeline(pipeline, scorer, data, decisions, background=background)
    typical = float(background["test_score"].median())
    rows = _frame(seed=1)[data.model_features].assign(test_score=rng.normal(60, 25, ROWS)).head(600)
    online, told = _told(giver, rows, "test_score")
    assert {statement for _, statement in told} == set(sided.values())  # both sides were reasons
    assert all(statement == (sided["higher"] if value > typical else sided["lower"]) for value, statement in told)
    assert {r["statement"] for given in online for r in given if r["feature"] == "years_coding"} == {
        "Too little coding experience"}  # one statement whatever the value


def test_a_linear_models_sided_statement_never_contradicts_the_push_it_explains():
    """helper-63: a logistic regression's contributions are measured from the background's mean, but the side
    was chosen against its median: on a skewed feature (years_coding: median ~2.8, mean ~4) a value between
    the two pushed toward decline and was told "above typical". More experience only helps here, so no
    decline names the higher side: the lower one, or the column where the push is its missing indicator's."""
    from keel.serving.reasons import ReasonGiver

    _, frame, pipeline, scorer = _pipeline("logistic")
    data = DataSpec.model_validate({**_data().model_dump(mode="json"), "target": {
        "column": "hired", "positive": "yes", "negative": "no", "favourable": "positive"}})
    sided = {"higher": "Coding experience above typical", "lower": "Too little coding experience"}
    decisions = DecisionsSpec.model_validate({"top_reasons": 4, "reasons": {"years_coding": sided}})
    background = frame[data.model_features].head(500)
    giver = ReasonGiver.for_pipeline(pipeline, scorer, data, decisions, background=background)
    rows = _frame(seed=2)[data.model_features].head(800)
    _, told = _told(giver, rows, "years_coding")
    median, mean = background["years_coding"].median(), background["years_coding"].mean()
    assert {statement for _, statement in told} == {sided["lower"], "years_coding"}
    assert all(statement == sided["lower"] for value, statement in told if value is not None and value < median)
    assert all(statement == "years_coding" for value, statement in told if value is None)
    # where the median misled: between it and the mean, told the lower side (or the column, below)
    assert any(statement == sided["lower"] and median < value < mean for value, statement in told if value is not None)
    assert sided["higher"] not in {statement for _, statement in told}


def test_sided_statements_for_a_categorical_feature_are_a_spec_error():
    from keel.spec import load_spec
    from keel.spec.load import SpecError

    with pytest.raises(SpecError) as error:
        load_spec(ROOT / "configs" / "credit_risk.yaml",
                  ['decisions.reasons.home_ownership={higher: "x", lower: "y"}'])
    assert "home_ownership" in str(error.value) and "categorical" in str(error.value)

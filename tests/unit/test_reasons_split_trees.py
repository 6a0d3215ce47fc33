"""A declined request alone on the loop has its model's trees explained in two halves, one on the idle
reasons thread (keel.serving.reasons.TreeHalves): TreeSHAP values add up over trees, so contributions
and reasons are the whole model's, whichever iterations the model predicts with, and each half has
a booster of its own (two iteration ranges at once on one LightGBM booster mix). On data unlike the
generator: text labels, missing values, an unseen category."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline

from keel.features.preprocessing import fit_preprocessor
from keel.serving.fast_path import compile_row_scorer
from keel.serving.reasons import ReasonGiver, TreeHalves, column_contributions
from keel.spec.data import DataSpec
from keel.spec.decisions import DecisionsSpec

ROWS = 1_500


def _data() -> DataSpec:
    return DataSpec.model_validate({
        "source": {"kind": "csv", "path": "unused.csv"},
        "target": {"column": "outcome", "positive": "readmitted", "negative": "home", "favourable": "negative"},
        "features": {"age": {"type": "numeric", "nullable": True}, "stay_days": {"type": "numeric"},
                     "ward": {"type": "categorical", "categories": ["icu", "surgery", "general"], "nullable": True}},
    })


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 15, ROWS)
    stay = rng.exponential(5, ROWS)
    ward = rng.choice(["icu", "surgery", "general"], ROWS)
    logit = 0.04 * (age - 60) + 0.3 * (stay - 5) + np.where(ward == "icu", 1.0, 0.0)
    outcome = np.where(rng.random(ROWS) < 1 / (1 + np.exp(-logit)), "readmitted", "home")
    age[rng.random(ROWS) < 0.1] = np.nan
    return pd.DataFrame({"age": age, "stay_days": stay, "ward": ward, "outcome": outcome})


def _giver(**model_params):
    data, frame = _data(), _frame(0)
    preprocessor = fit_preprocessor(frame, data)
    params = dict(n_estimators=41, learning_rate=0.3, num_leaves=15, n_jobs=1, verbose=-1, random_state=0)
    model = LGBMClassifier(**{**params, **model_params})
    model.fit(preprocessor.transform(frame[data.model_features]), frame["outcome"] == "readmitted")
    pipeline = Pipeline([("features", preprocessor), ("model", model)])
    scorer = compile_row_scorer(pipeline, frame[data.model_features])
    giver = ReasonGiver.for_pipeline(pipeline, scorer, data, DecisionsSpec.model_validate({"top_reasons": 2}))
    return giver, frame[data.model_features]


def _records(frame: pd.DataFrame) -> list:
    rows = _frame(1)[list(frame.columns)].head(200).to_dict(orient="records")
    rows[0]["ward"] = None
    rows[1]["ward"] = "maternity"  # a category the model never saw
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows]


class _Counted(ThreadPoolExecutor):
    """The reasons thread, counting what it is given."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="beside")
        self.given = 0

    def submit(self, *args, **kwargs):
        self.given += 1
        return super().submit(*args, **kwargs)


@pytest.mark.parametrize("predicts_with", [None, 17], ids=["every-tree", "fewer-than-it-holds"])
def test_the_halves_give_the_whole_model_s_contributions_and_reasons(predicts_with):
    giver, frame = _giver()
    booster = giver.estimator.booster_
    if predicts_with:  # a booster that predicts with fewer iterations than it holds (early stopping)
        booster.best_iteration = predicts_with
    assert giver.split_trees(frame)
    records = _records(frame)
    matrix = giver.scorer.encode(records)
    with _Counted() as beside:
        split = giver.halves.contributions(matrix, beside)
        split_reasons = giver.for_records(records, beside)
        assert beside.given == 2  # the second half was explained on the other thread, both times
    np.testing.assert_allclose(split, column_contributions(giver.estimator, matrix), rtol=0, atol=1e-12)
    # The whole model's contributions plus its bias are its raw score: the halves leave out no tree.
    bias = booster.predict(matrix, pred_contrib=True, num_threads=1)[:, -1]
    np.testing.assert_allclose(split.sum(axis=1) + bias, booster.predict(matrix, raw_score=True), atol=1e-9)
    assert split_reasons == giver.for_records(records)
    assert sum(1 for reasons in split_reasons if reasons) > 20  # reasons given, not only empty lists


def test_halves_that_do_not_add_up_to_the_whole_are_not_used(monkeypatch):
    giver, frame = _giver()
    monkeypatch.setattr("keel.serving.reasons.HALVES_TOLERANCE", -1.0)  # no split can pass the check now
    assert not giver.split_trees(frame)
    records = _records(frame)
    with _Counted() as beside:
        assert giver.for_records(records, beside) == giver.for_records(records)
        assert beside.given == 0  # the whole model, in one call on this thread


def test_a_model_of_one_tree_is_not_split():
    giver, frame = _giver(n_estimators=1)
    assert not giver.split_trees(frame)
    assert giver.halves is None

"""The serving fast path reproduces the fitted pipeline exactly, or is not used."""

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from keel.features.preprocessing import fit_preprocessor
from keel.serving.fast_path import compile_row_scorer
from keel.training.fit import fit_baseline, fit_candidate, predict_scores


@pytest.fixture(scope="module")
def fitted():
    from keel.data.generator import generate_credit_applications
    from keel.data.split import split_frame
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=3000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=30"])
    frame = generate_credit_applications(spec.data.source)
    train, validation, test = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    features = fit_preprocessor(train, spec.data)
    baseline = fit_baseline(features, train, validation, spec.data, spec.training)
    candidate, _ = fit_candidate(features, train, validation, spec.data, spec.training)
    return spec, validation, test, {"logistic_regression": baseline.pipeline, "lightgbm": candidate.pipeline}


def _records(frame: pd.DataFrame):
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


@pytest.mark.parametrize("family", ["logistic_regression", "lightgbm"])
def test_scores_equal_the_pipeline_on_unseen_rows_missing_values_and_unknown_categories(fitted, family):
    spec, validation, test, models = fitted
    pipeline = models[family]
    columns = spec.data.model_features
    scorer = compile_row_scorer(pipeline, validation[columns])
    assert scorer is not None
    rows = test[columns].head(300).astype({c: object for c in scorer.categorical.columns})
    rows.iloc[0, :] = np.nan                      # every value missing
    rows.loc[rows.index[1], "loan_purpose"] = "yacht"  # a category the encoder never saw
    assert rows.isna().any().any()
    records = _records(rows)
    expected = predict_scores(pipeline, rows.astype({c: float for c in scorer.numeric.columns}))
    assert list(rows.columns) == columns
    # One row at a time, BLAS may round the last bit differently (the pipeline's own one-row calls too).
    np.testing.assert_allclose(scorer.scores(records), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([scorer.scores([r]) for r in records[:25]]), expected[:25],
                               rtol=0, atol=1e-12)


class ShiftedScaler(StandardScaler):
    """Looks like a StandardScaler to the compiler but transforms differently."""

    def transform(self, X, copy=None):
        return super().transform(X, copy=copy) + 0.5


def test_a_pipeline_the_fast_path_does_not_reproduce_keeps_the_pipeline(fitted):
    spec, validation, _, models = fitted
    import copy

    pipeline = copy.deepcopy(models["logistic_regression"])
    numeric = pipeline.named_steps["features"].named_transformers_["numeric"]
    fitted_scaler = numeric.steps[1][1]
    shifted = ShiftedScaler()
    shifted.__dict__.update(fitted_scaler.__dict__)
    numeric.steps[1] = ("standardscaler", shifted)
    assert compile_row_scorer(pipeline, validation[spec.data.model_features]) is None


def test_an_unknown_structure_keeps_the_pipeline(fitted):
    spec, validation, _, models = fitted

    class Wrapped:
        feature_names_in_ = models["lightgbm"].feature_names_in_

        def predict_proba(self, frame):
            return models["lightgbm"].predict_proba(frame)

    assert compile_row_scorer(Wrapped(), validation[spec.data.model_features]) is None

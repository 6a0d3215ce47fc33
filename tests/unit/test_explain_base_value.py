"""Explanations say where they start: base value + contributions = the model's raw output (log-odds),
for both model families keel trains, in `/explain` and in `run.py explain`."""

import json

import numpy as np
import pytest
from scipy.special import logit

from keel.deployment.bundle import write_bundle
from keel.governance.explanations import explain_additively, explain_logged
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer
from keel.training.fit import fit_baseline, fit_candidate, predict_scores


@pytest.fixture(scope="module")
def fitted():
    """(spec, validation, test, {family: fitted pipeline}) on 2,000 generated rows."""
    from keel.data.generator import generate_credit_applications
    from keel.data.schema import validate_frame
    from keel.data.split import split_frame
    from keel.features.preprocessing import fit_preprocessor
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=2000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=40"])
    frame, _ = validate_frame(generate_credit_applications(spec.data.source), spec.data)
    train, validation, test = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    features = fit_preprocessor(train, spec.data)
    baseline = fit_baseline(features, train, validation, spec.data, spec.training)
    candidate, _ = fit_candidate(features, train, validation, spec.data, spec.training)
    return spec, validation, test, {"logistic_regression": baseline.pipeline, "lightgbm": candidate.pipeline}


FAMILIES = ["logistic_regression", "lightgbm"]


@pytest.mark.parametrize("family", FAMILIES)
def test_base_value_plus_contributions_is_the_models_log_odds(fitted, family):
    spec, validation, test, models = fitted
    model, rows = models[family], test.head(25)
    explanation = explain_additively(model, rows, spec.data, validation[spec.data.model_features].head(200))
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    # The raw output is checked against the model's own probabilities, not only against itself.
    log_odds = logit(predict_scores(model, rows))
    np.testing.assert_allclose(explanation.raw_output, log_odds, atol=1e-6)
    np.testing.assert_allclose(total, log_odds, atol=1e-6)
    assert list(explanation.contributions.columns) == spec.data.model_features
    assert np.ptp(explanation.base_value) < 1e-9  # one base value for every row: the expected raw output


@pytest.mark.parametrize("family", FAMILIES)
def test_the_contributions_are_the_evaluations_shap_values(fitted, family):
    """The served explanation tells the same story as the explainability report (SHAP itself); up
    to 100 background rows, where SHAP's LinearExplainer uses them all."""
    from keel.evaluation.explainability import shap_contributions

    spec, validation, test, models = fitted
    background = validation[spec.data.model_features].head(100)
    ours = explain_additively(models[family], test.head(10), spec.data, background).contributions
    theirs = shap_contributions(models[family], test.head(10), spec.data, background)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_explain_endpoint_answers_with_the_base_value(tmp_path, fitted, family):
    spec, validation, test, models = fitted
    write_bundle(tmp_path, spec, {1: models[family]}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", validation[spec.data.model_features])
    record = json.loads(test[spec.data.model_features].head(1).to_json(orient="records"))[0]
    answer = Scorer(tmp_path).explain(json.dumps({**record, "entity_id": "e1"}).encode(), {})
    assert answer.status == 200, answer.body
    body = answer.body
    assert body["output"] == "log-odds"
    assert body["base_value"] + sum(body["contributions"].values()) == pytest.approx(body["raw_output"], abs=1e-6)
    assert body["raw_output"] == pytest.approx(float(logit(predict_scores(models[family], test.head(1))[0])),
                                               abs=1e-6)


def test_a_logged_prediction_is_explained_from_its_base_value(fitted):
    spec, validation, test, models = fitted
    model, inputs = models["lightgbm"], json.loads(test[spec.data.model_features].head(1).to_json(orient="records"))[0]
    score = float(predict_scores(model, test.head(1))[0])
    row = {"request_id": "r1", "row": 0, "entity_id": "e1", "model_version": 1, "score": score, "decision": 1,
           "inputs": inputs}
    result = explain_logged(row, model, 0.3, spec.data, validation[spec.data.model_features].head(200), top=3)
    shown = result["base_value"] + sum(c for _, c, _ in result["contributions"]) + result["other_features"]
    assert len(result["contributions"]) == 3
    assert shown == pytest.approx(result["raw_output"], abs=1e-6)
    assert result["raw_output"] == pytest.approx(float(logit(score)), abs=1e-6)

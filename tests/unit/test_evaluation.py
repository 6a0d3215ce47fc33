"""Evaluation dimensions and gates on cases with known answers (in process, no ZenML)."""

import numpy as np
import pytest

from keel.data.generator import generate_credit_applications
from keel.evaluation.comparison import compare
from keel.evaluation.suite import evaluate_all
from keel.spec import load_spec
from keel.spec.evaluation import ComparisonSpec
from keel.training.in_process import train_in_process
from tests.conftest import ROOT

FAST = ["training.candidate.trials=2", "training.candidate.params.n_estimators=60",
        "evaluation.latency.single_row_calls=20", "evaluation.explainability.sample_size=100",
        "evaluation.comparison.bootstrap_samples=200",
        # The latency bars: a loaded CI machine must not decide these tests.
        "evaluation.gates[p95_latency_ms].max=1000", "evaluation.gates[p95_latency_ratio].max=1000"]


def _spec(*overrides, rows=10000):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [f"data.source.rows={rows}", *FAST, *overrides])


def _trained(spec, mutate=None):
    raw = generate_credit_applications(spec.data.source)
    if mutate:
        raw = mutate(raw)
    trained = train_in_process(raw, spec)
    assert trained.validation_report.passed
    return trained


def _failed_metrics(reports):
    return {g["metric"] for g in reports["decision"]["gates"] if not g["passed"]}


@pytest.fixture(scope="module")
def fair():
    spec = _spec()
    trained = _trained(spec)
    return spec, trained, evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec)


def test_default_data_passes_every_gate(fair):
    _, _, reports = fair
    assert reports["decision"]["passed"], reports["decision"]["failed"]
    assert reports["decision"]["decision"] == "promote to staging"


BIASED = "data.source.historical_bias=2.0"


@pytest.fixture(scope="module")
def biased_model():
    """A model trained on strongly biased labels: the fairness gate's and the mitigations' case. Training
    reads no `evaluation.mitigation` setting, so the tests that evaluate or mitigate it under their own
    spec share it (ThresholdOptimizer wraps it prefit: nothing refits it)."""
    return _trained(_spec(BIASED))


def test_strong_historical_bias_fails_the_fairness_gate(biased_model):
    spec, trained = _spec(BIASED), biased_model
    reports = evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec)
    assert "demographic_parity_ratio[sex]" in _failed_metrics(reports)
    assert reports["decision"]["decision"] == "reject"


def test_shuffled_labels_fail_performance():
    spec = _spec()

    def shuffle(frame):
        frame["default"] = np.random.default_rng(0).permutation(frame["default"].to_numpy())
        return frame

    trained = _trained(spec, shuffle)
    reports = evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec)
    assert "roc_auc" in _failed_metrics(reports)
    assert reports["performance"]["metrics"]["roc_auc"] < 0.6


from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402


class Overconfident(ClassifierMixin, BaseEstimator):
    """A deliberately miscalibrated model: pushes every probability of a good model towards 0 or 1."""

    def __init__(self, model=None):
        self.model = model

    def fit(self, frame, y):
        return self

    @property
    def feature_names_in_(self):
        return self.model.feature_names_in_

    @property
    def named_steps(self):
        return self.model.named_steps

    classes_ = np.array([0, 1])

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, frame):
        p = self.model.predict_proba(frame)[:, 1]
        sharpened = p ** 3 / (p ** 3 + (1 - p) ** 3)
        return np.column_stack([1 - sharpened, sharpened])

    def predict(self, frame):
        return (self.predict_proba(frame)[:, 1] >= 0.5).astype(int)


def test_a_miscalibrated_model_fails_calibration_and_recalibration_repairs_it(fair):
    spec, trained, _ = fair
    bad = Overconfident(trained.selected.pipeline)
    reports = evaluate_all(bad, trained.validation, trained.test, spec)
    assert "expected_calibration_error" in _failed_metrics(reports)
    assert reports["calibration"]["expected_calibration_error"] > 0.05
    recalibrated = evaluate_all(bad, trained.validation, trained.test,
                                _spec("evaluation.calibration.method=isotonic"))
    assert recalibrated["calibration"]["expected_calibration_error"] < reports["calibration"]["expected_calibration_error"]
    assert "expected_calibration_error" not in _failed_metrics(recalibrated)


def test_threshold_optimizer_mitigation_turns_the_biased_case_into_a_fairness_pass(biased_model):
    from keel.evaluation.mitigation import mitigate

    spec = _spec(BIASED, "evaluation.mitigation.method=threshold_optimizer",
                 "evaluation.mitigation.constraint=demographic_parity", "evaluation.mitigation.attribute=sex",
                 "evaluation.mitigation.attribute_at_decision_time=true")
    trained = biased_model
    before = evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec)
    after = mitigate(trained.selected.pipeline, trained.train, trained.validation, trained.test, spec, before)
    assert "demographic_parity_ratio[sex]" in _failed_metrics(before)
    gate = {g["metric"]: g for g in after["decision"]["gates"]}["demographic_parity_ratio[sex]"]
    assert gate["passed"], gate
    trade = after["trade_off"]["demographic_parity_ratio[sex]"]
    assert trade["after"] > trade["before"]


def test_fairness_flags_small_groups_instead_of_averaging_them(fair):
    _, _, reports = fair
    intersection = reports["fairness"]["attributes"]["sex x age_band"]
    assert intersection["too_small"], "the 10,000-row sample must have some tiny intersections"
    small = {g["group"] for g in intersection["groups"] if not g["judgeable"]}
    assert small == set(intersection["too_small"])


def test_robustness_and_explainability_reports(fair):
    spec, _, reports = fair
    assert reports["robustness"]["hostile_inputs"]["passed"] is True
    assert set(reports["robustness"]["worst_per_feature"]) == set(spec.data.model_features)
    importance = reports["explainability"]["global_importance"]
    assert set(importance) == set(spec.data.model_features)
    assert reports["explainability"]["sample_size"] == 100
    assert set(reports["explainability"]["by_group"]["sex"]) == {"female", "male"}


def test_threshold_is_chosen_on_validation_by_the_rule(fair):
    spec, trained, reports = fair
    from keel.evaluation.decisions import choose_threshold, value_per_application
    from keel.training.fit import predict_scores

    y = trained.validation["default"].to_numpy()
    scores = predict_scores(trained.selected.pipeline, trained.validation)
    chosen = choose_threshold(y, scores, spec.evaluation.threshold, spec.evaluation.value_matrix)
    assert chosen == reports["threshold"]
    best = value_per_application(y, scores >= chosen["threshold"], spec.evaluation.value_matrix)
    for other in (0.05, 0.3, 0.5, 0.8):
        assert best >= value_per_application(y, scores >= other, spec.evaluation.value_matrix)


# --- champion / challenger on scores with known answers -----------------------------------------

def _scores(strength, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    noise = np.random.default_rng(seed + 1).random(n)
    return y, np.clip((strength * y + noise) / (1 + strength), 0, 1)


def test_identical_models_are_not_better():
    y, s = _scores(0.5)
    result = compare(y, s, s, 0.5, 0.5, "roc_auc", ComparisonSpec(mode="superiority", margin=0.0))
    assert result["better"] is False and result["accepted"] is False
    assert result["ci_low"] == result["ci_high"] == 0.0


def test_a_clearly_better_model_is_accepted_under_superiority():
    y, weak = _scores(0.3)
    _, strong = _scores(0.9)
    result = compare(y, weak, strong, 0.5, 0.5, "roc_auc", ComparisonSpec(mode="superiority", margin=0.0))
    assert result["better"] and result["accepted"] and result["ci_low"] > 0.05


def test_slightly_worse_is_accepted_with_a_wide_margin_and_rejected_with_a_narrow_one():
    y, champion = _scores(0.60)
    _, challenger = _scores(0.57)
    wide = compare(y, champion, challenger, 0.5, 0.5, "roc_auc",
                   ComparisonSpec(mode="non_inferiority", margin=0.05))
    narrow = compare(y, champion, challenger, 0.5, 0.5, "roc_auc",
                     ComparisonSpec(mode="non_inferiority", margin=0.001))
    assert wide["difference"] < 0
    assert wide["accepted"] is True and narrow["accepted"] is False


def test_champion_comparison_in_the_full_evaluation_promotes_a_clearly_better_model(fair):
    spec, trained, _ = fair
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    features = trained.selected.pipeline.named_steps["features"]
    weak = Pipeline([("features", features), ("model", DummyClassifier(strategy="prior"))])
    weak.fit(trained.train[list(trained.selected.pipeline.feature_names_in_)], trained.train["default"])
    champion = {"name": "v0 (production)", "model": weak, "metadata": {}}
    reports = evaluate_all(trained.selected.pipeline, trained.validation, trained.test,
                           _spec("evaluation.comparison.mode=superiority", "evaluation.comparison.margin=0"),
                           champion)
    assert reports["comparison"]["accepted"] and reports["decision"]["passed"]
    assert reports["business"]["baseline_policy"] == "champion"


def test_performance_intervals_contain_the_point_estimate(fair):
    _, _, reports = fair
    for name, value in reports["performance"]["metrics"].items():
        low, high = reports["performance"]["intervals"][name]
        assert low <= value <= high, name


def test_worst_slice_per_feature_is_the_minimum_over_judgeable_slices(fair):
    spec, trained, reports = fair
    from keel.training.fit import predict_scores
    from keel.training.metrics import score

    slices = reports["robustness"]["worst_slice_per_feature"]
    region = slices["region"]
    scores = predict_scores(trained.selected.pipeline, trained.test)
    y = trained.test["default"].to_numpy()
    per_region = {r: score(y[(trained.test["region"] == r).to_numpy()], scores[(trained.test["region"] == r).to_numpy()])["roc_auc"]
                  for r in spec.data.features["region"].categories}
    assert region["slice"] == min(per_region, key=per_region.get)
    assert region["roc_auc"] == pytest.approx(min(per_region.values()), abs=1e-5)


def test_exponentiated_gradient_retrains_under_the_constraint():
    from keel.evaluation.mitigation import mitigate

    spec = _spec("data.source.historical_bias=2.0", "evaluation.mitigation.method=exponentiated_gradient",
                 "evaluation.mitigation.attribute=sex", rows=6000)
    trained = _trained(spec)
    baseline = trained.selected.pipeline
    before = evaluate_all(baseline, trained.validation, trained.test, spec)
    after = mitigate(baseline, trained.train, trained.validation, trained.test, spec, before)
    trade = after["trade_off"]["demographic_parity_ratio[sex]"]
    assert trade["after"] > trade["before"]
    assert after["needs_attribute_at_prediction"] is False


def test_weighted_bootstrap_metrics_equal_scikit_learn_on_duplicated_rows():
    from keel.evaluation.bootstrap import weighted_metrics
    from keel.training.metrics import score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    s = np.round(np.clip((0.4 * y + rng.random(2000)) / 1.4, 0, 1), 3)  # rounded: many ties
    weights = rng.poisson(1.0, (3, 2000)).astype(float)
    fast = weighted_metrics(y, s, 0.4, weights)
    for row in range(3):
        rows = np.repeat(np.arange(2000), weights[row].astype(int))
        slow = score(y[rows], s[rows], 0.4)
        for name, value in slow.items():
            assert fast[name][row] == pytest.approx(value, abs=1e-5), name


def test_a_copy_of_the_champion_compares_equal_to_it_when_the_spec_recalibrates(fair):
    """helper-41: with isotonic recalibration the challenger was recalibrated and the champion was not, at
    a threshold recorded on other scores: a byte-identical retrain was rejected as worse than itself
    (McNemar: 96 rows for the champion, 4 for the challenger)."""
    _, trained, _ = fair
    spec = _spec("evaluation.calibration.method=isotonic")
    champion = {"name": "v1 (production)", "model": trained.selected.pipeline,
                "metadata": {"evaluation": {"threshold": 0.2}}}  # recorded on the scores as trained
    comparison = evaluate_all(trained.selected.pipeline, trained.validation, trained.test, spec, champion)["comparison"]
    assert comparison["difference"] == 0 and comparison["ci_low"] == comparison["ci_high"] == 0
    assert (comparison["mcnemar"]["only_champion_correct"], comparison["mcnemar"]["only_challenger_correct"]) == (0, 0)
    assert comparison["accepted"]  # non-inferiority (margin 0.01 in the demo spec): an equal challenger is not worse

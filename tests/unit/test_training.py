import pytest

from keel.data.generator import generate_credit_applications
from keel.data.schema import validate_frame
from keel.data.split import split_frame
from keel.features.preprocessing import fit_preprocessor
from keel.training.fit import choose_summary, fit_baseline, fit_candidate, model_hash
from keel.training.search import sample_parameters


def _fit(spec):
    frame = validate_frame(generate_credit_applications(spec.data.source), spec.data)[0]
    train, validation, _ = split_frame(frame, spec.split, "default")
    features = fit_preprocessor(train, spec.data)
    baseline = fit_baseline(features, train, validation, spec.data, spec.training)
    candidate, trials = fit_candidate(features, train, validation, spec.data, spec.training)
    return baseline, candidate, trials


def test_training_is_deterministic_to_the_byte(small_spec):
    first, second = _fit(small_spec), _fit(small_spec)
    assert first[1].validation_metrics == second[1].validation_metrics
    assert model_hash(first[1].pipeline) == model_hash(second[1].pipeline)
    assert model_hash(first[0].pipeline) == model_hash(second[0].pipeline)
    assert [t.validation_score for t in first[2]] == [t.validation_score for t in second[2]]


def test_the_model_hash_is_the_same_fitted_here_or_loaded_from_a_store(small_spec):
    """A pickle's bytes depend on which equal objects share memory, and that differs between a model
    fitted in the process and the same model loaded from the artifact store: a version registered from a
    cached training run recorded another hash, and `reproduce` reported non-determinism. The hash is taken
    without pickle's memo; a version recorded with the memo by an earlier keel is still recognised."""
    import pickle

    from keel import registration as keys
    from keel.governance.reproduce import Reproduction, compare
    from keel.training.fit import MEMO_MODEL_SHA256, memo_model_hash

    baseline, candidate, _ = _fit(small_spec)
    for fitted in (baseline.pipeline, candidate.pipeline):
        loaded = pickle.loads(pickle.dumps(fitted, protocol=5))
        assert memo_model_hash(fitted) != memo_model_hash(loaded)  # the difference the memo makes
        assert model_hash(fitted) == model_hash(loaded) == model_hash(pickle.loads(pickle.dumps(loaded)))
    rebuilt = {keys.MODEL_SHA256: model_hash(loaded), MEMO_MODEL_SHA256: memo_model_hash(loaded)}
    for recorded, identical in ((model_hash(loaded), True), (memo_model_hash(loaded), True), ("0" * 64, False)):
        reproduction = Reproduction(retrained=True)
        compare(reproduction, {keys.MODEL_SHA256: recorded}, dict(rebuilt), facts=(keys.MODEL_SHA256,))
        assert reproduction.identical is identical


def test_search_is_seeded_and_records_every_trial(small_spec):
    spec = small_spec.training.candidate
    assert sample_parameters(spec, 1) == sample_parameters(spec, 1)
    assert sample_parameters(spec, 1) != sample_parameters(spec, 2)
    _, candidate, trials = _fit(small_spec)
    assert len(trials) == spec.trials
    assert max(t.validation_score for t in trials) == candidate.validation_metrics["roc_auc"]
    for trial in trials:
        low, high = spec.search_space["num_leaves"].low, spec.search_space["num_leaves"].high
        assert low <= trial.params["num_leaves"] <= high


def test_a_different_seed_gives_a_different_model(small_spec):
    from keel.spec import load_spec
    from tests.conftest import ROOT

    other = load_spec(ROOT / "configs" / "credit_risk.yaml",
                      ["data.source.rows=2000", "training.candidate.trials=2",
                       "training.candidate.params.n_estimators=40", "training.seed=5"])
    assert model_hash(_fit(small_spec)[1].pipeline) != model_hash(_fit(other)[1].pipeline)


@pytest.mark.parametrize("metric,expected", [("roc_auc", "b"), ("log_loss", "a")])
def test_selection_follows_the_metric_direction(metric, expected):
    summaries = [{"name": "a", "params": {}, "validation_metrics": {"roc_auc": 0.7, "log_loss": 0.3}},
                 {"name": "b", "params": {}, "validation_metrics": {"roc_auc": 0.8, "log_loss": 0.4}}]
    assert choose_summary(summaries, metric)["chosen"] == expected


def test_ties_keep_the_first_listed_model():
    summaries = [{"name": "baseline", "params": {}, "validation_metrics": {"roc_auc": 0.8}},
                 {"name": "lightgbm", "params": {}, "validation_metrics": {"roc_auc": 0.8}}]
    assert choose_summary(summaries, "roc_auc")["chosen"] == "baseline"

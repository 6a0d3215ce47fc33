"""`trials: N` without a search space runs one trial, and the log says why (as scikit-learn's
ParameterSampler warns when the space is smaller than n_iter) instead of a silent `trial 1/1`."""

import logging

from keel.spec.training import LightGBMSpec
from keel.training.search import sample_parameters


def test_trials_without_a_search_space_run_once_and_say_why(caplog):
    with caplog.at_level(logging.WARNING, logger="keel.training.search"):
        sets = sample_parameters(LightGBMSpec(trials=2, params={"n_estimators": 40}), seed=0)
    assert sets == [{}]
    assert "1 trial: no search space declared (training.candidate.search_space), trials: 2 has nothing to vary" \
        in caplog.text


def test_one_trial_asked_or_a_search_space_declared_says_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="keel.training.search"):
        assert sample_parameters(LightGBMSpec(trials=1), seed=0) == [{}]
        spaced = LightGBMSpec(trials=3, search_space={"num_leaves": {"type": "int", "low": 8, "high": 64}})
        assert len(sample_parameters(spaced, seed=0)) == 3
    assert "nothing to vary" not in caplog.text

"""The hyperparameter search keeps the best trial in the metric's own direction (the registry's
`improvement`), so a lower-is-better primary metric picks the lowest score."""

import math

from keel.training.search import run_search


def _search(scores, metric):
    sets = [{"trial": i} for i in range(len(scores))]
    trials, best = run_search(sets, lambda params: (scores[params["trial"]], f"model-{params['trial']}"), metric)
    assert [t.validation_score for t in trials] == scores
    return best


def test_higher_is_better_metrics_keep_the_highest_and_the_first_of_ties():
    assert _search([0.70, 0.81, 0.81, 0.60], "roc_auc") == "model-1"


def test_lower_is_better_metrics_keep_the_lowest():
    assert _search([0.52, 0.41, 0.47, 0.41], "log_loss") == "model-1"
    assert _search([0.20, 0.25, 0.18], "brier") == "model-2"


def test_a_failed_score_never_wins_over_a_real_one():
    assert _search([0.70, math.nan, 0.65], "roc_auc") == "model-0"
    assert _search([0.30, math.nan, 0.35], "log_loss") == "model-0"

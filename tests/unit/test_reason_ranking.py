"""top_reasons (a batch chunk at once) ranks as principal_reasons does row by row: ties by name,
excluded features and features pushing the other way never named."""

import numpy as np

from keel.data.screening import flagged_proxies
from keel.serving.reasons import principal_reasons, top_reasons, unfavourable_decision

FEATURES = ["tenure", "plan", "zip_band", "calls", "age"]
STATEMENTS = {"calls": "Many support calls"}


def test_the_vectorised_ranking_equals_the_row_by_row_one():
    rng = np.random.default_rng(4)
    contributions = rng.normal(size=(300, len(FEATURES))).round(1)  # rounded: many ties
    contributions[5] = 0.0
    for toward_positive in (True, False):
        together = top_reasons(contributions, FEATURES, toward_positive, STATEMENTS, ["zip_band", "age"], 3)
        alone = [principal_reasons(row, FEATURES, toward_positive, STATEMENTS, ["zip_band", "age"], 3)
                 for row in contributions]
        assert together == alone
    assert together[5] == [] and top_reasons(np.zeros((0, 5)), FEATURES, True, STATEMENTS, [], 3) == []


def test_the_unfavourable_side_comes_from_the_spec_never_a_default():
    assert unfavourable_decision("negative") == 1 and unfavourable_decision("positive") == 0
    assert unfavourable_decision(None) is None


def test_only_features_screened_as_proxies_on_their_own_are_withheld():
    record = {"proxies": ["zip_band -> ethnicity: alone it tells a group from the rest with AUC 0.912 (threshold 0.8)",
                          "the model's features together -> ethnicity: AUC 0.950 (threshold 0.8)",
                          "plan -> age: alone it tells a group from the rest with AUC 0.850 (threshold 0.8)"]}
    assert flagged_proxies(record, FEATURES) == ["plan", "zip_band"]
    assert flagged_proxies(None, FEATURES) == [] and flagged_proxies({"proxies": []}, FEATURES) == []

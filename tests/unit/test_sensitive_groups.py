"""Sensitive groups from a spec's attributes: binned numbers and text, a missing value its own group."""

import pandas as pd

from keel.data.groups import sensitive_groups
from keel.spec.data import DataSpec


def _data() -> DataSpec:
    return DataSpec.model_validate({
        "source": {"kind": "csv", "path": "unused.csv"},
        "target": {"column": "y", "positive": 1, "negative": 0, "favourable": "positive"},
        "features": {"age": {"type": "numeric"}, "site": {"type": "categorical", "categories": ["n", "s"]}},
        "sensitive_attributes": {"age": {"bins": [18, 25, 65]}, "site": {"categories": ["n", "s"]}},
    })


def test_values_outside_the_bins_are_groups_of_their_own_and_only_a_missing_value_is_missing():
    frame = pd.DataFrame({"age": [17, 18, 24.5, 25, 64.9, 65, 80, None],
                          "site": ["n", "s", None, "n", "s", "n", "s", "n"]})
    groups = sensitive_groups(frame, _data())
    assert groups["age"].tolist() == ["<18", "18-25", "18-25", "25-65", "25-65", ">=65", ">=65", "(missing)"]
    assert groups["site"].tolist() == ["n", "s", "(missing)", "n", "s", "n", "s", "n"]

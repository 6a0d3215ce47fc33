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


def _clinic_spec(nullable: bool):
    """A health table where ethnicity, not a feature, is often not recorded."""
    from keel.spec import validate_spec

    attribute = {"categories": ["asian", "black", "white"], **({"nullable": True} if nullable else {})}
    return validate_spec({
        "problem": {"name": "readmission", "objective": "o", "business_metric": "b",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": "unused.csv"},
                 "target": {"column": "readmitted", "positive": "yes", "negative": "no", "favourable": "negative"},
                 "features": {"stay_days": {"type": "integer", "min": 0}},
                 "sensitive_attributes": {"ethnicity": attribute}}}, "readmission.yaml")


def test_a_nullable_sensitive_attribute_validates_and_its_missing_rows_are_a_group_judged_like_any_other():
    import numpy as np

    from keel.data.schema import validate_frame
    from keel.evaluation.fairness import evaluate_fairness

    rng = np.random.default_rng(8)
    rows = 400
    ethnicity = rng.choice(["asian", "black", "white", None], rows, p=[0.2, 0.2, 0.4, 0.2])
    frame = pd.DataFrame({"stay_days": rng.integers(0, 30, rows), "ethnicity": ethnicity,
                          "readmitted": rng.choice(["yes", "no"], rows)})

    _, report = validate_frame(frame, _clinic_spec(nullable=False).data)
    assert not report.passed and "ethnicity" in report.summary()
    spec = _clinic_spec(nullable=True)
    validated, report = validate_frame(frame, spec.data)
    assert report.passed, report.summary()

    groups = sensitive_groups(validated, spec.data)
    missing = groups["ethnicity"] == "(missing)"
    assert missing.sum() == pd.isna(ethnicity).sum() > 50
    y = validated["readmitted"].to_numpy()
    decisions = np.where(missing, 1, rng.integers(0, 2, rows))  # unrecorded rows are always refused
    fairness = evaluate_fairness(y, decisions, rng.random(rows), groups, spec.data)
    reported = {g["group"]: g for g in fairness["attributes"]["ethnicity"]["groups"]}
    assert reported["(missing)"]["judgeable"] and reported["(missing)"]["selection_rate"] == 0
    assert fairness["demographic_parity_ratio"] == 0


def test_an_attribute_that_is_a_feature_takes_the_features_nullable_and_categories():
    import pytest

    from keel.spec import SpecError, validate_spec

    raw = {"problem": {"name": "p", "objective": "o", "business_metric": "b",
                       "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
           "data": {"source": {"kind": "csv", "path": "unused.csv"},
                    "target": {"column": "y", "favourable": "positive"},
                    "features": {"site": {"type": "categorical", "categories": ["n", "s"]}},
                    "sensitive_attributes": {"site": {"categories": ["n", "s"], "nullable": True}}}}
    with pytest.raises(SpecError, match="declare `nullable: true` on features.site"):
        validate_spec(raw, "p.yaml")
    raw["data"]["sensitive_attributes"]["site"] = {"categories": ["north", "south"]}
    with pytest.raises(SpecError, match=r"lists the categories \['north', 'south'\], but the feature `site` lists"):
        validate_spec(raw, "p.yaml")  # the attribute's categories were ignored: the feature's are used
    raw["data"]["sensitive_attributes"]["site"] = {"categories": ["s", "n"]}
    assert validate_spec(raw, "p.yaml").data.sensitive_attributes["site"].categories == ["s", "n"]

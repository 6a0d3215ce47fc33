"""keel.lifecycle.check (`run.py check` without ZenML) on data unlike the credit generator: a header-less
CSV with `?` for missing and a text target. The sample keeps the file's order; the result carries the
trained model, its gates and the exit code CI acts on."""

import pytest

from tests.conftest import ROOT

CASE = ROOT / "tests" / "data" / "adult_headerless"


def _spec(*overrides):
    from keel.spec import load_spec

    return load_spec(CASE / "spec.yaml", [f"data.source.path={CASE / 'data.csv'}", *overrides])


@pytest.fixture(scope="module")
def sample():
    from keel.lifecycle.check import draw_sample

    return draw_sample(_spec(), 400)


def test_the_sample_is_seeded_and_keeps_the_files_order(sample):
    from keel.lifecycle.check import draw_sample

    assert len(sample) == 400 and sample.index.is_monotonic_increasing
    assert sample.index.equals(draw_sample(_spec(), 400).index)  # the split's seed: the same rows again
    assert len(draw_sample(_spec(), 10_000)) == 700  # a sample larger than the data is all of it


def test_a_passing_check_names_the_model_its_score_and_exits_0(sample):
    from keel.lifecycle.check import check_sample

    result = check_sample(_spec(), sample)
    assert result.error is None and result.model and 0.0 <= result.validation_score <= 1.0
    assert [g["gate"] for g in result.decision["gates"]][:1] == ["roc_auc >= 0.6"]
    assert result.decision["failed"] == [] and result.exit_code == 0


def test_a_failed_gate_exits_3_when_blocking_and_0_when_not(sample):
    from keel.lifecycle.check import check_sample

    from keel.evaluation.gates import describe_decision

    strict = check_sample(_spec("evaluation.gates[roc_auc].min=0.9999"), sample)
    assert strict.decision["failed"] and strict.exit_code == 3
    # the summary line `check` ends with names the gate, not only how many failed
    assert describe_decision(strict.decision) == "reject (1 gate(s) failed: roc_auc >= 0.9999)"
    advisory = check_sample(_spec("evaluation.gates[roc_auc].min=0.9999", "evaluation.blocking=false"), sample)
    assert advisory.decision["failed"] and advisory.exit_code == 0
    assert "1 gate(s) failed: roc_auc >= 0.9999; evaluation.blocking is false" in describe_decision(advisory.decision)


def test_a_sample_that_fails_validation_is_an_error_and_nothing_is_judged(sample):
    from keel.lifecycle.check import check_sample

    broken = sample.assign(income="neither class")  # a target with no declared class
    result = check_sample(_spec(), broken)
    assert result.error and result.decision is None and result.exit_code == 1


def test_screening_runs_as_in_training_a_leaked_feature_is_an_error_when_blocking_and_reported_when_not(sample):
    """A copy of the outcome among the features: `train` stops at readiness under blocking screening, so
    `check` must not pass the same data."""
    import numpy as np

    from keel.lifecycle.check import check_sample

    rng = np.random.default_rng(0)
    leaked = sample.assign(settled=(sample["income"] == ">50K") + rng.normal(0, 0.01, len(sample)))
    feature = "data.features.settled={type: numeric}"
    blocked = check_sample(_spec(feature, "data.screening.blocking=true"), leaked)
    assert blocked.exit_code == 1 and blocked.decision is None
    assert "settled" in blocked.error and "training stops" in blocked.error
    reported = check_sample(_spec(feature), leaked)
    assert reported.error is None and any(f.startswith("settled") for f in reported.screening_findings)
    assert check_sample(_spec(), sample).screening_findings == []

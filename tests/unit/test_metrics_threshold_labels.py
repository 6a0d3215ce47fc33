"""Training metrics say the threshold they were computed at: `run.py train` and `run.py runs` label them,
since evaluation judges the same model at another threshold (the one chosen on validation)."""

import numpy as np
import pytest

from keel.cli.runs import list_runs
from keel.cli.train import training_metrics_table
from keel.spec.problem import METRICS
from keel.training.metrics import DEFAULT_THRESHOLD, THRESHOLD_METRICS, metric_label, score


def _metadata(**extra):
    values = {name: round(0.1 * (i + 1), 3) for i, name in enumerate(METRICS)}
    return {"model_family": "lightgbm", "run_name": "training_run_1", "validation_metrics": dict(values),
            "test_metrics": dict(values), "data_fingerprint": "abc123", "hyperparameters": {"num_leaves": 15},
            **extra}


def test_the_recorded_training_metrics_are_the_ones_at_the_default_threshold():
    """What the label claims: fit_* record `score` at DEFAULT_THRESHOLD, and the decision metrics there differ
    from those at a chosen threshold."""
    from keel.data.generator import generate_credit_applications
    from keel.data.schema import validate_frame
    from keel.data.split import split_frame
    from keel.features.preprocessing import fit_preprocessor
    from keel.spec import load_spec
    from keel.training.fit import fit_baseline, predict_scores
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=2000"])
    frame, _ = validate_frame(generate_credit_applications(spec.data.source), spec.data)
    train, validation, _ = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    fitted = fit_baseline(fit_preprocessor(train, spec.data), train, validation, spec.data, spec.training)
    y, scores = validation[spec.data.target.column], predict_scores(fitted.pipeline, validation)
    assert fitted.validation_metrics == score(y, scores, DEFAULT_THRESHOLD)
    elsewhere = score(y, scores, float(np.quantile(scores, 0.8)))
    assert any(fitted.validation_metrics[name] != elsewhere[name] for name in THRESHOLD_METRICS)
    assert all(fitted.validation_metrics[name] == elsewhere[name] for name in set(METRICS) - THRESHOLD_METRICS)


def test_train_labels_each_decision_metric_with_its_threshold():
    table = training_metrics_table(_metadata(metrics_threshold=0.5))
    for name in METRICS:
        labelled = f"{name} @ 0.5" in table
        assert labelled == (name in THRESHOLD_METRICS), name
    assert "at threshold 0.5;" in table and "decision threshold" in table


def test_a_version_that_did_not_record_its_threshold_is_labelled_as_inferred():
    table = training_metrics_table(_metadata())
    assert f"at threshold {DEFAULT_THRESHOLD:g} (default; not recorded)" in table
    assert metric_label("f1", 0.3) == "f1 @ 0.3" and metric_label("roc_auc", 0.3) == "roc_auc"


@pytest.fixture
def recorded_versions(monkeypatch):
    versions = [{"number": 1, "metadata": _metadata(metrics_threshold=0.5, evaluation={"threshold": 0.3127})},
                {"number": 2, "metadata": _metadata()}]
    monkeypatch.setattr("keel.registry.list_model_versions", lambda name: versions)
    return versions


def test_runs_shows_the_metrics_threshold_and_the_evaluation_threshold(default_spec, recorded_versions, capsys):
    assert list_runs(default_spec, ["test.f1>0"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # The table, after whatever ZenML printed first (a new store announces its default stack).
    start = next(i for i, line in enumerate(lines) if "metrics at" in line)
    header, _, first, second = lines[start:start + 4]
    assert "metrics at" in header and "evaluated at" in header
    assert " 0.5 " in first and "0.3127" in first
    assert "0.5 (default; not recorded)" in second and " - " in second
    assert "f1" in out.splitlines()[-1] and "'metrics at' threshold" in out

"""What `run.py monitor` prints about the monitored metric and about categories the training rows lack:
a performance metric left at its default (roc_auc) while training.primary_metric is another says so;
categories absent from the training rows are not called "unseen" (they may be declared and in the later
splits of a time split)."""

from datetime import datetime, timedelta, timezone

import numpy as np

from keel.cli.monitor import _print_status, monitored_metric_note
from keel.monitoring.drift import assess
from keel.monitoring.policy import decide
from keel.spec import load_spec
from keel.spec.monitoring import PerformanceDriftSpec
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "credit_risk.yaml"
NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)


def _status(spec, tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1)
    column = {"problem": None, "target_null_fraction": 0.0, "reference_null_fraction": 0.0}
    comparisons = {"channel": {**column, "test": "chi2", "p_value": 0.4, "effect": 0.01,
                               "unseen_categories": ["web"]}}
    reference = {"decision_rate": 0.3, "label_rate": 0.5, "label_rows": 1000, "threshold": 0.5,
                 "metrics": {"roc_auc": 0.8, "pr_auc": 0.7}}
    status = assess(comparisons, {"test": "ks", "p_value": 0.5, "effect": 0.01}, 0.31, reference, labels, scores,
                    1000, spec.monitoring.drift)
    window = {"window": "day", "start": NOW.isoformat(), "rows": 1000, "new_rows": 1000}
    labels_report = {"matched": 400, "unknown_ids": 0, "before_prediction": 0}
    return {**status, "window": window, "model_version": 1, "labels": labels_report, "decision_folder": str(tmp_path)}


def _printed(spec, tmp_path, capsys) -> str:
    status = _status(spec, tmp_path)
    decision = decide(NOW, status, 0, NOW - timedelta(hours=1), [], spec.monitoring.retraining, 1)
    _print_status(status, decision, tmp_path / "report.html", spec)
    return capsys.readouterr().out


def _with_default_performance(spec):
    """The spec as if monitoring.drift.performance were not declared (credit_risk.yaml declares it)."""
    drift = spec.monitoring.drift.model_copy(update={"performance": PerformanceDriftSpec()})
    return spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"drift": drift})})


def test_a_default_monitored_metric_other_than_the_primary_metric_is_named_with_why(tmp_path, capsys):
    spec = _with_default_performance(load_spec(CONFIG, ["training.primary_metric=pr_auc"]))
    line = next(line for line in _printed(spec, tmp_path, capsys).splitlines() if line.startswith("performance:"))
    assert line.startswith("performance:    roc_auc ")
    assert ("the default of monitoring.drift.performance.metric, not training.primary_metric pr_auc: declare "
            "pr_auc there and in monitoring.retraining.performance.metric") in line


def test_the_demo_whose_primary_metric_is_monitored_prints_as_before(tmp_path, capsys):
    spec = load_spec(CONFIG)
    assert spec.training.primary_metric == spec.monitoring.drift.performance.metric == "roc_auc"
    assert monitored_metric_note(spec) == ""
    declared = load_spec(CONFIG, ["training.primary_metric=pr_auc"])  # credit_risk.yaml declares roc_auc
    assert monitored_metric_note(declared) == (" (declared in monitoring.drift.performance.metric; "
                                               "training.primary_metric is pr_auc)")


def test_categories_the_training_rows_lack_are_not_called_unseen(tmp_path, capsys):
    printed = _printed(load_spec(CONFIG), tmp_path, capsys)
    assert "unseen" not in printed
    assert "new categories: {'channel': ['web']} absent from the training rows (the model learned nothing" in printed


def test_a_window_too_small_is_not_called_stable_and_every_label_left_out_is_counted(tmp_path, capsys):
    """helper-56: a 20-prediction window printed "prediction: stable" and "data drift: none (0 features
    tested)" though nothing was judged; helper-57: labels with an unreadable time or repeated were left out
    without a word."""
    spec = load_spec(CONFIG)
    status = {**_status(spec, tmp_path), "judged": False, "reason": "20 predictions in the window, fewer than 200"}
    status["labels"] = {**status["labels"], "unreadable_times": 200, "duplicates": 3}
    decision = decide(NOW, status, 0, NOW - timedelta(hours=1), [], spec.monitoring.retraining, 1)
    _print_status(status, decision, tmp_path / "report.html", spec)
    lines = {line.split(":", 1)[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["data drift"] == "data drift:     not judged (20 predictions in the window, fewer than 200)"
    assert lines["prediction"] == "prediction:     not judged"
    assert ("left out: 200 with a time that cannot be read, 3 later labels of a prediction already labelled"
            in lines["labels"])


def test_production_fairness_and_selective_labels_are_printed_with_what_they_rest_on(tmp_path, capsys):
    """helper-59: the console printed no fairness line at all (the report said "pass" for a TPR gap judged
    without the shifted group), and called performance "stable" on outcomes known for 53% of one decision
    and 13% of the other without a word."""
    spec = load_spec(CONFIG)
    status = _status(spec, tmp_path)
    note = ("outcomes are known for 53% of favourable and 13% of unfavourable decisions: labelled metrics "
            "describe mostly the favourable decisions")
    status["production"] = {
        "verdict": "pass", "breaches": [], "not_judged": [],
        "judged_on": ["ethnicity: TPR gap 0.037 judged on asian, hispanic, white; not judged: black "
                      "(3 labelled unfavourable outcomes (< 5))"],
        "label_coverage": {"favourable": 0.53, "unfavourable": 0.13, "selective": True, "note": note}}
    decision = decide(NOW, status, 0, NOW - timedelta(hours=1), [], spec.monitoring.retraining, 1)
    _print_status(status, decision, tmp_path / "report.html", spec)
    printed = capsys.readouterr().out.splitlines()
    start = printed.index("fairness:       pass")
    assert printed[start + 1] == ("  judged        ethnicity: TPR gap 0.037 judged on asian, hispanic, white; "
                                  "not judged: black (3 labelled unfavourable outcomes (< 5))")
    assert printed[start + 2] == (f"CAUTION labels: {note}; performance and label drift above are judged on them")


def test_nothing_about_production_fairness_is_printed_when_it_is_not_watched(tmp_path, capsys):
    spec = load_spec(CONFIG)
    status = {**_status(spec, tmp_path), "production": {"verdict": "not watched", "breaches": [], "not_judged": [],
                                                        "label_coverage": None}}
    decision = decide(NOW, status, 0, NOW - timedelta(hours=1), [], spec.monitoring.retraining, 1)
    _print_status(status, decision, tmp_path / "report.html", spec)
    printed = capsys.readouterr().out
    assert "fairness:" not in printed and "CAUTION" not in printed

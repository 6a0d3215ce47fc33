"""Ctrl+C during a retraining, without pipelines: the retraining is recorded as `interrupted` where
the other outcomes are, `monitor` says so in one line and exits 130, and the cooldown does not count
the interrupted attempt (a decision not acted on by choice, --no-retrain, still counts)."""

from datetime import datetime, timedelta

import pytest

from keel.cli import monitor as monitor_cli
from keel.lifecycle.retraining import INTERRUPTED, INTERRUPTED_EXIT, SKIPPED, retrain_and_roll_out
from keel.lifecycle.training import TrainingResult
from keel.monitoring.policy import decide, last_interrupted, last_retrain, read_history
from keel.spec import load_spec
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "credit_risk.yaml"
DECIDED = datetime.fromisoformat("2026-12-03T22:42:00+00:00")
DRIFTED = {"features": {"drifted": ["income", "credit_utilization"]}, "prediction": {}, "performance": {}}


@pytest.fixture
def spec(tmp_path):
    return load_spec(CONFIG, [f"deployment.folder={tmp_path}", "deployment.allow_folder_outside_project=true"])


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_training_is_recorded_as_interrupted(spec, monkeypatch):
    import keel.lifecycle.training
    from keel.monitoring.monitor import monitoring_folder

    monkeypatch.setattr(keel.lifecycle.training, "train_version", _interrupt)
    result = retrain_and_roll_out(spec, {"time": DECIDED.isoformat(), "fired": ["drift"]}, champion=1)
    assert result.outcome == INTERRUPTED and result["interrupted_during"] == "training"
    assert read_history(monitoring_folder(spec))[-1] == result.record


def test_ctrl_c_during_evaluation_names_the_version_and_the_stage(spec, monkeypatch):
    import keel.lifecycle.evaluation
    import keel.lifecycle.retraining as retraining
    import keel.lifecycle.training
    import keel.registry

    monkeypatch.setattr(keel.lifecycle.training, "train_version",
                        lambda spec: TrainingResult(2, metadata={"model_sha256": "b" * 64}))
    monkeypatch.setattr(keel.registry, "get_model_version_metadata", lambda model, version: {"model_sha256": "a" * 64})
    monkeypatch.setattr(retraining, "same_model_as_rolled_back", lambda spec, trained: None)
    monkeypatch.setattr(keel.lifecycle.evaluation, "evaluate_version", _interrupt)
    result = retrain_and_roll_out(spec, {"time": DECIDED.isoformat(), "fired": ["drift"]}, champion=1)
    assert (result.outcome, result["interrupted_during"], result.new_version) == (INTERRUPTED, "evaluation", 2)


def _history(outcome):
    decision = {"kind": "decision", "time": DECIDED.isoformat(), "retrain": True, "fired": ["drift"]}
    return [decision, {"kind": "retraining", "decision_time": DECIDED.isoformat(), "time": DECIDED.isoformat(),
                       "outcome": outcome}]


def test_an_interrupted_retraining_does_not_start_the_cooldown(spec):
    policy, later = spec.monitoring.retraining, DECIDED + timedelta(minutes=1)
    interrupted = _history(INTERRUPTED)
    assert last_retrain(interrupted) is None and last_interrupted(interrupted)["outcome"] == INTERRUPTED
    decision = decide(later, DRIFTED, 0, DECIDED - timedelta(days=1), interrupted, policy, 1)
    assert decision["retrain"] and decision["suppressed_by"] is None
    for acted_on in ("rolled out", SKIPPED):  # a retrain that ran, or one skipped by choice, still counts
        counted = decide(later, DRIFTED, 0, DECIDED - timedelta(days=1), _history(acted_on), policy, 1)
        assert not counted["retrain"] and counted["suppressed_by"].startswith("cooldown")
        assert last_interrupted(_history(acted_on)) is None


def _monitored(spec, outcome, **record):
    from keel.lifecycle.monitoring import MonitorResult
    from keel.lifecycle.retraining import RetrainingResult
    from keel.monitoring.monitor import monitoring_folder

    retraining = RetrainingResult({"kind": "retraining", "outcome": outcome, **record})
    code = INTERRUPTED_EXIT if outcome == INTERRUPTED else 0
    return MonitorResult(code, status={"decision_folder": str(monitoring_folder(spec))}, retraining=retraining)


def test_monitor_says_in_one_line_what_was_interrupted_and_exits_130(spec, monkeypatch, capsys):
    import keel.lifecycle.monitoring

    monkeypatch.setattr(keel.lifecycle.monitoring, "monitor_once",
                        lambda *args, **kwargs: _monitored(spec, INTERRUPTED, interrupted_during="training"))
    assert monitor_cli.monitor(spec, CONFIG) == INTERRUPTED_EXIT
    assert monitor_cli.monitor(spec, CONFIG, watch=True) == INTERRUPTED_EXIT  # and stops watching
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0] == err[1]
    assert err[0].startswith("keel: retraining interrupted during training; recorded as 'interrupted' in ")
    assert "decisions.jsonl" in err[0] and "Traceback" not in err[0]


def test_monitor_prints_what_a_retraining_came_to(spec, monkeypatch, capsys):
    import keel.lifecycle.monitoring

    outcome = "not rolled out (identical to v2, rolled back by ann at 2026-12-03T22:38:32+00:00 ...)"
    monkeypatch.setattr(keel.lifecycle.monitoring, "monitor_once", lambda *args, **kwargs: _monitored(spec, outcome))
    assert monitor_cli.monitor(spec, CONFIG) == 0
    assert f"retraining:     {outcome}" in capsys.readouterr().out

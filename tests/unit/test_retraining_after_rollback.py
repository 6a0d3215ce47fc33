"""What a retraining's record says, without pipelines: a retrained model identical to a version an
operator rolled back is registered but not rolled out (rolling it out would undo the rollback with no
one deciding it), and the record names only the triggers that caused the retraining."""

import pytest

from keel.governance.audit import DEPLOYMENT_OUTCOME, ROLLBACK, record_event
from keel.lifecycle.retraining import identical_to_rolled_back, operator_rollbacks, retrain_and_roll_out
from keel.lifecycle.training import TrainingResult
from keel.monitoring.policy import alerting_triggers, describe_fired, read_history, retraining_triggers
from keel.spec import load_spec
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "credit_risk.yaml"
HASHES = {1: "a" * 64, 2: "b" * 64}  # the champion's and the rolled-back version's model SHA-256


def _record(seq, event, version, actor="zenml:default", **details):
    return {"seq": seq, "time": f"2026-12-03T22:3{seq}:00+00:00", "actor": actor, "event": event,
            "version": version, "details": details}


# v1 promoted, v2 rolled out by a retraining, then `run.py rollback` back to v1 (the tester's trail)
TRAIL = [_record(1, DEPLOYMENT_OUTCOME, 1, outcome="promoted", challenger=1, serving=1),
         _record(2, DEPLOYMENT_OUTCOME, 2, outcome="promoted", challenger=2, champion=1, serving=2),
         _record(3, ROLLBACK, 2),
         _record(4, DEPLOYMENT_OUTCOME, 1, outcome="restored by rollback", replaced=2, serving=1, by=None)]


def test_the_trail_names_the_versions_an_operator_rolled_back():
    assert operator_rollbacks(TRAIL) == {2: {"by": "zenml:default", "at": "2026-12-03T22:34:00+00:00"}}
    named = TRAIL[:3] + [_record(4, DEPLOYMENT_OUTCOME, 1, outcome="restored by rollback", replaced=2, by="ops-ann")]
    assert operator_rollbacks(named)[2]["by"] == "ops-ann"  # --by, not the command's default actor
    # a canary's own rollback of a challenger is not an operator's decision about a production version
    assert operator_rollbacks(TRAIL[:3]) == {}


def test_deploying_the_version_again_lifts_the_rollback():
    again = TRAIL + [_record(5, DEPLOYMENT_OUTCOME, 2, outcome="promoted", challenger=2, champion=1)]
    assert operator_rollbacks(again) == {}


def test_a_model_identical_to_a_rolled_back_version_says_who_rolled_it_back_and_when():
    reason = identical_to_rolled_back(HASHES[2], operator_rollbacks(TRAIL), HASHES)
    assert reason.startswith("identical to v2, rolled back by zenml:default at 2026-12-03T22:34:00+00:00")
    assert "deploy it explicitly if wanted: python run.py deploy --model-version 2" in reason
    assert identical_to_rolled_back("c" * 64, operator_rollbacks(TRAIL), HASHES) is None
    assert identical_to_rolled_back(None, operator_rollbacks(TRAIL), {2: None}) is None


@pytest.fixture
def retraining(tmp_path, monkeypatch):
    """retrain_and_roll_out with a training that registers v3 with `model_sha256`, the registry's
    hashes of HASHES and the tester's trail in an audit log under tmp_path; evaluating or deploying fails
    the test."""
    import keel.lifecycle.deployment
    import keel.lifecycle.evaluation
    import keel.lifecycle.training
    import keel.registry

    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    spec = load_spec(CONFIG, [f"deployment.folder={tmp_path}", "deployment.allow_folder_outside_project=true"])
    for record in TRAIL:
        record_event(record["event"], spec.problem.name, record["version"], details=record["details"],
                     actor=record["actor"])
    monkeypatch.setattr(keel.registry, "get_model_version_metadata",
                        lambda model, version: {"model_sha256": HASHES.get(version)})

    def must_not_run(*args, **kwargs):
        raise AssertionError("a model identical to a rolled-back version must not be evaluated or rolled out")

    monkeypatch.setattr(keel.lifecycle.evaluation, "evaluate_version", must_not_run)
    monkeypatch.setattr(keel.lifecycle.deployment, "deploy_version", must_not_run)

    def run(model_sha256, decision=None):
        monkeypatch.setattr(keel.lifecycle.training, "train_version",
                            lambda spec: TrainingResult(3, metadata={"model_sha256": model_sha256}))
        return retrain_and_roll_out(spec, decision or {"time": "2026-12-03T22:40:00+00:00", "fired": ["drift"]},
                                    champion=1)

    return spec, run


def test_a_retrained_model_identical_to_a_rolled_back_version_is_registered_not_rolled_out(retraining):
    from keel.monitoring.monitor import monitoring_folder

    from keel.governance.audit import audit_store, read_records

    spec, run = retraining
    result = run(HASHES[2])
    rolled_back_at = read_records(audit_store(spec.problem.name))[-1]["time"][:19]  # when recorded, to the second
    assert result.new_version == 3
    assert result.outcome.startswith(f"not rolled out (identical to v2, rolled back by zenml:default at "
                                     f"{rolled_back_at}+00:00 (model SHA-256 bbbbbbbbbbbb...)")
    assert read_history(monitoring_folder(spec))[-1]["outcome"] == result.outcome


def test_the_champion_comparison_still_comes_first(retraining):
    _, run = retraining
    assert run(HASHES[1]).outcome.startswith("not rolled out (identical to the champion v1")


# --- what caused it -------------------------------------------------------------------------------


def _decision(fairness_retrains):
    return {"time": "2026-12-03T22:40:00+00:00", "fired": ["drift", "fairness"], "retrain": True,
            "triggers": [{"trigger": "drift", "enabled": True, "fired": True, "evidence": {}},
                         {"trigger": "performance", "enabled": True, "fired": False, "evidence": {}},
                         {"trigger": "fairness", "enabled": True, "fired": True,
                          "evidence": {"retrains": fairness_retrains}}]}


def test_a_fairness_trigger_that_only_alerts_did_not_cause_the_retraining():
    alert_only = _decision(fairness_retrains=False)
    assert retraining_triggers(alert_only) == ["drift"] and alerting_triggers(alert_only) == ["fairness"]
    assert describe_fired(alert_only) == "drift, fairness (alert only, does not retrain)"
    assert retraining_triggers(_decision(fairness_retrains=True)) == ["drift", "fairness"]
    assert describe_fired(_decision(fairness_retrains=True)) == "drift, fairness"


def test_the_retraining_record_names_what_caused_it_and_lists_the_alert_apart(retraining):
    _, run = retraining
    record = run(HASHES[1], _decision(fairness_retrains=False)).record
    assert record["triggers"] == ["drift"] and record["fired_not_retraining"] == ["fairness"]
    record = run(HASHES[1], _decision(fairness_retrains=True)).record
    assert record["triggers"] == ["drift", "fairness"] and "fired_not_retraining" not in record

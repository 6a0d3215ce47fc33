"""keel.lifecycle.approval: only a version whose latest evaluation is deployable is approved, and an
approval is recorded on the version; every refusal says why and records nothing."""

import pytest

MODEL = "approval_model"
METADATA = {"model_family": "lightgbm", "primary_metric": "roc_auc",
            "validation_metrics": {"roc_auc": 0.83}, "test_metrics": {"roc_auc": 0.82}}


@pytest.fixture(scope="module")
def versions():
    from keel.evaluation.gates import PROMOTE, REJECT
    from keel.registry import record_evaluation, register_model_version

    passed, rejected, unevaluated = (register_model_version(MODEL, "test model", METADATA, [], None)
                                     for _ in range(3))
    gate = {"gate": "roc_auc >= 0.75", "metric": "roc_auc", "value": 0.83, "passed": True}
    record_evaluation(MODEL, passed, {"decision": PROMOTE, "passed": True, "complete": True, "deployable": True,
                                      "failed": [], "gates": [gate]}, [], promote=True)
    record_evaluation(MODEL, rejected, {"decision": REJECT, "passed": False, "complete": True,
                                        "failed": ["roc_auc >= 0.9"], "gates": [{**gate, "passed": False}]},
                      [], promote=False)
    return {"passed": passed, "rejected": rejected, "unevaluated": unevaluated}


def _approval(version):
    from keel.registry import get_model_version_metadata
    from keel.registration import APPROVAL

    return get_model_version_metadata(MODEL, version).get(APPROVAL)


def test_a_version_that_passed_evaluation_is_approved_and_recorded(versions):
    from keel.lifecycle.approval import approve_version

    result = approve_version(MODEL, versions["passed"], "risk-officer", "TICKET-1")
    assert result.error is None and result.version == versions["passed"]
    assert result.approval["by"] == "risk-officer" and result.approval["reason"] == "TICKET-1"
    assert _approval(versions["passed"]) == result.approval


@pytest.mark.parametrize("which, because", [("rejected", "failed its gates"),
                                            ("unevaluated", "has not been evaluated")])
def test_a_version_that_is_not_deployable_is_refused_and_nothing_recorded(versions, which, because):
    from keel.lifecycle.approval import approve_version

    result = approve_version(MODEL, versions[which], "risk-officer", "TICKET-2")
    assert because in result.error and "cannot be approved for production" in result.error
    assert result.approval is None and _approval(versions[which]) is None


def test_an_unknown_version_or_an_approval_without_who_or_why_is_refused(versions):
    from keel.lifecycle.approval import approve_version

    assert "99" in approve_version(MODEL, 99, "risk-officer", "TICKET-3").error
    for by, reason in (("", "TICKET-3"), ("risk-officer", "  ")):
        result = approve_version(MODEL, versions["passed"], by, reason)
        assert result.approval is None and "who approves" in result.error


def test_a_break_glass_rollback_is_recorded_with_its_reason_and_shown_as_one(versions):
    from keel.governance.audit import audit_store, read_records
    from keel.governance.identity import Identity
    from keel.governance.roles import approval_status
    from keel.governance.timeline import describe_oversight, oversight
    from keel.clock import utc_now
    from keel.lifecycle.approval import record_break_glass

    olga = Identity("olga", "os", "OS account", False, "the password database of ci")
    status = approval_status(versions["passed"], {"run_id": "r1"}, [], [], 1, None, utc_now(), roles={})
    record = record_break_glass(MODEL, versions["passed"], olga, "INC-42: v2 answers 500s", status)
    assert read_records(audit_store(MODEL))[-1] == record
    assert record["event"] == "break_glass" and record["actor"] == "os:olga"
    line = describe_oversight(record)
    assert line.startswith("BREAK-GLASS rollback by os:olga") and "INC-42: v2 answers 500s" in line
    assert "0 of 1 approval(s) count" in line
    (row,) = oversight(read_records(audit_store(MODEL)), versions["passed"])["break_glass"]
    assert row[1] == "os:olga" and row[2] == "OS account, NOT authenticated, by the password database of ci"


def test_a_version_is_deployed_and_batch_scored_only_under_the_contract_it_was_evaluated_under():
    """helper-58: v3 evaluated for `positive: ineligible` was batch-scored under a spec saying `positive:
    eligible` (reasons went to the favourable rows). helper-56/57: a version evaluated under roles was
    released under a spec without them, and one evaluated on ages 18-94 served a spec widened to 0-130."""
    from keel.deployment.deploy import NotDeployable, check_deployable
    from keel.evaluation.gates import PROMOTE
    from keel.evaluation.record import release_contract
    from keel.spec import load_spec
    from tests.conftest import ROOT

    def spec_with(*settings):
        return load_spec(ROOT / "configs" / "credit_risk.yaml", list(settings))

    roles = ["governance.roles={developer: [ann], validator: [ann], approver: [bob], operator: [ann]}",
             "deployment.approval.required=true", "deployment.approval.auto_approve=false"]
    spec = spec_with(*roles)
    evaluation = {"decision": PROMOTE, "status": "finished", "passed": True, "complete": True, "deployable": True,
                  "failed": [], "calibration": "none", "contract": release_contract(spec)}
    check_deployable(3, evaluation, spec)  # the same contract
    check_deployable(3, evaluation, spec_with(*roles, "deployment.port=3999", "data.source.rows=900"))  # not in it
    check_deployable(3, {k: v for k, v in evaluation.items() if k != "contract"}, spec_with())  # recorded before it
    refused = {
        "the target (favourable 'negative' then, 'positive' now)": spec_with(*roles, "data.target.favourable=positive"),
        "who may approve and release it": spec_with(),  # the roles dropped
        "the input contract": spec_with(*roles, "data.features.employment_years.max=130"),
        "the decisions section": spec_with(*roles, "decisions.refer_band=[0.2, 0.3]"),
    }
    for named, other in refused.items():
        with pytest.raises(NotDeployable, match="^this spec changes ") as raised:
            check_deployable(3, evaluation, other)
        assert f"this spec changes {named}" in str(raised.value) and " from what v3 was evaluated under" in str(
            raised.value) and "python run.py evaluate --model-version 3" in str(raised.value)


def test_a_contract_refusal_names_each_key_that_changed_from_the_evaluation_runs_spec(monkeypatch):
    """helper-60: the refusal named whole sections ("another the input contract"), not the widened range."""
    from keel.deployment.deploy import NotDeployable, check_deployable
    from keel.evaluation.gates import PROMOTE
    from keel.evaluation.record import release_contract
    from keel.spec import load_spec
    from tests.conftest import ROOT

    evaluated = load_spec(ROOT / "configs" / "credit_risk.yaml")
    widened = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.features.employment_years.max=130",
                                                               "decisions.refer_band=[0.2, 0.3]"])
    evaluation = {"decision": PROMOTE, "status": "finished", "passed": True, "complete": True, "deployable": True,
                  "failed": [], "calibration": "none", "contract": release_contract(evaluated), "run_id": "run-7"}
    monkeypatch.setattr("keel.lifecycle.reproduction.recorded_spec",
                        lambda run_id: evaluated.model_dump(mode="json") if run_id == "run-7" else None)
    with pytest.raises(NotDeployable) as raised:
        check_deployable(3, evaluation, widened)
    before = evaluated.data.features["employment_years"].max
    assert (f"from what v3 was evaluated under (data.features.employment_years.max: {before:g} -> 130; "
            "decisions.refer_band: - -> 0.2, 0.3)") in str(raised.value)
    monkeypatch.setattr("keel.lifecycle.reproduction.recorded_spec", lambda run_id: None)  # the run is gone
    with pytest.raises(NotDeployable, match=r"from what v3 was evaluated under: what it decides"):
        check_deployable(3, evaluation, widened)


def test_a_version_is_not_evaluated_under_a_spec_naming_its_classes_otherwise(monkeypatch):
    """Its metrics, fairness and threshold would be computed for the other class: refused (exit 4), before
    any pipeline runs, naming what changed."""
    from keel.lifecycle import evaluation
    from keel.spec import load_spec
    from keel.spec.data import target_mapping
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    trained = target_mapping(spec.data.target) | {"positive": "0", "negative": "1"}
    monkeypatch.setattr("keel.registry.get_model_version_metadata", lambda name, version: {"target": trained})
    monkeypatch.setattr("keel.lifecycle.pipeline_runs.run_pipeline", lambda *a, **k: pytest.fail("a pipeline ran"))
    result = evaluation._evaluate_locked(spec, 3, no_cache=False)
    assert result.exit_code == 4 and result.error.startswith(
        "keel: credit_risk v3 was trained with another target than this spec declares (positive '0' then, '1' now; "
        "negative '1' then, '0' now)")


def test_serve_refuses_a_spec_that_changes_the_contract_the_production_version_was_evaluated_under(
        monkeypatch, tmp_path):
    """helper-60: `serve` with a widened range served v2 (a request above what it was evaluated on got 200)
    while deploy and batch scoring refused the same spec. Nothing is bundled or routed."""
    from keel.evaluation.gates import PROMOTE
    from keel.evaluation.record import release_contract
    from keel.lifecycle.deployment import prepare_serving
    from keel.spec import load_spec
    from tests.conftest import ROOT

    folder = tmp_path / "deploy"
    here = [f"deployment.folder={folder}", "deployment.allow_folder_outside_project=true"]
    evaluated = load_spec(ROOT / "configs" / "credit_risk.yaml", here)
    evaluation = {"decision": PROMOTE, "status": "finished", "passed": True, "complete": True, "deployable": True,
                  "failed": [], "calibration": "none", "contract": release_contract(evaluated), "threshold": 0.4}
    monkeypatch.setattr("keel.registry.production_version", lambda name: 2)
    monkeypatch.setattr("keel.registry.evaluation_outcome", lambda name, version: evaluation)
    monkeypatch.setattr("keel.lifecycle.reproduction.recorded_spec", lambda run_id: None)
    widened = load_spec(ROOT / "configs" / "credit_risk.yaml", [*here, "data.features.employment_years.max=130"])
    setup = prepare_serving(widened)
    assert setup.error.startswith("keel: serve refused: this spec changes the input contract (data.features, "
                                  "data.sensitive_attributes) from what v2 was evaluated under")
    assert not folder.exists()


def test_deploying_a_version_no_approval_can_be_given_says_so_instead_of_asking_for_one(monkeypatch):
    """helper-64: `deploy` of a rejected version said "0 of 1 approval(s) count. Approve it with python run.py
    approve ...", which then refused it for its failed gates; the trail and Annex IV kept that advice."""
    import keel.lifecycle.approval as approval
    import keel.registry as registry
    from keel.evaluation.gates import decide
    from keel.governance.roles import ApprovalStatus
    from keel.spec.governance import GovernanceSpec

    governance = GovernanceSpec.model_validate({"roles": {"developer": ["os:bob"], "validator": ["os:bob"],
                                                          "approver": ["os:ann"], "operator": ["os:bob"]}})
    recorded = []
    monkeypatch.setattr(approval, "version_status", lambda *args: ApprovalStatus(1, 1, "eval-1"))
    monkeypatch.setattr(approval, "record_refusal", lambda *args: recorded.append(args[-1]))
    rejected = {**decide([], {}, None), "decision": "reject", "deployable": False, "failed": ["roc_auc >= 0.75"]}
    monkeypatch.setattr(registry, "evaluation_outcome", lambda model, version: rejected)
    message = approval.release_refusal(governance, "fraud", 1, "deploy", None)
    assert message == ("keel: deploy refused: fraud v1: 0 of 1 approval(s) count, and none can be given: v1 failed "
                       "its gates (roc_auc >= 0.75); only versions that passed evaluation are deployable; it cannot "
                       "be approved for production") and recorded == [message]
    monkeypatch.setattr(registry, "evaluation_outcome", lambda model, version: decide([], {}, None))
    assert "Approve it with `python run.py approve --model fraud --version 1" in approval.release_refusal(
        governance, "fraud", 1, "deploy", None)

"""keel.lifecycle.approval's release decisions for deploy and rollback: without roles everything is
cleared as given; with roles an unapproved version is refused (and the refusal recorded), and a
break-glass rollback is recorded before it acts."""

import pytest

MODEL = "clearance_model"
METADATA = {"model_family": "lightgbm", "primary_metric": "roc_auc"}


def _replaced_production(model: str) -> dict:
    """v1 (evaluated, never approved) archived by v2, which is production."""
    from keel.evaluation.gates import PROMOTE
    from keel.registry import promote_to_production, record_deployment, record_evaluation, register_model_version

    first, second = (register_model_version(model, "clearance test", METADATA, [], None) for _ in range(2))
    gate = {"gate": "roc_auc >= 0.75", "metric": "roc_auc", "value": 0.83, "passed": True}
    for version in (first, second):
        record_evaluation(model, version, {"decision": PROMOTE, "status": "finished", "passed": True, "complete": True,
                                           "deployable": True, "failed": [], "gates": [gate],
                                           "run_id": f"evaluation-{version}", "threshold": 0.5}, [], promote=True)
    promote_to_production(model, second)
    record_deployment(model, second, {"outcome": "promoted", "archived": first})
    return {"first": first, "second": second}


@pytest.fixture(scope="module")
def production():
    return _replaced_production(MODEL)


def _governance(roles: bool):
    from keel.spec.governance import GovernanceSpec

    if not roles:
        return GovernanceSpec()
    return GovernanceSpec(roles={"developer": ["dev"], "validator": ["val"], "approver": ["appr"],
                                 "operator": ["olga"]})


def _olga():
    from keel.governance.identity import Identity

    return Identity("olga", "os", "OS account", False, "the password database of ci")


def _events(kind, model=MODEL):
    from keel.governance.audit import audit_store, read_records

    return [r for r in read_records(audit_store(model)) if r["event"] == kind]


def test_without_roles_deploy_and_rollback_are_cleared_as_given(production):
    from keel.lifecycle.approval import deploy_clearance, rollback_clearance

    assert deploy_clearance(_governance(False), MODEL, None, None).refusal is None
    assert deploy_clearance(_governance(False), MODEL, None, None).version is None  # deploy resolves it itself
    cleared = rollback_clearance(_governance(False), MODEL, None)
    assert (cleared.version, cleared.refusal, cleared.broke_glass) == (production["first"], None, False)
    assert _events("refused") == [] and _events("break_glass") == []


def test_with_roles_an_unapproved_version_is_refused_and_the_refusal_recorded(production):
    from keel.lifecycle.approval import deploy_clearance, rollback_clearance

    refused = deploy_clearance(_governance(True), MODEL, None, _olga())
    assert refused.version == production["second"]  # the latest, resolved
    assert refused.refusal.startswith(f"keel: deploy refused: {MODEL} v{production['second']}: 0 of 1 approval(s)")
    assert "`rollback --break-glass" not in refused.refusal
    unknown = deploy_clearance(_governance(True), MODEL, 99, _olga())
    assert unknown.refusal.startswith("keel: ") and "99" in unknown.refusal

    back = rollback_clearance(_governance(True), MODEL, _olga(), "os:olga")
    assert back.version == production["first"] and not back.broke_glass
    assert f"rollback refused: {MODEL} v{production['first']}: 0 of 1 approval(s)" in back.refusal
    assert "an operator may `rollback --break-glass --reason TEXT`" in back.refusal
    assert [(r["details"]["command"], r["actor"]) for r in _events("refused")] == [
        ("deploy", "os:olga"), ("rollback", "os:olga")]
    assert _events("break_glass") == []


def test_a_break_glass_rollback_is_cleared_and_recorded_before_it_acts(production):
    from keel.lifecycle.approval import rollback_clearance

    refusals = len(_events("refused"))
    glass = rollback_clearance(_governance(True), MODEL, _olga(), "os:olga", "INC-7: v2 answers 500s")
    assert (glass.version, glass.refusal, glass.broke_glass) == (production["first"], None, True)
    (record,) = _events("break_glass")
    assert record["version"] == production["first"] and record["actor"] == "os:olga"
    assert record["details"]["reason"] == "INC-7: v2 answers 500s"
    assert record["details"]["replacing"] == production["second"]
    assert "0 of 1 approval(s) count" in record["details"]["approvals"]  # where they stood, checked under roles
    assert len(_events("refused")) == refusals  # broken glass is no refusal


def test_break_glass_with_nothing_to_restore_breaks_no_glass(production):
    from keel.lifecycle.approval import rollback_clearance

    never = "clearance_model_never_deployed"
    cleared = rollback_clearance(_governance(True), never, _olga(), "os:olga", "INC-8")
    assert (cleared.version, cleared.refusal, cleared.broke_glass) == (None, None, False)
    assert _events("break_glass", never) == [] and _events("refused", never) == []


def test_a_version_rejected_since_it_served_is_not_restored_without_breaking_the_glass(default_spec):
    """helper-60: v1, evaluated again and rejected against the production v2, was put back into
    production by a plain `rollback` (no roles), while deploy, approve and batch scoring refused it."""
    from keel.evaluation.gates import REJECT
    from keel.lifecycle.approval import rollback_clearance
    from keel.registry import record_evaluation

    model = "clearance_model_rejected_since"
    first = _replaced_production(model)["first"]
    record_evaluation(model, first, {"decision": REJECT, "status": "finished", "passed": False, "complete": True,
                                     "deployable": False, "failed": ["roc_auc non-inferior to v2"], "gates": [],
                                     "run_id": "evaluation-again", "threshold": 0.5}, [], promote=False)

    refused = rollback_clearance(_governance(False), model, None, spec=default_spec)
    assert refused.version == first and not refused.broke_glass
    assert refused.refusal == (f"keel: rollback refused: v{first} failed its gates (roc_auc non-inferior to v2); only "
                               "versions that passed evaluation are deployable; in an emergency an operator may "
                               "`rollback --break-glass --reason TEXT`")
    assert [r["details"]["command"] for r in _events("refused", model)] == ["rollback"]
    glass = rollback_clearance(_governance(False), model, None, "os:olga", "INC-9: v2 answers 500s", spec=default_spec)
    assert (glass.version, glass.refusal, glass.broke_glass) == (first, None, True)
    assert [r["details"]["reason"] for r in _events("break_glass", model)] == ["INC-9: v2 answers 500s"]

"""keel.governance.roles, keel.governance.identity and the spec's governance.roles: who may run which
command, when approvals count (maker-checker, distinct approvers, bound to one evaluation, expiry),
and which identities a `--by` display name would pass for. Pure rules, no ZenML."""

import os
import pwd
from datetime import datetime, timedelta, timezone

import pytest

from keel.governance.roles import (approval_refusal, approval_status, gate_digest, holds, refusal, roles_of)

ROLES = {"developer": ["alice", "os:root"], "validator": ["vera"], "approver": ["zenml:carol", "dave"],
         "operator": ["olga"]}
NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
EVALUATION = {"run_id": "run-2", "decision": "promote", "deployable": True, "threshold": 0.4,
              "gates": [{"gate": "roc_auc >= 0.75", "metric": "roc_auc", "value": 0.81, "passed": True}]}


def _approval(actor, run="run-2", evaluation=EVALUATION, days_ago=0, identity=True):
    """An approval's details as keel records them under roles (the identity it established) or without."""
    return {"actor": actor, "at": (NOW - timedelta(days=days_ago)).isoformat(), "evaluation_run": run,
            "gates_digest": gate_digest({**evaluation, "run_id": run}), "reason": "T-1",
            **({"identity": {"actor": actor}} if identity else {})}


def test_an_entry_names_an_account_of_any_source_unless_qualified():
    assert holds("alice", "zenml:alice") and holds("alice", "os:alice")
    assert holds("zenml:carol", "zenml:carol") and not holds("zenml:carol", "os:carol")
    assert not holds("alice", "zenml:alicia")
    assert roles_of(ROLES, "os:root") == ["developer"] and roles_of(ROLES, "os:carol") == []


@pytest.mark.parametrize("command, actor", [("train", "os:alice"), ("evaluate", "zenml:vera"),
                                            ("approve", "zenml:carol"), ("deploy", "zenml:olga"),
                                            ("rollback", "os:olga")])
def test_a_command_runs_for_a_holder_of_one_of_its_roles(command, actor):
    assert refusal(ROLES, command, actor) is None


def test_a_refusal_names_the_role_needed_and_who_holds_it():
    message = refusal(ROLES, "approve", "os:carol", authenticated=False)  # carol holds it on the server only
    assert message.startswith("keel: approve refused: it needs the role approver")
    assert "os:carol (an unauthenticated OS account) does not hold" in message
    assert "approver: zenml:carol, dave" in message
    assert "developer or validator" in refusal(ROLES, "train", "zenml:olga")
    assert "operator: olga" in refusal(ROLES, "rollback", "zenml:alice")


def test_the_trainer_or_the_evaluator_may_not_approve():
    makers = {"trained": ["os:alice"], "evaluated": ["zenml:vera"]}
    assert "os:alice trained this version" in approval_refusal("os:alice", makers)
    assert "evaluated" in approval_refusal("zenml:vera", makers)
    assert approval_refusal("zenml:carol", makers) is None


def test_approvals_count_per_distinct_approver_up_to_the_quorum():
    approvals = [_approval("zenml:carol"), _approval("zenml:carol"), _approval("zenml:dave")]
    one = approval_status(3, EVALUATION, approvals[:2], [], required=2, valid_days=None, now=NOW, roles=ROLES)
    assert not one.approved and one.approvers == ["zenml:carol"] and "same approver" in one.void[0][1]
    both = approval_status(3, EVALUATION, approvals, [], required=2, valid_days=None, now=NOW, roles=ROLES)
    assert both.approved and both.approvers == ["zenml:carol", "zenml:dave"]
    assert "2 of 2 approval(s) count" in both.summary()


def test_a_later_evaluation_voids_the_approvals_of_the_one_before():
    approvals = [_approval("zenml:carol", run="run-1")]
    status = approval_status(3, EVALUATION, approvals, [], required=1, valid_days=None, now=NOW, roles=ROLES)
    assert not status.approved and "void: it approved evaluation run run-1" in status.void[0][1]
    # The same run id with other gate results (a record edited after the approval) does not count either.
    edited = {**EVALUATION, "gates": [{**EVALUATION["gates"][0], "value": 0.70, "passed": False}]}
    assert not approval_status(3, edited, [_approval("zenml:carol")], [], 1, None, NOW, roles=ROLES).approved
    assert approval_status(3, EVALUATION, [_approval("zenml:carol")], [], 1, None, NOW, roles=ROLES).approved


def test_approvals_expire_after_the_declared_days_and_a_maker_never_counts():
    fresh, stale = _approval("zenml:carol", days_ago=29), _approval("zenml:dave", days_ago=30)
    status = approval_status(3, EVALUATION, [fresh, stale], [], required=2, valid_days=30, now=NOW, roles=ROLES)
    assert status.approvers == ["zenml:carol"] and "expired" in status.void[0][1]
    assert approval_status(3, EVALUATION, [fresh, stale], [], 2, None, NOW, roles=ROLES).approved  # no expiry declared
    made = approval_status(3, EVALUATION, [fresh], ["zenml:carol"], 1, None, NOW, roles=ROLES)
    assert not made.approved and "maker-checker" in made.void[0][1]


def test_an_approval_from_before_maker_checker_or_of_no_evaluation_does_not_count():
    legacy = {"actor": "risk-officer", "by": "risk-officer", "reason": "T", "at": NOW.isoformat()}
    assert not approval_status(3, EVALUATION, [legacy], [], 1, None, NOW, roles=ROLES).approved
    assert not approval_status(3, None, [_approval("zenml:carol")], [], 1, None, NOW, roles=ROLES).approved


def test_the_gate_digest_changes_with_any_gate_result_and_not_with_key_order():
    digest = gate_digest(EVALUATION)
    assert gate_digest(dict(reversed(list(EVALUATION.items())))) == digest
    assert gate_digest({**EVALUATION, "threshold": 0.41}) != digest
    assert gate_digest({**EVALUATION, "run_id": "run-3"}) != digest


# --- the spec ------------------------------------------------------------------------------------

def _spec(*overrides):
    from tests.conftest import ROOT
    from keel.spec import load_spec

    roles = [f"governance.roles.{role}=[{', '.join(names)}]" for role, names in ROLES.items()]
    return load_spec(ROOT / "configs" / "credit_risk.yaml", ["deployment.approval.auto_approve=false", *roles,
                                                             *overrides])


def test_the_spec_takes_roles_and_refuses_a_role_nobody_holds_or_a_quorum_never_met():
    from keel.spec import SpecError

    assert _spec().governance.roles["approver"] == ["zenml:carol", "dave"]
    assert _spec("governance.required_approvals=2").governance.required_approvals == 2
    with pytest.raises(SpecError, match="required_approvals is 3 but roles.approver names only 2"):
        _spec("governance.required_approvals=3")
    with pytest.raises(SpecError, match="none holds operator"):
        _spec("governance.roles.operator=[]")
    with pytest.raises(SpecError, match="not account names"):
        _spec("governance.roles.developer=['alice; rm -rf /']")
    with pytest.raises(SpecError, match="auto_approve false"):
        _spec("deployment.approval.auto_approve=true")
    with pytest.raises(SpecError, match="expected one of developer, validator, approver, operator"):
        _spec("governance.roles.auditor=[x]")


# --- identity ------------------------------------------------------------------------------------

def test_the_os_identity_is_the_effective_uid_account_not_the_user_variables(monkeypatch):
    from keel.governance.identity import os_identity

    monkeypatch.setenv("USER", "dave")
    monkeypatch.setenv("LOGNAME", "dave")
    me = os_identity()
    assert me.name == pwd.getpwuid(os.geteuid()).pw_name and me.actor == f"os:{me.name}"
    assert me.authenticated is False and "NOT authenticated" in me.describe()


def test_a_display_name_that_names_another_identity_is_refused_and_ones_own_or_a_plain_name_is_not():
    from keel.governance.identity import Identity, other_identities_named

    me = Identity("mallory", "os", "OS account", False, "this host")
    other_account = next(p.pw_name for p in pwd.getpwall() if p.pw_name != "mallory")
    assert other_identities_named(other_account, me) == [f"os:{other_account}"]
    assert other_identities_named("dave", me, ["dave", "zenml:carol"]) == ["dave"]
    assert other_identities_named("zenml:carol", me, ["dave", "zenml:carol"]) == ["zenml:carol"]
    assert other_identities_named("Mallory M. (risk desk)", me, ["dave"]) == []
    assert other_identities_named("mallory", me, ["dave"]) == [] and other_identities_named("os:mallory", me) == []


def test_only_an_approver_under_the_roles_in_force_counts_never_a_bare_name():
    """helper-40: `approve --set governance.roles=null` recorded a name anyone could give, and deploy under
    the roles counted it."""
    for actor in ("nobody", "os:olga", "dave"):  # a bare name; an operator; the approver's name, unqualified
        status = approval_status(3, EVALUATION, [_approval(actor)], [], 1, None, NOW, roles=ROLES)
        assert not status.approved and "does not hold the approver role" in status.void[0][1]
    assert approval_status(3, EVALUATION, [_approval("os:dave")], [], 1, None, NOW, roles=ROLES).approved
    # $KEEL_ACTOR=os:dave under a spec without roles: the approver's name, but no identity keel established.
    named = approval_status(3, EVALUATION, [_approval("os:dave", identity=False)], [], 1, None, NOW, roles=ROLES)
    assert not named.approved and "a name as given, not an identity" in named.void[0][1]
    assert not holds("dave", "dave") and roles_of(ROLES, "nobody") == []

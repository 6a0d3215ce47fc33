"""Roles and maker-checker on the local stack with two real OS accounts (issue 18).

The local stack's identity is the OS account of the process (its effective uid), so a second identity
is a second OS account: the test runs as root and forks a child that drops to `nobody` (setgid/setuid,
no environment override of any kind) before running `run.py approve|train` in-process. The ZenML store
and the audit trail live in a folder both accounts may write (umask 0 while the module runs).

The version is registered and evaluated with the registry functions the training and evaluation
pipelines' steps call (the pipelines themselves are tested elsewhere; here only who acts matters), while
root's identity is established, as `train` and `evaluate` establish it."""

import os
import pwd
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

MODEL = "roles_local"
OTHER = "nobody"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A ZenML store and trail both OS accounts can write; the spec's overrides naming both."""
    if os.geteuid() != 0:
        pytest.skip("acting as a second OS account needs root (setuid); run the suite as root, e.g. in CI's container")
    from tests.conftest import _use_zenml_config

    folder = Path(tempfile.mkdtemp(prefix="keel-roles-"))
    folder.chmod(0o777)
    umask = os.umask(0)
    _use_zenml_config(folder / "config")
    from zenml.client import Client

    Client().active_stack_model
    me = pwd.getpwuid(os.geteuid()).pw_name
    overrides = [f"problem.name={MODEL}", "deployment.approval.auto_approve=false",
                 f"governance.roles.developer=[{me}]", f"governance.roles.validator=[{me}]",
                 f"governance.roles.approver=[{me}, {OTHER}]", f"governance.roles.operator=[{me}]",
                 f"deployment.folder={folder / 'deployments'}", "deployment.allow_folder_outside_project=true",
                 f"governance.documentation_folder={folder / 'reports'}"]
    yield {"folder": folder, "me": me, "args": ["--config", str(ROOT / "configs" / "credit_risk.yaml"),
                                               *[a for o in overrides for a in ("--set", o)]]}
    os.umask(umask)
    from keel.governance.identity import establish

    establish(None)
    shutil.rmtree(folder, ignore_errors=True)


def shared_folder() -> Path:
    return Path(os.environ["ZENML_CONFIG_PATH"]).parent


def _as_root(capsys, argv):
    from keel.cli.main import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _as_other(argv):
    """`run.py ARGV` in a forked child that has become the OS account OTHER: (exit code, output)."""
    account = pwd.getpwnam(OTHER)
    # keel writes each file atomically through a private temporary file (mode 0600 whatever the umask),
    # so a store two OS accounts share needs its permissions opened, as a team's shared folder would.
    for path in [shared_folder(), *shared_folder().rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, then run the command
        code = 99
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            sys.stdout = sys.stderr = os.fdopen(write, "w", buffering=1)
            from zenml.client import Client
            from zenml.config.global_config import GlobalConfiguration

            GlobalConfiguration._reset_instance()  # no connection inherited from root's process
            Client._reset_instance()
            from keel.cli.main import main

            code = main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as output:
        text = output.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


def _evaluate_as_root(version, run_id):
    from keel.evaluation.gates import PROMOTE
    from keel.registry import record_evaluation

    gate = {"gate": "roc_auc >= 0.75", "metric": "roc_auc", "value": 0.83, "passed": True}
    record_evaluation(MODEL, version, {"decision": PROMOTE, "status": "finished", "passed": True, "complete": True,
                                       "deployable": True, "failed": [], "gates": [gate], "run_id": run_id,
                                       "threshold": 0.5}, [], promote=True)


def test_maker_checker_with_two_os_accounts(shared, capsys):
    from keel.governance.audit import TRAINING_REGISTERED, audit_store, read_records, record_event
    from keel.governance.identity import establish, os_identity
    from keel.registry import register_model_version

    me, args = shared["me"], shared["args"]
    establish(os_identity())  # as `train` and `evaluate` do for root
    version = register_model_version(MODEL, "roles test", {"model_family": "lightgbm"}, [], None)
    record_event(TRAINING_REGISTERED, MODEL, version, "training-run-1")
    _evaluate_as_root(version, "evaluation-run-1")
    approve = ["approve", *args, "--model", MODEL, "--version", str(version), "--reason", "RISK-1"]

    code, out = _as_root(capsys, approve)
    assert code == 1 and f"maker-checker: os:{me} trained and evaluated this version" in out
    code, out = _as_root(capsys, [*approve, "--by", OTHER])
    assert code == 1 and f"--by '{OTHER}' names another identity (" in out and f"os:{OTHER})" in out

    code, out = _as_other(["train", *args])
    assert code == 1, out
    assert f"train refused: it needs the role developer or validator, which os:{OTHER} (an unauthenticated OS " \
           f"account) does not hold (governance.roles: developer: {me}; validator: {me})" in out

    code, out = _as_other([*approve, "--by", "Nobody N."])
    assert code == 0, out
    assert f"approved {MODEL} v{version} by os:{OTHER} (Nobody N.)" in out
    assert "1 of 1 approval(s) count (os:nobody): APPROVED for production" in out

    records = read_records(audit_store(MODEL))
    (approval,) = [r for r in records if r["event"] == "approved"]
    assert approval["actor"] == f"os:{OTHER}" and approval["details"]["evaluation_run"] == "evaluation-run-1"
    assert approval["details"]["identity"]["authenticated"] is False
    assert [(r["details"]["command"], r["actor"]) for r in records if r["event"] == "refused"] == [
        ("approve", f"os:{me}"), ("approve", f"os:{me}"), ("train", f"os:{OTHER}")]

    # Evaluated again: the approval is void, and deploy refuses the version before any rollout.
    _evaluate_as_root(version, "evaluation-run-2")
    code, out = _as_root(capsys, ["deploy", *args, "--model-version", str(version)])
    assert code == 1 and f"deploy refused: {MODEL} v{version}: 0 of 1 approval(s) count" in out
    assert "void: it approved evaluation run evaluation-run-1" in out
    assert not (shared["folder"] / "deployments").exists()

    # Roles switched off for one command: the approval is recorded under the name given, and never counts.
    os.environ["KEEL_ACTOR"] = f"os:{OTHER}"
    try:
        code, out = _as_root(capsys, [*approve, "--set", "governance.roles=null"])
    finally:
        del os.environ["KEEL_ACTOR"]
    assert code == 0, out
    code, out = _as_root(capsys, ["deploy", *args, "--model-version", str(version)])
    assert code == 1 and f"deploy refused: {MODEL} v{version}: 0 of 1 approval(s) count" in out
    assert f"os:{OTHER} is a name as given, not an identity keel established" in out
    assert not (shared["folder"] / "deployments").exists()

    code, out = _as_other([*approve, "--by", "Nobody N."])  # re-approved on the new evaluation
    assert code == 0 and "APPROVED for production" in out, out

    # A rollback restores a version only while its approvals count; otherwise only by breaking the glass.
    from keel.registry import promote_to_production, record_deployment

    second = register_model_version(MODEL, "roles test", {"model_family": "lightgbm"}, [], None)
    promote_to_production(MODEL, second)
    record_deployment(MODEL, second, {"outcome": "promoted", "archived": version})
    _evaluate_as_root(version, "evaluation-run-3")
    code, out = _as_root(capsys, ["rollback", *args])
    assert code == 1 and f"rollback refused: {MODEL} v{version}: 0 of 1 approval(s) count" in out
    assert "an operator may `rollback --break-glass --reason TEXT`" in out
    assert not (shared["folder"] / "deployments").exists()
    from keel.governance.identity import establish as reset

    reset(None)

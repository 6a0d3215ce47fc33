"""The same training and evaluation pipelines, unchanged, on the local stack and on the remote stack
(a ZenML server on MariaDB, artifacts in an S3 bucket), chosen only by `--stack`. On remote, the runs
are in MariaDB and the artifacts in the bucket; on local, in the local SQLite store and folder.
Training is deterministic, so both stacks produce the same model."""

import re
import sqlite3

import pytest

from keel.stacks.load import STACKS_DIR
from tests.support.servers import run_keel

SMALL = ["--set", "data.source.rows=2000", "--set", "training.candidate.trials=2",
         "--set", "training.candidate.params.n_estimators=40",  # as tests/conftest.py's small_spec
         # The stacks are under test, not the evaluation's measurements (they have their own tests): fewer calls.
         "--set", "evaluation.latency.single_row_calls=20", "--set", "evaluation.latency.max_rounds=1",
         "--set", "evaluation.explainability.sample_size=50", "--set", "evaluation.robustness.max_rows=500"]
STACKS = ("remote", "local")
RUNS_SQL = "SELECT p.name, r.status FROM pipeline_run r JOIN pipeline p ON r.pipeline_id = p.id ORDER BY r.created"


def _run(services, args):
    result = run_keel(args, services.env, services.work)
    assert result.returncode in (0, 3), f"{args}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def _local_runs(services):
    database = services.work / "client-zenml" / "local_stores" / "default_zen_store" / "zenml.db"
    with sqlite3.connect(database) as connection:
        return connection.execute(RUNS_SQL).fetchall()


@pytest.fixture(scope="module")
def trained(remote_services):
    """Each stack applied from its file, then the training pipeline run on it: {stack: model sha256}."""
    hashes = {}
    for stack in STACKS:
        applied = _run(remote_services, ["stack", "apply", str(STACKS_DIR / f"{stack}.yaml")])
        assert f"stack '{stack}' created, active" in applied.stdout
        train = _run(remote_services, ["train", "--stack", stack, *SMALL])
        assert train.returncode == 0 and f"keel: running on stack '{stack}'" in train.stdout
        hashes[stack] = re.search(r"model version:\s+credit_risk v1 \(\w+, sha256 ([0-9a-f]+)", train.stdout).group(1)
    return hashes


@pytest.mark.integration
def test_training_runs_unchanged_on_remote_and_local(remote_services, trained):
    assert remote_services.database.query(RUNS_SQL) == [("training_pipeline", "completed")]
    in_bucket = {key.split("/")[0] for key in remote_services.s3.keys(remote_services.bucket)}
    assert {"ingest_step", "validate_step", "split_step", "fit_features_step", "register_model_step"} <= in_bucket
    assert _local_runs(remote_services) == [("training_pipeline", "completed")]
    assert {"ingest_step", "register_model_step"} <= {p.name for p in (remote_services.work / "local-artifacts").iterdir()}
    assert trained["remote"] == trained["local"]  # the same code and data on both stacks: the same model


@pytest.mark.integration
def test_evaluation_runs_unchanged_on_remote_and_local(remote_services, trained):
    for stack in STACKS:
        evaluate = _run(remote_services, ["evaluate", "--stack", stack, *SMALL])  # 3: a gate failed; it ran
        assert "evaluation run: evaluation_pipeline-" in evaluate.stdout
    expected = [("training_pipeline", "completed"), ("evaluation_pipeline", "completed")]
    assert remote_services.database.query(RUNS_SQL) == expected
    assert _local_runs(remote_services) == expected
    in_bucket = {key.split("/")[0] for key in remote_services.s3.keys(remote_services.bucket)}
    assert {"performance_step", "fairness_step", "gates_step", "model_card_step"} <= in_bucket


# --- who may do what (issue 18): two real identities of the server -----------------------------------

ROLES = ["--set", "governance.roles.developer=[keel-ci]", "--set", "governance.roles.validator=[keel-ci]",
         "--set", "governance.roles.approver=[keel-ci, keel-approver]", "--set", "governance.roles.operator=[keel-ci]",
         "--set", "deployment.approval.auto_approve=false", "--set", "evaluation.blocking=false"]


def _keel(services, args, env=None):
    return run_keel(args, env or services.env, services.work)


def _records(services, event):
    """The remote stack's audit records of `event`, read back through `audit log`'s own reader."""
    import json

    s3 = services.s3.client()
    prefix = "keel-audit/credit_risk/"
    keys = sorted(k["Key"] for k in s3.list_objects_v2(Bucket=services.bucket, Prefix=prefix).get("Contents", []))
    records = [json.loads(s3.get_object(Bucket=services.bucket, Key=k)["Body"].read()) for k in keys]
    return [r for r in records if r["event"] == event]


@pytest.mark.integration
def test_roles_and_maker_checker_with_two_server_identities(remote_services, trained):
    """keel-ci (a service account) trained v1; keel-approver (a second service account with its own API key)
    is the only one whose approval counts; a forged --by, a missing role and a void approval are refused."""
    services = remote_services
    approver_env = {**services.env, "KEEL_ZENML_API_KEY": services.server.create_service_account_api_key("keel-approver")}
    remote = ["--stack", "remote", *SMALL, *ROLES]

    evaluated = _keel(services, ["evaluate", *remote])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "acting as zenml:keel-ci (service account, authenticated, by the ZenML server" in evaluated.stderr

    own = _keel(services, ["approve", *remote, "--model", "credit_risk", "--version", "1", "--reason", "T-1"])
    assert own.returncode == 1
    assert "maker-checker: zenml:keel-ci trained and evaluated this version" in own.stderr

    forged = _keel(services, ["approve", *remote, "--model", "credit_risk", "--version", "1", "--reason", "T-1",
                              "--by", "keel-ci"], approver_env)
    assert forged.returncode == 1 and "--by 'keel-ci' names another identity" in forged.stderr
    assert "you are zenml:keel-approver (service account, authenticated" in forged.stderr

    no_role = _keel(services, ["train", *remote], approver_env)
    assert no_role.returncode == 1
    assert ("train refused: it needs the role developer or validator, which zenml:keel-approver does not hold "
            "(governance.roles: developer: keel-ci; validator: keel-ci)") in no_role.stderr
    assert "training_pipeline" not in no_role.stdout

    approved = _keel(services, ["approve", *remote, "--model", "credit_risk", "--version", "1", "--reason", "RISK-7",
                                "--by", "Ann Approver"], approver_env)
    assert approved.returncode == 0, approved.stderr[-3000:]
    assert "approved credit_risk v1 by zenml:keel-approver (Ann Approver)" in approved.stdout
    assert "1 of 1 approval(s) count (zenml:keel-approver): APPROVED for production" in approved.stdout

    (approval,) = _records(services, "approved")
    (evaluation,) = [r for r in _records(services, "evaluated") if r["details"]["status"] == "finished"][-1:]
    assert approval["actor"] == "zenml:keel-approver" and approval["details"]["by"] == "Ann Approver"
    assert approval["details"]["evaluation_run"] == evaluation["run_id"]
    assert approval["details"]["identity"]["authenticated"] is True
    assert [(r["details"]["command"], r["actor"]) for r in _records(services, "refused")] == [
        ("approve", "zenml:keel-ci"), ("approve", "zenml:keel-approver"), ("train", "zenml:keel-approver")]

    # Evaluating v1 again voids the approval: deploy refuses it (before any rollout), naming why.
    again = _keel(services, ["evaluate", *remote])
    assert again.returncode == 0, again.stderr[-3000:]
    deploy = _keel(services, ["deploy", *remote, "--set", f"deployment.folder={services.work / 'deployments'}",
                              "--set", "deployment.allow_folder_outside_project=true"])
    assert deploy.returncode == 1
    assert "deploy refused: credit_risk v1: 0 of 1 approval(s) count" in deploy.stderr
    assert "void: it approved evaluation run" in deploy.stderr
    assert [r["details"]["command"] for r in _records(services, "refused")][-1] == "deploy"

    log = _keel(services, ["audit", "log", "--stack", "remote", *SMALL])
    assert log.returncode == 0 and "zenml:keel-approver" in log.stdout and "refused" in log.stdout

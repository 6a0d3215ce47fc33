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
         "--set", "training.candidate.params.n_estimators=40"]  # as tests/conftest.py's small_spec
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

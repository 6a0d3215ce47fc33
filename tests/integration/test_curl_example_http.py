"""The `curl` example `deploy` and the main job print is run as printed, through `sh -c`, against a real
keel service, for a problem nothing like the credit demo: a subscription-churn spec whose id column is
`account` and one of whose categories holds an apostrophe. The service takes the spec's id column as the
entity id, and an entity id beside `records`."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from keel.cli.deploy import curl_example
from keel.lifecycle.deployment import example_record
from keel.deployment.bundle import write_bundle
from keel.deployment.server import post_json, service_url, start_service, stop_service
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import Arm, RoutingTable
from keel.spec import validate_spec
from keel.training.in_process import train_in_process
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

REGIONS = ["north", "o'higgins", "south"]  # a category with an apostrophe ends a '...'-quoted shell word


def _accounts(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seats = rng.integers(1, 60, rows).astype(float)
    tenure = rng.gamma(2.0, 8.0, rows).round(1)
    region = rng.choice(REGIONS, rows)
    score = -0.04 * tenure + 0.03 * seats + np.where(region == "o'higgins", 0.8, 0.0) + rng.normal(0, 1, rows)
    tenure[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame({"account": [f"acct-{i}" for i in range(rows)], "seats": seats, "tenure_months": tenure,
                         "region": region, "churned": np.where(score > np.quantile(score, 0.75), "yes", "no")})


def _spec(tmp_path, **deployment):
    return validate_spec({
        "problem": {"name": "churn_http", "objective": "Which accounts cancel.", "intended_users": "tests",
                    "business_metric": "none", "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": str(tmp_path / "accounts.csv")}, "id_column": "account",
                 "target": {"column": "churned", "positive": "yes", "negative": "no", "positive_label": "cancels"},
                 "features": {"seats": {"type": "integer", "min": 1, "max": 1000},
                              "tenure_months": {"type": "numeric", "min": 0, "nullable": True},
                              "region": {"type": "categorical", "categories": REGIONS}}},
        "split": {"strategy": "random", "validation_fraction": 0.25, "test_fraction": 0.25, "seed": 4},
        "training": {"primary_metric": "roc_auc", "seed": 4, "threads": 1,
                     "candidate": {"kind": "lightgbm", "params": {"n_estimators": 20}, "trials": 1}},
        "deployment": {"folder": str(tmp_path / "deployments"), **deployment}}, "the test spec")


@pytest.fixture(scope="module")
def churn_service(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("churn")
    raw = _accounts(1200, seed=4)
    raw.to_csv(tmp_path / "accounts.csv", index=False)
    spec = _spec(tmp_path, api_key_env="KEEL_TEST_CHURN_KEY")
    trained = train_in_process(raw, spec)
    folder = tmp_path / "deployment"
    log_url = f"sqlite:///{folder / 'predictions.db'}"
    write_bundle(folder, spec, {1: trained.selected.pipeline}, {1: 0.5}, RoutingTable([Arm("champion", 1, 1.0)]),
                 log_url, trained.validation[spec.data.model_features], api_key_env="KEEL_TEST_CHURN_KEY")
    port = free_port()
    os.environ["KEEL_TEST_CHURN_KEY"] = "s3cret-key"
    try:
        start_service(folder, "127.0.0.1", port)
        yield {"spec": spec, "url": service_url("127.0.0.1", port), "validation": trained.validation,
               "log": PredictionLog(log_url)}
    finally:
        stop_service(folder)
        os.environ.pop("KEEL_TEST_CHURN_KEY", None)


def test_the_printed_curl_command_runs_in_a_shell_and_is_answered(churn_service):
    spec, validation = churn_service["spec"], churn_service["validation"]
    apostrophe = validation[validation["region"] == "o'higgins"]  # a record whose text would break the quoting
    record = example_record(spec, apostrophe)
    assert record["region"] == "o'higgins" and record["account"] == apostrophe["account"].iloc[0]
    assert set(record) == {"seats", "tenure_months", "region", "account"}
    command = curl_example(churn_service["url"], spec, record)
    assert "s3cret-key" not in command  # the key stays in its variable
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "KEEL_TEST_CHURN_KEY": "s3cret-key"})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    [prediction] = answer["predictions"]
    assert prediction["entity_id"] == record["account"] and prediction["model_version"] == 1
    assert 0.0 <= prediction["score"] <= 1.0


def test_the_id_column_and_an_entity_id_beside_records_are_the_entity(churn_service):
    url, headers = churn_service["url"], {"X-API-Key": "s3cret-key"}
    record = example_record(churn_service["spec"], churn_service["validation"].iloc[5:])
    features = {k: v for k, v in record.items() if k != "account"}
    status, body = post_json(f"{url}/predict", {"records": [features], "entity_id": "acct-beside"}, headers=headers)
    assert status == 200 and body["predictions"][0]["entity_id"] == "acct-beside", body
    status, body = post_json(f"{url}/predict", {**features, "account": "acct-own"}, headers=headers)
    assert status == 200 and body["predictions"][0]["entity_id"] == "acct-own", body
    status, body = post_json(f"{url}/predict", {"records": [features, features], "entity_id": "acct-x"}, headers=headers)
    assert status == 422 and len(body["errors"]) == 1 and "records[i].entity_id" in body["errors"][0]["problem"], body

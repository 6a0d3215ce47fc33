"""The serving manifests hand the pods the API key the service needs, from a Kubernetes secret."""

import pytest

from keel.deployment.kubernetes import api_key_secret_name, serving_manifests
from tests.support.kubernetes.schema_check import schema_problems


def _container(manifests):
    (container,) = manifests[0]["spec"]["template"]["spec"]["containers"]
    return container


def test_without_an_api_key_the_pods_get_only_the_prediction_log_url():
    manifests = serving_manifests("credit_risk", 3, image="keel-credit-risk:v3")
    assert [variable["name"] for variable in _container(manifests)["env"]] == ["KEEL_PREDICTION_LOG_URL"]


@pytest.mark.parametrize("kubernetes_version", ["1.25.0", "1.37.0"])
def test_the_api_key_variable_comes_from_a_secret_and_the_manifests_stay_valid(kubernetes_version):
    manifests = serving_manifests("credit_risk", 3, image="keel-credit-risk:v3", api_key_env="KEEL_API_KEY")
    variables = {variable["name"]: variable for variable in _container(manifests)["env"]}
    assert variables["KEEL_API_KEY"] == {"name": "KEEL_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "keel-credit-risk-api-key", "key": "key"}}}
    assert api_key_secret_name("credit_risk") == "keel-credit-risk-api-key"
    assert "value" not in variables["KEEL_API_KEY"]  # never the key itself in a manifest
    assert schema_problems(manifests, kubernetes_version) == []

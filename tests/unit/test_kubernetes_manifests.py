"""keel's Kubernetes serving manifests (Deployment, Service, autoscaler) are schema-valid offline and
wired together: the selectors find the pods, the probes and the Service use the container's port."""

import pytest
import yaml

from keel.deployment.kubernetes import serving_manifests
from tests.support.kubernetes.schema_check import schema_problems


@pytest.fixture
def manifests():
    return serving_manifests("credit_risk", 3, image="keel-credit-risk:v3", namespace="keel")


@pytest.mark.parametrize("kubernetes_version", ["1.25.0", "1.33.0", "1.37.0"])  # oldest, chosen, newest shipped
def test_the_serving_manifests_are_valid_against_the_kubernetes_schemas(manifests, kubernetes_version):
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    assert schema_problems(manifests, kubernetes_version) == []
    # as written to kubernetes.yaml by the package step
    assert schema_problems(yaml.safe_load_all(yaml.safe_dump_all(manifests, sort_keys=False))) == []


def test_the_schema_check_names_the_manifest_and_the_wrong_field(manifests):
    deployment, service, _ = manifests
    deployment["spec"]["replicas"] = "2"
    service["spec"]["port"] = 80
    assert schema_problems([deployment, service]) == [
        "Deployment/keel-credit-risk: spec.replicas: '2' is not of type 'integer', 'null'",
        "Service/keel-credit-risk: spec: Additional properties are not allowed ('port' was unexpected)"]


def test_selectors_probes_and_the_autoscaler_point_at_the_serving_pods(manifests):
    deployment, service, autoscaler = manifests
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert {container["readinessProbe"]["httpGet"]["port"], container["livenessProbe"]["httpGet"]["port"],
            service["spec"]["ports"][0]["targetPort"]} <= port_names
    assert (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]) == \
        ("/readyz", "/livez")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
    assert {m["metadata"]["namespace"] for m in manifests} == {"keel"}

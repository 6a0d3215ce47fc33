"""The recording stand-in for the Kubernetes API, driven by the official kubernetes client through a
kubeconfig: creations are recorded and echoed, reads find nothing, kinds come from the URL."""

import pytest

from tests.support.kubernetes.recording_api import RecordedRequest, RecordingKubernetesAPI


@pytest.fixture
def api():
    recorder = RecordingKubernetesAPI().start()
    yield recorder
    recorder.stop()


def test_the_kubernetes_client_creates_through_it_and_reads_nothing_back(api, tmp_path):
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = config.new_client_from_config(config_file=str(kubeconfig), context="keel-recording")
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)

    created = core.create_namespaced_secret("keel", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert created.metadata.name == "s" and created.metadata.uid  # echoed, with a uid as a server would
    batch.create_namespaced_job("keel", client.V1Job(metadata=client.V1ObjectMeta(name="j"), spec=client.V1JobSpec(
        template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image="img")], restart_policy="Never")))))
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("s", "keel")
    assert missing.value.status == 404

    assert [(r.method, r.path) for r in api.requests] == [
        ("POST", "/api/v1/namespaces/keel/secrets"), ("POST", "/apis/batch/v1/namespaces/keel/jobs"),
        ("GET", "/api/v1/namespaces/keel/secrets/s")]
    (job,) = api.created("Job")
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == ("batch/v1", "Job", "j")
    assert [m["kind"] for m in api.created()] == ["Secret", "Job"]


def test_kind_and_api_version_come_from_the_url():
    binding = RecordedRequest("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/keel/rolebindings",
                              {"metadata": {"name": "b"}})
    assert (binding.api_version, binding.kind) == ("rbac.authorization.k8s.io/v1", "RoleBinding")
    account = RecordedRequest("POST", "/api/v1/namespaces/keel/serviceaccounts?fieldManager=x", {})
    assert account.manifest() == {"apiVersion": "v1", "kind": "ServiceAccount"}

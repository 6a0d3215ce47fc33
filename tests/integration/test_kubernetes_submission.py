"""ZenML's Kubernetes orchestrator submits keel's real training pipeline to a recording stand-in for
the Kubernetes API (no cluster and no Docker here): the Job, ServiceAccount, RoleBinding and Secret
bodies it POSTs are captured, the ZenML API token travels only as a Secret, and every captured
manifest is valid against the Kubernetes schemas (`kubernetes-validate --strict`, offline).

The submission needs a ZenML *server* store (the token exists only for a REST store with
authentication), so the test starts one (uvicorn, SQLite, password auth: tests/support/servers.py)
and runs the submission in a child process logged in to it: the rest of the test session keeps its
own local store.

Run as a script (`python tests/integration/test_kubernetes_submission.py OUT_JSON`) it is that
child process: register a Kubernetes stack on the server it is logged in to, submit, write what the
recording API received to OUT_JSON.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# The image a cluster would pull; with `skip_build` ZenML runs the steps in it as is (no build here).
PREBUILT_IMAGE = "registry.example.com/keel/keel-pipelines:0.1"
NAMESPACE = "keel"


@pytest.fixture(scope="module")
def authenticated_server(tmp_path_factory):
    """A ZenML server with password authentication on a SQLite store (tests/support/servers.py)."""
    from tests.support.servers import zenml_server

    with zenml_server(tmp_path_factory.mktemp("zenml-server")) as server:
        yield server


@pytest.fixture(scope="module")
def captured(authenticated_server, tmp_path_factory) -> dict:
    from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, client_environment

    folder = tmp_path_factory.mktemp("kubernetes-submission")
    out = folder / "captured.json"
    env = client_environment(folder / "client-config", ZENML_STORE_URL=authenticated_server.url,
                             ZENML_STORE_USERNAME=ADMIN_USER, ZENML_STORE_PASSWORD=ADMIN_PASSWORD)
    done = subprocess.run([sys.executable, __file__, str(out)], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    captured = json.loads(out.read_text())
    print(f"\nsubmitted with the kubernetes client {captured['kubernetes_client']}")
    return captured


def test_the_orchestrator_posts_a_job_a_service_account_its_role_binding_and_a_token_secret(captured):
    kinds = [(r["method"], r["kind"]) for r in captured["requests"]]
    assert kinds == [("POST", "Secret"), ("POST", "RoleBinding"), ("POST", "ServiceAccount"), ("POST", "Job")]
    assert all(f"/namespaces/{NAMESPACE}/" in r["path"] for r in captured["requests"])

    job = _one(captured, "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == PREBUILT_IMAGE
    assert container["command"][-1] == "zenml.integrations.kubernetes.orchestrators.kubernetes_orchestrator_entrypoint"
    assert pod["serviceAccountName"] == "zenml-service-account" and pod["restartPolicy"] == "Never"
    assert job["metadata"]["labels"]["pipeline"] == "training_pipeline"

    binding = _one(captured, "RoleBinding")
    assert binding["roleRef"] == {"kind": "ClusterRole", "name": "edit", "apiGroup": "rbac.authorization.k8s.io"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "zenml-service-account",
                                    "namespace": NAMESPACE}]


def test_the_zenml_api_token_travels_as_a_secret_never_as_a_plain_environment_variable(captured):
    secret = _one(captured, "Secret")
    token = base64.b64decode(secret["data"]["zenml_api_token"]).decode()
    assert token.count(".") == 2 and len(token) > 100  # a signed JWT issued by the server
    (container,) = _one(captured, "Job")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["ZENML_STORE_API_TOKEN"] == {"name": "ZENML_STORE_API_TOKEN", "valueFrom": {
        "secretKeyRef": {"name": secret["metadata"]["name"], "key": "zenml_api_token"}}}
    assert "value" not in env["ZENML_STORE_API_TOKEN"]
    assert token not in json.dumps(_one(captured, "Job"))  # nowhere in the Job, in any form
    assert secret["data"]["zenml_api_token"] not in json.dumps(_one(captured, "Job"))
    assert not [name for name, item in env.items() if ("PASSWORD" in name or "TOKEN" in name) and "value" in item]


def test_every_captured_manifest_is_valid_against_the_kubernetes_schemas(captured, tmp_path):
    from tests.support.kubernetes.schema_check import KUBERNETES_VERSION, schema_problems

    manifests = [r["manifest"] for r in captured["requests"]]
    assert schema_problems(manifests) == []
    # The same through the command line a user would run on the files.
    files = []
    for number, manifest in enumerate(manifests):
        files.append(tmp_path / f"{number}-{manifest['kind'].lower()}.yaml")
        files[-1].write_text(yaml.safe_dump(manifest))
    done = _kubernetes_validate(files, KUBERNETES_VERSION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource ") == len(files) == 4


def test_the_schema_check_rejects_a_misspelt_field_of_a_captured_job(captured, tmp_path):
    from tests.support.kubernetes.schema_check import KUBERNETES_VERSION, schema_problems

    job = json.loads(json.dumps(_one(captured, "Job")))
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    assert schema_problems([job]) == ["Job/{}: spec.template.spec.containers.0: Additional properties are not "
                                      "allowed ('imagePullPolice' was unexpected)".format(job["metadata"]["name"])]
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    assert _kubernetes_validate([path], KUBERNETES_VERSION).returncode != 0


def _kubernetes_validate(files, version: str) -> subprocess.CompletedProcess:
    command = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(command), "--strict", "-k", version, *map(str, files)],
                          capture_output=True, text=True, timeout=60)


def _one(captured: dict, kind: str) -> dict:
    (manifest,) = [r["manifest"] for r in captured["requests"] if r["kind"] == kind]
    return manifest


def _submit_training_pipeline(out: Path) -> None:
    """The child process: a Kubernetes stack on the server, keel's training pipeline submitted to it."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests.support.kubernetes.recording_api import RecordingKubernetesAPI

    api = RecordingKubernetesAPI().start()
    os.environ["KUBECONFIG"] = str(api.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig"))

    from zenml.client import Client
    from zenml.config import DockerSettings
    from zenml.enums import StackComponentType

    from keel.data.sources import source_stamp
    from keel.provenance import collect_provenance
    from keel.spec import load_spec, spec_hash
    from pipelines.training import training_pipeline

    client = Client()
    client.create_stack_component(
        "keel-kubernetes", "kubernetes", StackComponentType.ORCHESTRATOR,
        {"kubernetes_context": "keel-recording", "kubernetes_namespace": NAMESPACE, "synchronous": False,
         "pass_zenml_token_as_secret": True,
         # The artifact store is local here; in a cluster it is S3-compatible (stacks/kubernetes.yaml).
         "skip_local_validations": True})
    client.create_stack_component("keel-registry", "default", StackComponentType.CONTAINER_REGISTRY,
                                  {"uri": "registry.example.com/keel"})
    client.create_stack_component("keel-builder", "local", StackComponentType.IMAGE_BUILDER, {})
    client.create_stack("keel-kubernetes", components={
        StackComponentType.ORCHESTRATOR: "keel-kubernetes", StackComponentType.ARTIFACT_STORE: "default",
        StackComponentType.CONTAINER_REGISTRY: "keel-registry", StackComponentType.IMAGE_BUILDER: "keel-builder"})
    client.activate_stack("keel-kubernetes")

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=2000"])
    docker = DockerSettings(skip_build=True, parent_image=PREBUILT_IMAGE)
    training_pipeline.with_options(settings={"docker": docker})(
        spec=spec, spec_hash=spec_hash(spec), source_stamp=source_stamp(spec.data), provenance=collect_provenance())
    api.stop()
    import kubernetes

    out.write_text(json.dumps({"kubernetes_client": kubernetes.__version__, "requests": [
        {"method": r.method, "path": r.path, "kind": r.kind, "manifest": r.manifest()} for r in api.requests]}))


if __name__ == "__main__":
    _submit_training_pipeline(Path(sys.argv[1]))

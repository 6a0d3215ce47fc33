"""`run.py stack apply` on all five stack files, through the CLI as a user runs it: the local file
into the local store, the remote, aws, gcp and kubernetes files into a real ZenML server (SQLite-backed
here; tests/integration/remote/ runs pipelines on a MariaDB-backed one). Applying twice changes
nothing and never prompts; a changed path updates just that component; bad files, missing secrets,
unknown stacks and an unreachable server are refused before anything changes or runs."""

import shutil
from pathlib import Path

import pytest

from keel.stacks.load import STACKS_DIR
from tests.conftest import new_zenml_store
from tests.support.servers import client_environment, free_port, run_keel, zenml_server

ALL = [str(STACKS_DIR / f"{name}.yaml") for name in ("local", "remote", "aws", "gcp", "kubernetes")]
SECRETS = {
    "keel_s3": {"aws_access_key_id": "test-id", "aws_secret_access_key": "test-secret"},
    "keel_aws": {"aws_access_key_id": "test-id", "aws_secret_access_key": "test-secret"},
    "keel_registry": {"username": "keel", "password": "test-password"},
    "keel_gcp_registry": {"username": "_json_key", "password": "{}"},
    "keel_gcs": {"token": "{}"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with zenml_server(tmp_path_factory.mktemp("stack-server")) as running:
        for name, values in SECRETS.items():
            running.api("POST", "/secrets", {"name": name, "values": values, "private": False})
        running.api_key = running.create_service_account_api_key("keel-stack-tests")
        yield running


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    """A client with its own ZenML config, pointed at the server by the stack files' variables."""
    folder = tmp_path_factory.mktemp("stack-client")
    # its local store made before the first command, as a first `zenml` call would (a copy of the template)
    return folder, client_environment(Path(new_zenml_store(folder / "zenml")), KEEL_ZENML_SERVER_URL=server.url,
                                      KEEL_ZENML_API_KEY=server.api_key,
                                      KEEL_LOCAL_ARTIFACTS=str(folder / "artifacts"))


def _results(stdout: str) -> dict:
    """{(component type, name): result} from the tables `stack apply` prints."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3] in ("created", "updated", "unchanged") and not parts[0].endswith(":"):
            rows[(parts[0], parts[1])] = parts[3]
    return rows


@pytest.mark.integration
def test_apply_all_five_twice_then_a_changed_path_updates_only_that(server, client, tmp_path):
    folder, env = client
    first = run_keel(["stack", "apply", *ALL], env, folder)
    assert first.returncode == 0, first.stderr[-3000:]
    created = _results(first.stdout)
    assert len(created) == (2 + 2 + 4 + 4 + 4) + 5 and set(created.values()) == {"created"}, created
    for name in ("local", "remote", "aws", "gcp", "kubernetes"):
        assert f"stack '{name}' created" in first.stdout
    names = {item["name"] for item in server.api("GET", "/stacks?size=100")["items"]}
    assert {"remote", "aws", "gcp", "kubernetes"} <= names and "local" not in names  # local is local

    again = run_keel(["stack", "apply", *ALL], env, folder)
    assert again.returncode == 0, again.stderr[-3000:]
    assert set(_results(again.stdout).values()) == {"unchanged"}, again.stdout
    assert len(_results(again.stdout)) == len(created)

    moved = dict(env, KEEL_LOCAL_ARTIFACTS=str(folder / "artifacts-moved"), KEEL_S3_BUCKET="keel-moved")
    changed = run_keel(["stack", "apply", *ALL], moved, folder)
    assert changed.returncode == 0, changed.stderr[-3000:]
    updated = {key for key, result in _results(changed.stdout).items() if result != "unchanged"}
    assert updated == {("artifact_store", "keel-local-artifacts"), ("artifact_store", "keel-remote-artifacts"),
                       ("artifact_store", "keel-k8s-artifacts")}, changed.stdout
    assert set(_results(changed.stdout).values()) == {"unchanged", "updated"}
    component = server.api("GET", "/components?name=keel-remote-artifacts&hydrate=true")["items"][0]
    assert component["metadata"]["configuration"]["path"] == "s3://keel-moved"
    # Only references reach the server: the secret's value is not in the component.
    assert component["metadata"]["configuration"]["secret"] == "{{keel_s3.aws_secret_access_key}}"
    assert "test-secret" not in changed.stdout + changed.stderr

    # A description removed from the file is removed once; applying again changes nothing.
    bare = tmp_path / "remote.yaml"
    bare.write_text("".join(line for line in (STACKS_DIR / "remote.yaml").read_text().splitlines(True)
                            if not line.startswith("description:")))
    for expected in ("updated", "unchanged"):
        result = run_keel(["stack", "apply", "--no-activate", str(bare)], moved, folder)
        assert result.returncode == 0, result.stderr[-3000:]
        assert _results(result.stdout)[("stack", "remote")] == expected, result.stdout
        assert f"stack 'remote' {expected}" in result.stdout
    stack = server.api("GET", "/stacks?name=remote&hydrate=true")["items"][0]
    assert not (stack.get("metadata") or {}).get("description"), stack


@pytest.mark.integration
def test_stack_option_switches_store_and_stack_and_refuses_unknown_stacks(client):
    folder, env = client
    run_keel(["stack", "apply", ALL[0], ALL[1]], env, folder)
    listing = run_keel(["--stack", "local", "stack", "list"], env, folder)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "* local" in listing.stdout and "sqlite://" in listing.stdout
    listing = run_keel(["--stack", "remote", "stack", "list"], env, folder)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "* remote" in listing.stdout and env["KEEL_ZENML_SERVER_URL"] in listing.stdout

    unknown = run_keel(["train", "--stack", "no-such-stack"], env, folder)
    assert unknown.returncode == 1
    assert "--stack no-such-stack: no such stack" in unknown.stderr and "Step" not in unknown.stdout


@pytest.mark.integration
def test_missing_secret_and_bad_key_change_nothing(server, client, tmp_path):
    folder, env = client
    text = (STACKS_DIR / "kubernetes.yaml").read_text()
    missing = tmp_path / "kubernetes.yaml"
    missing.write_text(text.replace("name: kubernetes\n", "name: keel-missing-secret\n")
                       .replace("keel_registry", "keel_not_there"))
    result = run_keel(["stack", "apply", str(missing)], env, folder)
    assert result.returncode == 1
    assert "secret 'keel_not_there' does not exist: create it with `zenml secret create keel_not_there" in result.stderr
    assert "keel-missing-secret" not in {s["name"] for s in server.api("GET", "/stacks?size=100")["items"]}

    misspelt = tmp_path / "remote.yaml"
    misspelt.write_text((STACKS_DIR / "remote.yaml").read_text().replace("      path: s3://", "      paht: s3://"))
    result = run_keel(["stack", "apply", str(misspelt)], env, folder)
    assert result.returncode == 2  # the S3 flavor's own config refuses the key: a bad file, as a schema key
    assert f"{misspelt}: components.artifact_store.configuration: not valid for the 's3' flavor" in result.stderr
    assert "paht" in result.stderr

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((STACKS_DIR / "remote.yaml").read_text().replace("  api_key_env:", "  api_key_envv:"))
    result = run_keel(["stack", "apply", str(wrong)], env, folder)
    assert result.returncode == 2
    assert f"{wrong}: the stack file is not valid" in result.stderr and "server.api_key_envv" in result.stderr


@pytest.mark.integration
def test_an_unreachable_server_or_a_wrong_key_stops_before_any_pipeline(server, client):
    folder, env = client
    nobody = dict(env, KEEL_ZENML_SERVER_URL=f"http://127.0.0.1:{free_port()}")
    result = run_keel(["stack", "apply", ALL[1]], nobody, folder)
    assert result.returncode == 1 and "no ZenML server answers" in result.stderr
    result = run_keel(["train", "--stack", "remote"], nobody, folder)
    assert result.returncode == 1 and "no ZenML server answers" in result.stderr
    assert "Step" not in result.stdout and "Pipeline" not in result.stdout

    fresh = dict(env, ZENML_CONFIG_PATH=str(folder / "fresh-client"), KEEL_ZENML_API_KEY="ZENKEY_not-a-key")
    result = run_keel(["stack", "apply", ALL[1]], fresh, folder)
    assert result.returncode == 1 and "refused the API key in KEEL_ZENML_API_KEY" in result.stderr
    shutil.rmtree(folder / "fresh-client", ignore_errors=True)

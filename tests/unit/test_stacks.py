"""Stack files: every shipped file validates; wrong keys, types, literal credentials and unset
variables give one clear message naming the file and the key; missing extras are named."""

import sys
from pathlib import Path

import pytest

from keel.stacks import StackFileError, load_stack_file, stack_file_for
from keel.stacks.extras import describe_missing_extras, missing_extras
from keel.stacks.load import STACKS_DIR, validate_stack_file

SHIPPED = ["local", "remote", "aws", "gcp", "kubernetes"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


MINIMAL = """
name: mine
components:
  orchestrator: {name: o, flavor: local}
  artifact_store: {name: a, flavor: local, configuration: {path: /tmp/x}}
"""


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_stack_file_validates_with_its_defaults(name):
    stack = load_stack_file(STACKS_DIR / f"{name}.yaml", environ={})
    assert stack.name == name
    assert {"orchestrator", "artifact_store"} <= set(stack.components)
    assert (stack.server is None) == (name == "local")


def test_the_shipped_stacks_cover_what_the_issue_asks():
    flavors = {name: {kind: c.flavor for kind, c in load_stack_file(STACKS_DIR / f"{name}.yaml", {}).components.items()}
               for name in SHIPPED}
    assert flavors["local"] == {"orchestrator": "local", "artifact_store": "local"}
    assert flavors["remote"] == {"orchestrator": "local", "artifact_store": "s3"}
    assert flavors["aws"]["artifact_store"] == "s3" and flavors["aws"]["container_registry"] == "aws"
    assert flavors["gcp"]["artifact_store"] == "gcp" and flavors["gcp"]["container_registry"] == "gcp"
    assert flavors["kubernetes"]["orchestrator"] == "kubernetes"
    assert {"container_registry", "image_builder"} <= set(flavors["kubernetes"])
    kubernetes = load_stack_file(STACKS_DIR / "kubernetes.yaml", {}).components["orchestrator"]
    assert kubernetes.configuration["pass_zenml_token_as_secret"] is True


def test_credentials_in_shipped_files_are_secret_references_only():
    remote = load_stack_file(STACKS_DIR / "remote.yaml", {})
    assert remote.secret_references() == {"keel_s3": {"aws_access_key_id", "aws_secret_access_key"}}
    assert remote.components["artifact_store"].configuration["key"] == "{{keel_s3.aws_access_key_id}}"
    assert set(load_stack_file(STACKS_DIR / "kubernetes.yaml", {}).secret_references()) == {"keel_s3", "keel_registry"}


def test_environment_variables_fill_the_file_and_defaults_apply_when_unset():
    environ = {"KEEL_ZENML_SERVER_URL": "http://127.0.0.1:9999", "KEEL_S3_BUCKET": "my-bucket"}
    remote = load_stack_file(STACKS_DIR / "remote.yaml", environ)
    assert remote.server.url == "http://127.0.0.1:9999"
    assert remote.components["artifact_store"].configuration["path"] == "s3://my-bucket"
    assert remote.components["artifact_store"].configuration["client_kwargs"]["endpoint_url"] == "http://127.0.0.1:9000"
    local = load_stack_file(STACKS_DIR / "local.yaml", {})
    assert local.components["artifact_store"].configuration["path"] == str(Path.home() / ".keel/zenml-artifacts")


def test_an_unset_variable_without_default_names_the_key_and_the_variable(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("/tmp/x", '"${KEEL_TEST_UNSET_DIR}/artifacts"'))
    with pytest.raises(StackFileError) as error:
        load_stack_file(path, environ={})
    message = str(error.value)
    assert str(path) in message and "components.artifact_store.configuration.path" in message
    assert "KEEL_TEST_UNSET_DIR" in message
    assert load_stack_file(path, {"KEEL_TEST_UNSET_DIR": "/data"}).components["artifact_store"].configuration["path"] == "/data/artifacts"


def test_a_misspelt_key_is_named_with_the_file(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("configuration: {path", "configuratoin: {path"))
    with pytest.raises(StackFileError) as error:
        load_stack_file(path, {})
    message = str(error.value)
    assert message.startswith(f"{path}: the stack file is not valid (1 problem(s))")
    assert "components.artifact_store.configuratoin: expected no such key" in message


def test_a_wrong_type_names_key_expectation_and_value():
    with pytest.raises(StackFileError) as error:
        validate_stack_file({"name": "x", "server": {"url": "http://h:1", "verify_ssl": "sometimes"},
                             "components": {"orchestrator": {"name": "o", "flavor": "local"},
                                            "artifact_store": {"name": "a", "flavor": "local"}}}, "stacks/x.yaml")
    assert "server.verify_ssl: expected input should be a valid boolean" in str(error.value)
    assert "'sometimes'" in str(error.value)


def test_an_unknown_component_type_lists_the_known_ones():
    with pytest.raises(StackFileError) as error:
        validate_stack_file({"name": "x", "components": {"orchestrator": {"name": "o", "flavor": "local"},
                                                         "artifact_store": {"name": "a", "flavor": "local"},
                                                         "artefact_store": {"name": "b", "flavor": "local"}}},
                            "stacks/x.yaml")
    assert "components.artefact_store: expected a ZenML component type, one of orchestrator, artifact_store" in str(error.value)
    assert "found 'artefact_store'" in str(error.value)


def test_a_stack_without_artifact_store_is_refused():
    with pytest.raises(StackFileError) as error:
        validate_stack_file({"name": "x", "components": {"orchestrator": {"name": "o", "flavor": "local"}}}, "s.yaml")
    assert "missing artifact_store" in str(error.value)


def test_a_literal_credential_is_refused_and_never_shown():
    with pytest.raises(StackFileError) as error:
        validate_stack_file({"name": "x", "components": {
            "orchestrator": {"name": "o", "flavor": "local"},
            "artifact_store": {"name": "a", "flavor": "s3", "configuration": {
                "path": "s3://b", "secret": "wJalrXUtnFEMI-do-not-print"}}}}, "stacks/x.yaml")
    message = str(error.value)
    assert "`secret` holds a credential" in message and "{{my_secret.secret}}" in message
    assert "wJalrXUtnFEMI" not in message
    # a flag whose name ends in _secret is not a credential
    validate_stack_file({"name": "x", "components": {
        "orchestrator": {"name": "o", "flavor": "kubernetes", "configuration": {"pass_zenml_token_as_secret": True}},
        "artifact_store": {"name": "a", "flavor": "local"}}}, "stacks/x.yaml")


def test_a_nested_literal_credential_is_refused_at_any_depth_and_never_shown(tmp_path, capsys):
    nested = {"name": "x", "components": {
        "orchestrator": {"name": "o", "flavor": "local"},
        "artifact_store": {"name": "a", "flavor": "s3", "configuration": {
            "path": "s3://b", "client_kwargs": {"endpoint_url": "http://h:9000",
                                                "aws_secret_access_key": "SUPERSECRET-nested"}}}}}
    with pytest.raises(StackFileError) as error:
        validate_stack_file(nested, "stacks/x.yaml")
    message = str(error.value)
    assert "`client_kwargs.aws_secret_access_key` holds a credential" in message
    assert "{{my_secret.aws_secret_access_key}}" in message and "SUPERSECRET" not in message
    # deeper, and inside a list
    deeper = {"name": "x", "components": {
        "orchestrator": {"name": "o", "flavor": "local", "configuration": {
            "pod_settings": {"volumes": [{"name": "v", "auth": {"password": "hunter2-in-a-list"}}]}}},
        "artifact_store": {"name": "a", "flavor": "local"}}}
    with pytest.raises(StackFileError) as error:
        validate_stack_file(deeper, "stacks/x.yaml")
    assert "`pod_settings.volumes[0].auth.password` holds a credential" in str(error.value)
    assert "hunter2" not in str(error.value)
    # references and non-text values nested are fine
    validate_stack_file({"name": "x", "components": {
        "orchestrator": {"name": "o", "flavor": "local"},
        "artifact_store": {"name": "a", "flavor": "s3", "configuration": {"path": "s3://b", "client_kwargs": {
            "aws_secret_access_key": "{{s3.aws_secret_access_key}}", "verify_token": False}}}}}, "stacks/x.yaml")
    # and through `stack show`, the nested value is never printed
    from keel.cli.main import main

    path = _write(tmp_path, MINIMAL.replace("configuration: {path: /tmp/x}",
                                            "configuration: {path: /tmp/x, client_kwargs: {aws_secret_access_key: SUPERSECRET}}"))
    capsys.readouterr()
    assert main(["stack", "show", str(path)]) == 2
    printed = capsys.readouterr()
    assert "client_kwargs.aws_secret_access_key` holds a credential" in printed.err
    assert "SUPERSECRET" not in printed.out + printed.err


def test_redaction_hides_literal_credentials_at_any_depth():
    from keel.stacks.models import redact_credentials

    shown = redact_credentials({"a": {"b": [{"token": "t0ps3cret"}], "secret": "{{s.k}}", "path": "/x"}})
    assert "t0ps3cret" not in str(shown) and shown["a"]["secret"] == "{{s.k}}" and shown["a"]["path"] == "/x"


def test_bad_yaml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(StackFileError, match="not valid YAML at line"):
        load_stack_file(_write(tmp_path, "name: [unclosed\n"), {})
    with pytest.raises(StackFileError, match="no such stack file"):
        load_stack_file(tmp_path / "absent.yaml", {})


def test_stack_names_resolve_to_files_in_stacks(tmp_path):
    assert stack_file_for("remote") == STACKS_DIR / "remote.yaml"
    assert stack_file_for("no-such-stack") is None
    own = _write(tmp_path, MINIMAL)
    assert stack_file_for(str(own)) == own


def test_a_missing_extra_is_named_with_the_install_command():
    gcp = load_stack_file(STACKS_DIR / "gcp.yaml", {})
    missing = missing_extras(gcp, installed=lambda module: module != "gcsfs")
    assert missing == [("artifact_store", "gcp", "gcp", ["gcsfs"])]
    message = describe_missing_extras("stacks/gcp.yaml", missing)
    assert "components.artifact_store (flavor gcp) needs gcsfs: the 'gcp' extra" in message
    assert "pip install -e '.[gcp]'" in message
    assert missing_extras(load_stack_file(STACKS_DIR / "local.yaml", {}), installed=lambda module: False) == []


def test_apply_stops_on_a_missing_extra_before_touching_any_store(monkeypatch):
    from keel.stacks.apply import StackApplyError, apply_stack_file

    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if the package were not installed
    # The server URL answers nothing: had apply tried to connect, the error would be about the server.
    with pytest.raises(StackApplyError, match=r"pip install -e '\.\[gcp\]'"):
        apply_stack_file(STACKS_DIR / "gcp.yaml", environ={"KEEL_ZENML_SERVER_URL": "http://127.0.0.1:9"})

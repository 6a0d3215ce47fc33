"""Credentials embedded in a URL never reach a printout: `stack show`, `stack list`, stack errors (ours
and ZenML's) and anything the CLI prints show `user:***@host`."""

import pytest

from keel.cli.console import fail, say
from keel.cli.main import main
from keel.stacks import StackFileError, load_stack_file
from keel.stacks.apply import StackApplyError, check_server_reachable
from keel.stacks.redaction import redact_url_credentials
from tests.support.servers import free_port


@pytest.mark.parametrize("text, shown", [
    ("mysql://root:s3cret@db:3306/zenml", "mysql://root:***@db:3306/zenml"),
    ("mysql://root:p@ss@db/zenml", "mysql://root:***@db/zenml"),  # an unescaped @ in the password
    ("https://ghp_TOKEN123@github.com/org/repo", "https://***@github.com/org/repo"),  # a token as the name
    ("https://user:@host/x", "https://user:***@host/x"),
    ("postgresql://u:pw@h/db?sslmode=require&password=other", "postgresql://u:***@h/db?sslmode=require&password=***"),
    ("http://h:8080/api?api_key=abc&page=2", "http://h:8080/api?api_key=***&page=2"),
    ("store a://x:y@h and b://p:q@k, done", "store a://x:***@h and b://p:***@k, done"),
])
def test_url_credentials_are_hidden(text, shown):
    assert redact_url_credentials(text) == shown


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:3000/predict", "sqlite:////tmp/zenml/zenml.db", "s3://bucket/key/path",
    "mail ops@example.com about it", "mysql://root:***@db/zenml", "no url at all: a@b",
    "http://host/path/with@sign",  # an @ after the path starts is no userinfo
])
def test_text_without_url_credentials_is_unchanged(text):
    assert redact_url_credentials(text) == text


STACK = """\
name: remote_with_credentials
server:
  url: ${SERVER_URL}
components:
  orchestrator: {name: local, flavor: local}
  artifact_store:
    name: s3_store
    flavor: s3
    configuration:
      path: s3://keel-artifacts
      key: '{{keel_s3.aws_access_key_id}}'
      client_kwargs: {endpoint_url: 'http://minio:minio-pass@127.0.0.1:9000'}
"""


def test_stack_show_hides_url_credentials_from_the_environment(tmp_path, monkeypatch, capsys):
    path = tmp_path / "creds.yaml"
    path.write_text(STACK)
    monkeypatch.setenv("SERVER_URL", "http://admin:hunter2@zenml.example:8080")
    assert load_stack_file(path).server.url == "http://admin:hunter2@zenml.example:8080"  # used as given
    assert main(["stack", "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "hunter2" not in shown and "minio-pass" not in shown
    assert "url: http://admin:***@zenml.example:8080" in shown
    assert "endpoint_url: http://minio:***@127.0.0.1:9000" in shown
    assert "key: '{{keel_s3.aws_access_key_id}}'" in shown  # secret references stay as they are


def test_stack_list_hides_the_credentials_of_a_stack_file_server(tmp_path, monkeypatch, capsys):
    import keel.stacks.load

    (tmp_path / "creds.yaml").write_text(STACK)
    monkeypatch.setattr(keel.stacks.load, "STACKS_DIR", tmp_path)
    monkeypatch.setenv("SERVER_URL", "https://admin:hunter2@zenml.example")
    main(["stack", "list"])
    out = capsys.readouterr().out
    assert "https://admin:***@zenml.example" in out and "hunter2" not in out


def test_stack_errors_hide_url_credentials(tmp_path):
    port = free_port()  # nothing listens on it
    with pytest.raises(StackApplyError) as raised:
        check_server_reachable(f"http://admin:hunter2@127.0.0.1:{port}", 2, "creds.yaml")
    assert "hunter2" not in str(raised.value) and f"http://admin:***@127.0.0.1:{port}" in str(raised.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nserver: {url: 'ftp://admin:hunter2@host'}\ncomponents: {}\n")
    with pytest.raises(StackFileError) as raised:
        load_stack_file(bad)
    assert "server.url" in str(raised.value) and "hunter2" not in str(raised.value)


def test_everything_the_cli_prints_is_redacted(capsys):
    say("store: mysql://keel:hunter2@db/zenml")
    assert fail("cannot reach https://keel:hunter2@zenml.example/api", 3) == 3
    captured = capsys.readouterr()
    assert captured.out == "store: mysql://keel:***@db/zenml\n"
    assert captured.err == "cannot reach https://keel:***@zenml.example/api\n"

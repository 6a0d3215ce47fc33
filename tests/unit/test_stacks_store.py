"""Connecting to a stack's store and choosing a stack, against small stand-ins on 127.0.0.1 and the
tests' own local ZenML store: a server that answers /health but is no ZenML API, a self-signed
certificate with `verify_ssl: false`, `--stack` with a missing extra, secret or file, a flavor's
refused configuration key, and removing a stack's description."""

import datetime
import ssl
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from keel.cli.main import main
from keel.stacks import StackFileError, load_stack_file
from keel.stacks.apply import (StackApplyError, apply_stack_file, check_server_reachable,
                               desired_configuration, use_stack)
from keel.stacks.load import STACKS_DIR


class _HealthOnly(BaseHTTPRequestHandler):
    """Answers GET /health with 200 and everything else with 404: not a ZenML API."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'"OK"' if self.path == "/health" else b'{"detail": "Not Found"}')

    do_POST = do_PUT = do_GET

    def log_message(self, *args):  # keep the test output quiet
        pass


@contextmanager
def _health_only_server(tls_context=None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HealthOnly)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls_context else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _self_signed_context(folder: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def _server_stack(tmp_path: Path, url: str, verify_ssl: bool = True) -> Path:
    path = tmp_path / "server-stack.yaml"
    path.write_text(f"""
name: keel-test-server-stack
server: {{url: "{url}", verify_ssl: {str(verify_ssl).lower()}, connect_timeout_seconds: 5}}
components:
  orchestrator: {{name: keel-test-o, flavor: local}}
  artifact_store: {{name: keel-test-a, flavor: local, configuration: {{path: {tmp_path / 'artifacts'}}}}}
""")
    return path


def test_a_server_with_health_but_no_zenml_api_is_a_clear_error_naming_the_url(tmp_path, capsys):
    with _health_only_server() as url:
        path = _server_stack(tmp_path, url)
        environ = {"KEEL_ZENML_API_KEY": "ZENKEY_not-a-real-key"}
        with pytest.raises(StackApplyError) as error:
            apply_stack_file(path, activate=False, environ=environ)
        assert f"server.url {url}: a server answers /health there but its ZenML API does not work" in str(error.value)
        with pytest.raises(StackApplyError, match="ZenML API does not work"):
            use_stack(str(path), environ=environ)
        # Through the CLI (`--stack`): exit 1 with the message, no traceback.
        assert main(["train", "--stack", str(path)]) == 1
    err = capsys.readouterr().err
    assert "ZenML API does not work" in err and "Traceback" not in err


def test_verify_ssl_false_reaches_a_server_with_a_self_signed_certificate(tmp_path):
    with _health_only_server(_self_signed_context(tmp_path)) as url:
        with pytest.raises(StackApplyError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            check_server_reachable(url, 5, "s.yaml", verify_ssl=True)
        check_server_reachable(url, 5, "s.yaml", verify_ssl=False)  # no error


def test_stack_option_names_a_missing_extra_before_connecting(monkeypatch):
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if the package were not installed
    # The server URL answers nothing: had --stack tried to connect, the error would be about the server.
    with pytest.raises(StackApplyError, match=r"pip install -e '\.\[gcp\]'"):
        use_stack("gcp", environ={"KEEL_ZENML_SERVER_URL": "http://127.0.0.1:9"})


def test_stack_option_names_a_missing_secret_before_any_pipeline(tmp_path, capsys):
    path = tmp_path / "needs-secret.yaml"
    path.write_text(f"""
name: keel-test-needs-secret
components:
  orchestrator: {{name: keel-test-o, flavor: local}}
  artifact_store:
    name: keel-test-s3
    flavor: s3
    configuration:
      path: s3://bucket
      key: "{{{{keel_test_absent.aws_access_key_id}}}}"
      secret: "{{{{keel_test_absent.aws_secret_access_key}}}}"
""")
    with pytest.raises(StackApplyError) as error:
        use_stack(str(path), environ={})
    assert "secret 'keel_test_absent' does not exist: create it with `zenml secret create keel_test_absent" in str(error.value)
    assert main(["train", "--stack", str(path)]) == 1
    assert "secret 'keel_test_absent' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["/missing/path.yaml", "missing/dir/stack"])
def test_stack_option_with_a_missing_file_says_no_such_file(name, capsys):
    with pytest.raises(StackFileError, match="no such file"):
        use_stack(name, environ={})
    assert main(["train", "--stack", name]) == 2
    err = capsys.readouterr().err
    assert f"--stack {name}: no such file" in err and "stacks//" not in err and ".yaml.yaml" not in err


def test_a_configuration_key_the_flavor_refuses_is_a_stack_file_error():
    stack = load_stack_file(STACKS_DIR / "local.yaml", {})
    component = stack.components["artifact_store"].model_copy(update={"configuration": {"paht": "/tmp/x"}})
    with pytest.raises(StackFileError) as error:
        desired_configuration("artifact_store", component, "stacks/local.yaml")
    assert "stacks/local.yaml: components.artifact_store.configuration: not valid for the 'local' flavor" in str(error.value)
    assert "paht" in str(error.value)


def test_removing_the_description_is_applied_once_then_unchanged(tmp_path):
    from zenml.client import Client

    def write(file_name: str, description: str) -> Path:
        path = tmp_path / file_name
        path.write_text(f"""
name: keel-test-described
{description}
components:
  orchestrator: {{name: keel-test-described-o, flavor: local}}
  artifact_store: {{name: keel-test-described-a, flavor: local, configuration: {{path: {tmp_path / 'artifacts'}}}}}
""")
        return path

    def stack_result(path: Path) -> tuple:
        change = apply_stack_file(path, activate=False, environ={})[-1]
        return change.action, change.keys

    described = write("described.yaml", "description: first words")
    assert stack_result(described)[0] in ("created", "unchanged", "updated")
    assert stack_result(described) == ("unchanged", [])
    bare = write("bare.yaml", "")
    assert stack_result(bare) == ("updated", ["description"])
    assert (Client().get_stack("keel-test-described").description or "") == ""
    assert stack_result(bare) == ("unchanged", [])
    assert stack_result(described) == ("updated", ["description"])
    assert stack_result(described) == ("unchanged", [])

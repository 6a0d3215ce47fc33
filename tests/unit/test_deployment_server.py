"""The service helpers: readiness against things that are not a keel service, headers on requests,
and a service that cannot start failing loudly with its log."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from keel.deployment.server import ServiceNotAnswering, is_ready, post_json, service_url, start_service
from tests.support.servers import free_port


def test_a_listener_that_does_not_speak_http_is_not_ready():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_garbage():
        connection, _ = listener.accept()
        connection.recv(1024)
        connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")  # BadStatusLine for http.client
        connection.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        assert is_ready(service_url("127.0.0.1", listener.getsockname()[1])) is False
    finally:
        thread.join(5)
        listener.close()


def test_nothing_listening_is_not_ready():
    assert is_ready(service_url("127.0.0.1", free_port())) is False


def test_post_json_sends_extra_headers():
    seen = {}

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.update({name.lower(): value for name, value in self.headers.items()})
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = service_url("127.0.0.1", server.server_port)
        assert post_json(url, {"a": 1}, headers={"X-API-Key": "s3cret"}) == (200, {"ok": True})
        assert seen["x-api-key"] == "s3cret" and seen["content-type"] == "application/json"
        assert post_json(url, {"a": 1})[0] == 200  # the old call still works
    finally:
        server.shutdown()
        server.server_close()


def test_a_service_that_cannot_start_raises_with_the_end_of_its_log(tmp_path, monkeypatch):
    """The spec asks for an API key whose variable is unset: the service refuses to start."""
    from keel.deployment.bundle import write_bundle
    from keel.serving.routing import Arm, RoutingTable
    from keel.spec import load_spec
    from tests.conftest import ROOT

    monkeypatch.delenv("KEEL_TEST_MISSING_KEY", raising=False)
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    write_bundle(tmp_path, spec, {1: "a model is never loaded: the key check fails first"}, {1: 0.5},
                 RoutingTable([Arm("champion", 1, 1.0)]), None, api_key_env="KEEL_TEST_MISSING_KEY")
    with pytest.raises(ServiceNotAnswering) as raised:
        start_service(tmp_path, "127.0.0.1", free_port(), wait_seconds=60)
    assert "did not become ready" in str(raised.value)
    assert "$KEEL_TEST_MISSING_KEY is not set" in str(raised.value)  # the log's tail says why
    assert not (tmp_path / "service.pid").exists()  # and nothing is left running

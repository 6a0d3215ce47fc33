"""The service helpers: readiness against things that are not this keel service, who holds a port,
headers on requests, and a service that cannot start failing loudly with its log."""

import json
import os
import socket
import sys
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, HTTPServer

import psutil
import pytest

from keel.deployment.server import (PortTaken, ServiceNotAnswering, ensure_port_free, is_ready, port_in_use,
                                    post_json, refuse_held_port, service_url, start_service)
from keel.serving.identity import ServiceIdentity
from tests.support.servers import free_port

OURS = ServiceIdentity("credit_risk", Path("/srv/keel/deployments/credit_risk"))


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
        assert is_ready(service_url("127.0.0.1", listener.getsockname()[1]), OURS) is False
    finally:
        thread.join(5)
        listener.close()


def test_nothing_listening_is_not_ready():
    assert is_ready(service_url("127.0.0.1", free_port()), OURS) is False


class _Readyz(BaseHTTPRequestHandler):
    """Answers /readyz 200 with the server's `answer` (bytes)."""

    def do_GET(self):
        body = self.server.answer if self.path == "/readyz" else b""
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def readyz_server():
    """An HTTP server on a free port whose /readyz answers 200 with what the test sets."""
    server = HTTPServer(("127.0.0.1", 0), _Readyz)
    server.answer = b"\n"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _answering(server, identity) -> str:
    server.answer = json.dumps(identity.answer()).encode() if isinstance(identity, ServiceIdentity) else identity
    return service_url("127.0.0.1", server.server_port)


def test_ready_means_ready_as_this_service(readyz_server):
    """Another keel project's service (same model name, another folder), another model, BentoML's
    bare answer: all ready, none of them ours."""
    other_project = ServiceIdentity("credit_risk", Path("/home/someone/else/.keel/deployments/credit_risk"))
    assert is_ready(_answering(readyz_server, other_project), OURS) is False
    assert is_ready(_answering(readyz_server, ServiceIdentity("churn", OURS.folder)), OURS) is False
    assert is_ready(_answering(readyz_server, b"\n"), OURS) is False
    assert is_ready(_answering(readyz_server, OURS), OURS) is True


def test_a_port_held_by_a_plain_listener_is_refused_naming_its_process():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        assert port_in_use("127.0.0.1", port)
        with pytest.raises(PortTaken) as raised:
            ensure_port_free("127.0.0.1", port, OURS)
        message = str(raised.value)
        assert f"port {port} on 127.0.0.1 is held by pid {os.getpid()} (" in message  # this test process
        own_command = " ".join(psutil.Process().cmdline())[:300]  # pytest, or an xdist worker's python -c
        assert own_command in message and "not this deployment's keel service" in message
    finally:
        listener.close()
    assert not port_in_use("127.0.0.1", port)
    ensure_port_free("127.0.0.1", port, OURS)  # free again: no error


def test_a_port_held_by_another_keel_service_is_refused_naming_it(readyz_server):
    port = readyz_server.server_port
    _answering(readyz_server, ServiceIdentity("churn", Path("/elsewhere/churn")))
    with pytest.raises(PortTaken) as raised:
        ensure_port_free("127.0.0.1", port, OURS)
    assert "a keel service of model 'churn' from another deployment folder" in str(raised.value)
    _answering(readyz_server, OURS)
    ensure_port_free("127.0.0.1", port, OURS)  # our own service: deploy reuses it
    with pytest.raises(PortTaken) as raised:  # but a second server of ours could not bind there
        refuse_held_port("127.0.0.1", port, OURS)
    assert "this deployment's own service" in str(raised.value)


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


def test_our_own_service_still_starting_holds_the_port_as_ours(tmp_path):
    """The folder's recorded server holds the port but does not answer ready yet (or no longer): a
    deploy may wait for it, a second server may not start, and the message says whose it is."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    (tmp_path / "service.pid").write_text(str(os.getpid()))  # the recorded server: this process, the holder
    ours = ServiceIdentity("credit_risk", tmp_path)
    try:
        ensure_port_free("127.0.0.1", port, ours)
        with pytest.raises(PortTaken) as raised:
            refuse_held_port("127.0.0.1", port, ours)
        assert f"pid {os.getpid()} (" in str(raised.value)
        assert f"this deployment's own service, not answering ready (see {tmp_path / 'service.log'})" in str(raised.value)
    finally:
        listener.close()


def _never_ready(tmp_path, argv, wait_seconds=30.0):
    """_wait_until_ready on a process that never serves: the ServiceNotAnswering it raises, and after
    how many seconds."""
    import subprocess
    import time

    from keel.deployment.server import _wait_until_ready

    (tmp_path / "service.log").write_bytes(b"an earlier run's lines: ValueError: not this one\n")
    process = subprocess.Popen([sys.executable, "-c", argv])
    started = time.monotonic()
    try:
        with pytest.raises(ServiceNotAnswering) as raised:
            _wait_until_ready(process, service_url("127.0.0.1", free_port()), ServiceIdentity("credit_risk", tmp_path),
                              len((tmp_path / "service.log").read_bytes()), wait_seconds)
    finally:
        process.kill()
        process.wait()
    return str(raised.value), time.monotonic() - started


def test_a_service_that_exits_before_it_is_ready_is_named_at_once(tmp_path):
    message, seconds = _never_ready(tmp_path, "raise SystemExit(3)")
    assert message.startswith("the service at http://127.0.0.1:") and seconds < 10
    assert message.endswith(f"did not become ready: it exited with code 3; its log: {tmp_path / 'service.log'}")


def test_a_startup_failure_in_the_log_is_named_with_its_exception(tmp_path):
    script = (f"import time; log = open({str(tmp_path / 'service.log')!r}, 'a'); "
              "log.write('Traceback ...\\nRuntimeError: the spec asks for an API key, but $K is not set\\n"
              "ERROR: Application startup failed. Exiting.\\n'); log.close(); time.sleep(60)")
    message, seconds = _never_ready(tmp_path, script)
    assert seconds < 10  # the process still runs (BentoML's arbiter does): the log says it failed
    assert ("did not become ready: its startup failed (RuntimeError: the spec asks for an API key, but $K is not "
            f"set); its log: {tmp_path / 'service.log'}") in message


def test_a_service_not_ready_within_the_bound_is_named(tmp_path):
    message, seconds = _never_ready(tmp_path, "import time; time.sleep(60)", wait_seconds=1.0)
    assert 1.0 <= seconds < 10
    assert message.endswith(f"did not become ready: it was not ready within 1 s; its log: {tmp_path / 'service.log'}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_child_started_to_die_with_its_parent_ends_when_the_parent_is_sigkilled():
    """What serve_foreground gives the BentoML server: a SIGKILLed parent cannot stop it itself."""
    import signal
    import subprocess
    import time

    import psutil

    from tests.conftest import ROOT

    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; from keel.deployment.server import _dies_with_this_process; "
         "child = subprocess.Popen(['sleep', '60'], preexec_fn=_dies_with_this_process()); "
         "print(child.pid, flush=True); time.sleep(60)"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        assert child.status() != psutil.STATUS_ZOMBIE
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        if child.is_running():
            child.kill()
        parent.stdout.close()


def test_the_spec_takes_workers_and_a_postgresql_url_for_the_driver_keel_ships():
    from pydantic import ValidationError

    from keel.spec.deployment import DeploymentSpec

    assert DeploymentSpec().workers == 1 and DeploymentSpec(workers=4).workers == 4
    with pytest.raises(ValidationError, match="workers"):
        DeploymentSpec(workers=0)
    url = DeploymentSpec(prediction_log_url="postgresql://keel:p%40ss@db.internal:5432/keel").prediction_log_url
    assert url == "postgresql+psycopg://keel:p%40ss@db.internal:5432/keel"  # the password kept, still escaped
    assert DeploymentSpec(prediction_log_url="sqlite:////srv/log.db").prediction_log_url == "sqlite:////srv/log.db"

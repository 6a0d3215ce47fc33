"""Ports, identity and signals against a real keel BentoML service on 127.0.0.1 (no ZenML needed).

A port held by another process is one clear error naming it, before anything is written; /readyz says
whose service answers, so another project's service on the port is never taken for ours; SIGTERM and
SIGINT to a foreground service free the port within seconds and leave no process behind; with an API
key, /metrics and the documents want it too; a lone surrogate in a request is a 4xx.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import psutil
import pytest
from sklearn.dummy import DummyClassifier

from keel.deployment.bundle import write_bundle
from keel.deployment.server import (PortTaken, ensure_port_free, is_ready, port_in_use, port_taken, post_json,
                                    readyz, running_pid, service_url, start_service, stop_service)
from keel.serving.identity import ServiceIdentity
from keel.serving.routing import Arm, RoutingTable
from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

KEY_ENV, KEY = "KEEL_TEST_PORTS_KEY", "ports-s3cret"
STOP_SECONDS = 10  # SIGTERM or SIGINT to a foreground service: the port is free within this


def _spec(folder, port, **deployment):
    from keel.spec import load_spec

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [f"deployment.folder={folder}", f"deployment.port={port}",
                                                             "deployment.allow_folder_outside_project=true"])
    return spec.model_copy(update={"deployment": spec.deployment.model_copy(update=deployment)})


def _bundle(folder, spec, api_key_env=None):
    """A bundle serving a model that answers the base rate (fast to build, real HTTP all the same)."""
    frame = pd.DataFrame({name: [0, 1] for name in spec.data.model_features})
    model = DummyClassifier(strategy="prior").fit(frame, [0, 1])
    write_bundle(folder, spec, {1: model}, {1: 0.5}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{folder / 'predictions.db'}", api_key_env=api_key_env)
    return folder


@pytest.fixture(scope="module")
def record():
    from keel.lifecycle.deployment import example_record
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    found = example_record(spec, generate_credit_applications(spec.data.source.model_copy(update={"rows": 50})))
    return {k: v for k, v in found.items() if k not in (spec.data.id_column, "entity_id")}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """This project's service, with an API key, on a free port."""
    os.environ[KEY_ENV] = KEY  # the service process reads it from the environment it starts with
    root = tmp_path_factory.mktemp("project")
    port = free_port()
    spec = _spec(root / "deployments", port, api_key_env=KEY_ENV)
    folder = _bundle(root / "deployments" / spec.problem.name, spec, KEY_ENV)
    start_service(folder, "127.0.0.1", port)
    try:
        yield {"spec": spec, "folder": folder, "port": port, "url": service_url("127.0.0.1", port)}
    finally:
        stop_service(folder)
        os.environ.pop(KEY_ENV, None)


def _get(url: str, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_readyz_says_whose_service_answers(service):
    ours = ServiceIdentity(service["spec"].problem.name, service["folder"])
    assert readyz(service["url"]) == {"service": "keel", "model": "credit_risk", "deployment": ours.deployment}
    assert is_ready(service["url"], ours)
    # The same model name from another project's folder is another service.
    assert not is_ready(service["url"], ServiceIdentity("credit_risk", service["folder"].parent / "elsewhere"))


def test_another_projects_deploy_refuses_the_port_naming_the_holder(service, tmp_path):
    """As when another keel project deploys on the default port while ours serves there: one error
    naming our service's process, and nothing of the other project is written or started."""
    other = _spec(tmp_path / "deployments", service["port"])
    message = port_taken(other)
    holder = running_pid(service["folder"])
    assert message.startswith(f"keel: port {service['port']} on 127.0.0.1 is held by pid {holder} (")
    assert "bentoml serve serving.service:KeelService" in message
    assert "a keel service of model 'credit_risk' from another deployment folder" in message
    assert not (tmp_path / "deployments").exists()
    assert port_taken(service["spec"]) is None  # to our own deploy it is our running service


def test_a_port_held_by_a_plain_listener_is_refused_before_anything_starts(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    spec = _spec(tmp_path / "deployments", port)
    folder = _bundle(tmp_path / "deployments" / spec.problem.name, spec)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    try:
        assert port_taken(spec) == (f"keel: port {port} on 127.0.0.1 is held by pid {os.getpid()} "
                                    f"({' '.join(psutil.Process().cmdline())[:300]}), which is not this "
                                    "deployment's keel service: stop it, or give this service another port "
                                    "(deployment.port)")
        with pytest.raises(PortTaken, match=f"held by pid {os.getpid()} "):
            start_service(folder, "127.0.0.1", port)
        after = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
        assert after == before  # no service.pid, no log: nothing was started
    finally:
        listener.close()
    ensure_port_free("127.0.0.1", port, ServiceIdentity(spec.problem.name, folder))


# Loaded by the first Python process started with these variables (the `bentoml serve` of the first start):
# its arbiter's first ZeroMQ endpoint is the port the test holds, as when another process's connection
# took the port BentoML had found free.
ARBITER_PORT_TAKEN = """
import os

_port, _once = os.environ.get("KEEL_TEST_ARBITER_PORT"), os.environ.get("KEEL_TEST_ARBITER_ONCE")
if _port and _once:
    try:
        os.close(os.open(_once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        pass
    else:
        import contextlib

        import bentoml._internal.utils as utils
        import bentoml._internal.utils.circus as circus

        reserve, create = utils.reserve_free_port, circus.create_standalone_arbiter
        handed = []

        @contextlib.contextmanager
        def taken_first(*args, **kwargs):
            if not handed:
                handed.append(int(_port))
                yield int(_port)
            else:
                with reserve(*args, **kwargs) as port:
                    yield port

        def create_on_a_taken_port(*args, **kwargs):
            utils.reserve_free_port = taken_first
            try:
                return create(*args, **kwargs)
            finally:
                utils.reserve_free_port = reserve

        circus.create_standalone_arbiter = create_on_a_taken_port
"""


def test_a_start_whose_arbiter_port_was_taken_is_started_again(tmp_path, monkeypatch):
    port = free_port()
    spec = _spec(tmp_path / "deployments", port)
    folder = _bundle(tmp_path / "deployments" / spec.problem.name, spec)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ARBITER_PORT_TAKEN)
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    once = tmp_path / "arbiter-port-taken"
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("KEEL_TEST_ARBITER_PORT", str(held.getsockname()[1]))
    monkeypatch.setenv("KEEL_TEST_ARBITER_ONCE", str(once))
    try:
        pid = start_service(folder, "127.0.0.1", port)
        assert once.exists()  # the first start was given the taken port
        log = (folder / "service.log").read_text()
        assert log.count("zmq.error.ZMQError: Address already in use") == 1
        assert running_pid(folder) == pid and is_ready(service_url("127.0.0.1", port),
                                                       ServiceIdentity(spec.problem.name, folder))
    finally:
        stop_service(folder)
        held.close()


def test_deploy_rollback_and_serve_refuse_a_held_port_before_anything_runs(tmp_path, capsys):
    """The commands check the port first: no pipeline run, no bundle, the holder named."""
    from zenml.client import Client

    from keel.cli.deploy import serve
    from keel.lifecycle.deployment import deploy_version, rollback_production

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    spec = _spec(tmp_path / "deployments", port)
    holder = f"is held by pid {os.getpid()} ("
    try:
        deployed = deploy_version(spec, None)
        assert deployed.exit_code == 1 and holder in deployed.error and deployed.evidence is None
        rolled_back = rollback_production(spec)
        assert rolled_back.exit_code == 1 and holder in rolled_back.error
        assert serve(spec, None) == 1 and holder in capsys.readouterr().err
    finally:
        listener.close()
    assert Client().list_pipeline_runs(size=1).total == 0
    assert not (tmp_path / "deployments" / spec.problem.name / "deployment.json").exists()


def test_with_a_key_metrics_and_documents_want_it(service, record):
    url = service["url"]
    assert post_json(f"{url}/predict", record, headers={"X-API-Key": KEY})[0] == 200  # counted in /metrics
    for path in ("/metrics", "/", "/docs.json", "/openapi.json", "/schema.json"):
        status, body = _get(url + path)
        assert status == 401 and json.loads(body)["errors"][0]["problem"].startswith("missing or wrong API key"), path
        assert _get(url + path, {"X-API-Key": "wrong"})[0] == 401, path
        assert _get(url + path, {"X-API-Key": KEY})[0] == 200, path
        assert _get(url + path, {"Authorization": f"Bearer {KEY}"})[0] == 200, path
    for path in ("/livez", "/healthz", "/readyz"):  # probes carry no key
        assert _get(url + path)[0] == 200, path
    assert b"keel_requests" in _get(url + "/metrics", {"X-API-Key": KEY})[1]


def test_the_spec_may_expose_them(service):
    """deployment.api_key_protects_docs_and_metrics: false; scoring still wants the key."""
    spec = service["spec"]
    exposed = spec.model_copy(update={"deployment": spec.deployment.model_copy(
        update={"api_key_protects_docs_and_metrics": False})})
    _bundle(service["folder"], exposed, KEY_ENV)  # the service reloads the bundle on its next request
    try:
        assert {path: _get(service["url"] + path)[0] for path in ("/metrics", "/docs.json", "/openapi.json")} == \
            {"/metrics": 200, "/docs.json": 200, "/openapi.json": 200}
        assert post_json(f"{service['url']}/predict", {"entity_id": "x"})[0] == 401
    finally:
        _bundle(service["folder"], spec, KEY_ENV)
    assert _get(service["url"] + "/metrics")[0] == 401


def _post_raw(url: str, body: bytes):
    request = urllib.request.Request(f"{url}/predict", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-API-Key": KEY})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_lone_surrogate_is_a_4xx_and_the_service_keeps_serving(service, record):
    url, good = service["url"], json.dumps(record)[:-1]
    status, body = _post_raw(url, (good + r', "entity_id": "\ud800"}').encode())
    assert status == 422 and [e["field"] for e in body["errors"]] == ["entity_id"]
    assert "lone UTF-16 surrogate" in body["errors"][0]["problem"] and body["errors"][0]["found"] == "\\ud800"
    status, body = _post_raw(url, (good.replace('"region": "', '"region": "\\udfff') + "}").encode())
    assert status == 422 and body["errors"][0]["field"] == "region"
    status, body = _post_raw(url, ("[" + good + r', "\ud800": 1}]').encode())
    assert status == 422 and body["errors"][0]["field"] == "records[0]"
    status, body = _post_raw(url, (good + r', "entity_id": "caf\u00e9 \ud83d\ude00"}').encode())
    assert status == 200 and body["predictions"][0]["entity_id"] == "caf\u00e9 \U0001F600"


FOREGROUND = "import sys; from keel.deployment.server import serve_foreground; " \
             "sys.exit(serve_foreground(sys.argv[1], '127.0.0.1', int(sys.argv[2]), " \
             "lambda url: print('READY', url, flush=True), float(sys.argv[3])))"


def _serve(tmp_path, port, api_key_env=None, ready_seconds=90):
    """`run.py serve`'s serve_foreground in its own process, as `run.py serve` runs it; its output in
    serve.log (BentoML's output, then what on_ready prints)."""
    spec = _spec(tmp_path / "deployments", port)
    folder = _bundle(tmp_path / "deployments" / spec.problem.name, spec, api_key_env)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "serve.log", "wb") as log:
        serve = subprocess.Popen([sys.executable, "-c", FOREGROUND, str(folder), str(port), str(ready_seconds)],
                                 cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return serve, ServiceIdentity(spec.problem.name, folder)


def _wait_ready(serve, tmp_path, port, identity):
    """Until serve says where it serves, which is only once /readyz answers as its service."""
    deadline = time.monotonic() + 90
    while f"READY {service_url('127.0.0.1', port)}\n" not in (tmp_path / "serve.log").read_text():
        assert serve.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        time.sleep(0.3)
    assert is_ready(service_url("127.0.0.1", port), identity)
    tree = [serve.pid, *[child.pid for child in psutil.Process(serve.pid).children(recursive=True)]]
    assert len(tree) >= 3  # this process, BentoML's arbiter and its worker
    return tree


def _port_freed_within(port, since, seconds=STOP_SECONDS):
    while port_in_use("127.0.0.1", port) and time.monotonic() - since < seconds:
        time.sleep(0.1)
    assert not port_in_use("127.0.0.1", port), f"port still held {time.monotonic() - since:.1f} s after the signal"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_sigterm_sigint_and_sighup_free_the_port_and_leave_no_process(tmp_path, stop):
    """`run.py serve` runs serve_foreground: a signal to that one process (as systemd, Kubernetes or
    a CI job sends it, Ctrl+C, a closed terminal) stops the BentoML arbiter and its workers, which hold
    the port too."""
    port = free_port()
    serve, identity = _serve(tmp_path, port)
    try:
        tree = _wait_ready(serve, tmp_path, port, identity)
        sent = time.monotonic()
        serve.send_signal(stop)
        assert serve.wait(timeout=STOP_SECONDS) == 128 + stop
        _port_freed_within(port, sent)
        assert [pid for pid in tree if _alive(pid)] == []
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_a_sigkilled_serve_takes_its_server_with_it(tmp_path):
    """SIGKILL cannot be handled: the BentoML server was told at its start to end with its parent."""
    port = free_port()
    serve, identity = _serve(tmp_path, port)
    tree = []
    try:
        tree = _wait_ready(serve, tmp_path, port, identity)
        sent = time.monotonic()
        serve.kill()
        serve.wait()
        _port_freed_within(port, sent)
        deadline = time.monotonic() + STOP_SECONDS
        while [pid for pid in tree if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in tree if _alive(pid)] == []
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        for pid in tree:  # what a failed check left running
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_service_that_cannot_start_ends_serve_promptly_naming_why(tmp_path):
    """Its API key's variable is unset, so the service's startup fails while BentoML's arbiter keeps
    running: serve does not wait out its readiness bound (600 s here), it exits 1 naming the failure and
    the log, and leaves nothing on the port."""
    os.environ.pop(KEY_ENV + "_UNSET", None)
    port = free_port()
    started = time.monotonic()
    serve, identity = _serve(tmp_path, port, api_key_env=KEY_ENV + "_UNSET", ready_seconds=600)
    try:
        assert serve.wait(timeout=120) == 1
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    output = (tmp_path / "serve.log").read_text()
    assert time.monotonic() - started < 120 and "READY" not in output
    assert (f"the service at {service_url('127.0.0.1', port)} did not become ready: its startup failed "
            f"(") in output
    assert f"${KEY_ENV}_UNSET is not set" in output.rsplit("did not become ready", 1)[1]  # the exception named
    assert f"its log: {identity.folder / 'service.log'}" in output
    assert "Application startup failed" in (identity.folder / "service.log").read_text()  # BentoML's output kept
    assert not port_in_use("127.0.0.1", port)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

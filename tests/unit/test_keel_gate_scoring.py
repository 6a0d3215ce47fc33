"""KeelGate answers POST /predict and /explain itself (issue 20: without BentoML's context, the
routers and FastAPI's layers): the scorer's answers as JSONResponse would encode them, a body sent
in chunks read whole, malformed bodies a 4xx, a client gone before its body answered with nothing,
every other method and path handed on to the app. A real Scorer over a real bundle and log."""

import asyncio
import json
import sqlite3

import pytest

from keel.deployment.bundle import write_bundle
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer


@pytest.fixture(scope="module")
def trained():
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec
    from keel.training.in_process import train_in_process
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=2000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=20"])
    return spec, train_in_process(generate_credit_applications(spec.data.source), spec)


@pytest.fixture
def gate(tmp_path, trained, monkeypatch):
    """(KeelGate around an app that records what reaches it, the record, the log file, a valid body)."""
    import serving.service as service
    spec, result = trained
    write_bundle(tmp_path, spec, {1: result.selected.pipeline}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    monkeypatch.setattr(service, "_scorer", lambda: scorer)  # BentoML's current-service lookup
    reached = []

    async def app(scope, receive, send):
        reached.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    row = json.loads(result.test[spec.data.model_features].head(1).to_json(orient="records"))[0]
    yield service.KeelGate(app), reached, tmp_path / "log.db", json.dumps({**row, "entity_id": "e1"}).encode()
    scorer.commits.close()


def _call(gate, method, path, chunks, headers=()):
    """Drive the ASGI app once: (status, headers, body) it sent, or None when it sent nothing."""
    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.encode(), v.encode()) for k, v in headers]}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    messages = messages or [{"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    if not sent:
        return None
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def test_predict_is_answered_after_its_commit_with_jsonresponse_bytes(gate):
    keel_gate, reached, log, body = gate
    status, headers, content = _call(keel_gate, "POST", "/predict", [body[:10], body[10:]],
                                     [("x-request-id", "gate-1")])
    answer = json.loads(content)
    assert status == 200 and reached == []
    assert answer["request_id"] == "gate-1" and answer["predictions"][0]["entity_id"] == "e1"
    assert content == json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
    assert headers[b"content-length"] == str(len(content)).encode()
    with sqlite3.connect(log) as connection:
        assert [r for (r,) in connection.execute("SELECT request_id FROM predictions")] == ["gate-1"]


def test_malformed_bodies_are_4xx_and_a_retried_id_409(gate):
    keel_gate, reached, _, body = gate
    assert _call(keel_gate, "POST", "/predict", [b"{not json"])[0] == 400
    assert _call(keel_gate, "POST", "/predict", [b""])[0] == 400
    status, _, content = _call(keel_gate, "POST", "/predict", [json.dumps({"entity_id": "x"}).encode()])
    assert status == 422 and json.loads(content)["errors"]
    assert _call(keel_gate, "POST", "/explain", [b"[1, 2]"])[0] in (400, 422)
    assert _call(keel_gate, "POST", "/predict", [body], [("x-request-id", "twice")])[0] == 200
    assert _call(keel_gate, "POST", "/predict", [body], [("x-request-id", "twice")])[0] == 409
    assert reached == []


def test_explain_answers_and_other_methods_and_paths_reach_the_app(gate):
    keel_gate, reached, _, body = gate
    status, _, content = _call(keel_gate, "POST", "/explain", [body])
    assert status == 200 and "contributions" in json.loads(content)
    assert _call(keel_gate, "GET", "/predict", [b""])[0] == 405
    assert _call(keel_gate, "POST", "/livez", [b""])[0] == 405
    assert reached == [("GET", "/predict"), ("POST", "/livez")]


def test_a_client_gone_before_its_body_gets_no_answer_and_nothing_is_logged(gate):
    keel_gate, _, log, _ = gate
    assert _call(keel_gate, "POST", "/predict", []) is None
    with sqlite3.connect(log) as connection:
        assert connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0


def test_a_body_over_the_limit_is_413_and_is_not_kept_whole(gate):
    from serving.service import _body

    keel_gate, reached, log, body = gate
    limit = 1_000_000  # the bundle's max_body_bytes (keel.serving.scorer.MAX_BODY_BYTES)
    chunks = [b"x" * 400_000] * 4  # 1.6 MB in chunks, as a client streams it
    status, _, content = _call(keel_gate, "POST", "/predict", chunks)
    assert status == 413 and "body larger than" in json.loads(content)["errors"][0]["problem"]
    assert reached == []

    messages = [{"type": "http.request", "body": c, "more_body": i < 3} for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0)

    kept = asyncio.run(_body(receive, limit + 1))
    assert len(kept) == limit + 1 and messages == []  # read to the end, kept only past the limit by one byte


def test_a_declared_length_over_the_limit_is_413_once_its_body_stalls(gate, monkeypatch):
    """helper-60: Content-Length 5,000,000 with 7 bytes sent was answered 504 after the server's 10 s
    timeout, waiting for bytes that never came; the README promises 413. A body that keeps coming is
    read to its end first (closing on a client still sending resets its connection before it reads the 413)."""
    import serving.service as service

    monkeypatch.setattr(service, "STALLED_BODY_SECONDS", 0.05)
    keel_gate, reached, log, body = gate
    scope = {"type": "http", "method": "POST", "path": "/predict",
             "headers": [(b"content-length", b"5000000"), (b"content-type", b"application/json")]}
    chunks, sent = [b'{"a": 1}', b"x" * 10], []

    async def receive():
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes

    async def send(message):
        sent.append(message)

    asyncio.run(keel_gate(scope, receive, send))
    answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert sent[0]["status"] == 413 and chunks == [] and reached == []
    assert answer["errors"] == [{"field": "body", "problem": "body larger than 1000000 bytes", "found": 5000000}]
    # A declared length within the limit, or none, is read as before.
    assert _call(keel_gate, "POST", "/predict", [body], [("content-length", str(len(body)))])[0] == 200
    assert _call(keel_gate, "POST", "/predict", [body], [("content-length", "not a number")])[0] == 200

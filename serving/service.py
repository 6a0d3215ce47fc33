"""keel's BentoML 1.4 service: a thin HTTP front over `keel.serving.scorer.Scorer`.

    KEEL_DEPLOYMENT_DIR=<folder> bentoml serve serving.service:KeelService --host 127.0.0.1 --port 3000

POST /predict and POST /explain are answered by keel's ASGI middleware (`KeelGate`) through the
scorer, so every bad payload gets a 4xx with field-level messages (never a 500); they are declared as
FastAPI routes too (the OpenAPI document). BentoML adds /healthz, /livez, /readyz and the
Prometheus /metrics endpoint, where keel's per-model-version counters appear too. `KeelGate` answers
/readyz with the service's identity and, when the spec asks for an API key, keeps every route but
probes and scoring (/metrics, /, /docs.json, /openapi.json, ...) behind it too. Champion,
challenger and shadow are routed inside each worker process (no composed services); with
`deployment.workers: N` every worker routes an entity to the same arm (a hash), commits its
predictions to the shared log in groups (`keel.serving.group_commit`) and /metrics adds up all
workers' counters. /explain answers with the base value too: base_value + sum(contributions) =
raw_output (the model's log-odds).
"""

import asyncio
import gc
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import bentoml
from bentoml.exceptions import BentoMLException
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

import keel  # noqa: F401  (telemetry off before anything else)
from keel.serving.layout import DEPLOYMENT_FILE, SCORING_PATHS, gated

if TYPE_CHECKING:
    from keel.serving.scorer import Scorer

api = FastAPI(title="keel scoring service", docs_url=None, redoc_url=None)

REQUESTS = bentoml.metrics.Counter(name="keel_requests", documentation="Model calls by version, arm and outcome",
                                   labelnames=["model_version", "arm", "outcome"])
LATENCY = bentoml.metrics.Histogram(name="keel_model_latency_ms", documentation="Model latency per call (ms)",
                                    labelnames=["model_version", "arm"],
                                    buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000))
# Group commit at work: requests / commits is the mean group size (1 when each request commits alone).
LOG_COMMITS = bentoml.metrics.Counter(name="keel_prediction_log_commits",
                                      documentation="Transactions committed to the prediction log")
LOG_COMMITTED_REQUESTS = bentoml.metrics.Counter(name="keel_prediction_log_committed_requests",
                                                 documentation="Requests whose predictions those transactions held")


def _observe_commit(requests: int) -> None:
    LOG_COMMITS.inc()
    LOG_COMMITTED_REQUESTS.inc(requests)


# The labelled children of both metrics per (version, arm, ok), looked up once: `labels()` builds
# and checks its label tuple under a lock on every call.
_CHILDREN: dict = {}


def _observe(version: int, arm: str, ok: bool, milliseconds: float) -> None:
    children = _CHILDREN.get((version, arm, ok))
    if children is None:
        children = _CHILDREN[(version, arm, ok)] = (
            REQUESTS.labels(model_version=str(version), arm=arm, outcome="ok" if ok else "error"),
            LATENCY.labels(model_version=str(version), arm=arm))
    children[0].inc()
    children[1].observe(milliseconds)


STOPPING = {"errors": [{"field": "body", "problem": "the service is starting or stopping", "found": None}]}


def _scorer() -> Optional["Scorer"]:
    """The service's scorer; None while BentoML has no service instance (starting, stopping)."""
    try:
        return bentoml.get_current_service().scorer
    except BentoMLException:
        return None


async def _send_json(send, status: int, body: dict, content: Optional[bytes] = None) -> None:
    content = content or json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]})
    await send({"type": "http.response.body", "body": content})


class KeelGate:
    """ASGI middleware around every route, BentoML's own included (they are not FastAPI's)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/readyz":
            return await self.app(scope, receive, self._identified(send))
        if path in SCORING_PATHS and scope["method"] == "POST":
            return await _score(path, scope, receive, send)
        if not gated(path):  # probes, which need no key
            return await self.app(scope, receive, send)
        scorer = _scorer()
        if scorer is None:  # without the spec nothing is known to be open
            return await _send_json(send, 503, STOPPING)
        refusal = scorer.refusal(path, Headers(scope=scope))
        if refusal is not None:
            return await _send_json(send, refusal.status, refusal.body)
        return await self.app(scope, receive, send)

    @staticmethod
    def _identified(send):
        """BentoML's ready answer (a bare newline) replaced by whose service this is; other answers kept."""
        ready = False

        async def identified(message) -> None:
            nonlocal ready
            if message["type"] == "http.response.start" and message["status"] == 200:
                ready = True
                return
            if ready and message["type"] == "http.response.body":
                if not message.get("more_body"):
                    scorer = _scorer()
                    await _send_json(send, *((200, scorer.identity()) if scorer else (503, STOPPING)))
                return
            await send(message)

        return identified


async def _score(path: str, scope, receive, send) -> None:
    """POST /predict and /explain, answered here rather than by the FastAPI routes below: the same
    answers without the layers between this middleware and a route (BentoML's request context, two
    routers, FastAPI's exception middlewares and dependency solving), which cost more per request
    than keel's validation (benchmarks/RESULTS.md). BentoML's metrics, access log, timeout and
    concurrency limit are outside this middleware and still see every request."""
    scorer = _scorer()
    headers = Headers(scope=scope)
    oversized = scorer.declared_too_large(headers) if scorer is not None else None
    if oversized is not None:
        # Read and dropped while it keeps coming (closing on a client still sending resets its connection
        # before it reads the 413), answered once it ends or stalls: bytes declared but never sent waited
        # for BentoML's timeout and got its 504.
        if await _drain(receive, STALLED_BODY_SECONDS):
            await _send_json(send, oversized.status, oversized.body)
        return
    # At most one byte past the limit is kept, so the scorer answers 413 without the body in memory.
    body = await _body(receive, scorer.max_body_bytes + 1 if scorer is not None else 0)
    if body is None:  # the client went away before sending its body: no one to answer
        return
    if scorer is None:
        return await _send_json(send, 503, STOPPING)
    if path == "/predict":
        answer = await scorer.predict_async(body, headers)
    else:
        answer = scorer.explain(body, headers)
    # Encoded as JSONResponse encodes, so the answers are the routes' bytes (the payload contract
    # refuses the lone surrogates UTF-8 cannot hold).
    await _send_json(send, answer.status, answer.body,
                     json.dumps(answer.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode())


STALLED_BODY_SECONDS = 1.0  # no byte of a body already over the limit for this long: answered 413 without the rest


async def _drain(receive, stalled_seconds: float) -> bool:
    """Read the request body to its end or until nothing arrives for `stalled_seconds`, keeping none of
    it; False when the client went away (no one to answer)."""
    while True:
        try:
            message = await asyncio.wait_for(receive(), stalled_seconds)
        except asyncio.TimeoutError:
            return True
        if message["type"] == "http.disconnect":
            return False
        if not message.get("more_body"):
            return True


async def _body(receive, keep: int) -> Optional[bytes]:
    """The request body's first `keep` bytes, the rest read and dropped (a body of any size costs no
    more memory than the limit); None when the client went away before sending it all."""
    chunks, kept = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if kept < keep:
            chunk = message.get("body", b"")[: keep - kept]
            chunks.append(chunk)
            kept += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _workers() -> int:
    """deployment.workers of the bundle served (BentoML takes the count when the service is defined,
    before any worker starts); 1 when there is no bundle yet (e.g. `bentoml build`)."""
    folder = os.environ.get("KEEL_DEPLOYMENT_DIR")
    try:
        config = json.loads((Path(folder) / DEPLOYMENT_FILE).read_text()) if folder else {}
    except (OSError, ValueError):
        return 1
    return int(config.get("spec", {}).get("deployment", {}).get("workers", 1))


@bentoml.service(
    name="keel",
    # Each worker is a process with its own models, routing table and log writer; BentoML's arbiter
    # hands them the one listening socket and keeps the Prometheus counters in a shared directory.
    workers=_workers(),
    traffic={"timeout": 10},
    # Per-request spans are not sampled anyway; skipping them avoids their per-request garbage.
    tracing={"excluded_urls": ["/predict", "/explain", "/healthz", "/livez", "/readyz", "/metrics"]},
)
@bentoml.asgi_app(api, path="/")
class KeelService:
    def __init__(self) -> None:
        folder = os.environ.get("KEEL_DEPLOYMENT_DIR")
        if not folder:
            raise RuntimeError("set KEEL_DEPLOYMENT_DIR to a deployment folder (python run.py serve does)")
        # Imported here, in the worker: BentoML's supervisor imports this module only for its settings.
        from keel.serving.scorer import Scorer

        self.scorer = Scorer(Path(folder), observe=_observe, observe_commit=_observe_commit)
        # The models are loaded for good: keep the collector from rescanning them on every full GC.
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.scorer.ready()


# The routes as FastAPI declares them (the OpenAPI document, 405 for another method); KeelGate
# answers their POSTs itself (`_score`), with the same scorer calls. Plain functions, not methods
# of the service: BentoML gives a method its `self` through a FastAPI dependency, run on a thread
# pool, several thread hops a request.
@api.post("/predict")
async def predict(request: Request) -> JSONResponse:
    scorer = _scorer()
    if scorer is None:
        return JSONResponse(STOPPING, status_code=503)
    answer = await scorer.predict_async(await request.body(), request.headers)
    return JSONResponse(answer.body, status_code=answer.status)


@api.post("/explain")
async def explain(request: Request) -> JSONResponse:
    scorer = _scorer()
    if scorer is None:
        return JSONResponse(STOPPING, status_code=503)
    answer = scorer.explain(await request.body(), request.headers)
    return JSONResponse(answer.body, status_code=answer.status)


KeelService.add_asgi_middleware(KeelGate)

"""A stand-in for the Kubernetes API server on 127.0.0.1 that records what a client submits.

No cluster runs here, so this is how keel checks what ZenML's Kubernetes orchestrator *would* create:
point a kubeconfig at it, submit, and read back every request body. Creations (POST) answer
201 with the object echoed (as the real API server does, plus a uid); reads answer 404, so clients
take their "does not exist yet" path; deletions and patches answer 200.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional


# The kind of object a collection URL holds. A client need not put `kind`/`apiVersion` in the body
# (ZenML's Job and ServiceAccount bodies have none): the API server takes them from the URL.
_KINDS = {"jobs": "Job", "cronjobs": "CronJob", "pods": "Pod", "secrets": "Secret",
          "serviceaccounts": "ServiceAccount", "rolebindings": "RoleBinding", "roles": "Role",
          "configmaps": "ConfigMap", "services": "Service", "deployments": "Deployment",
          "namespaces": "Namespace", "horizontalpodautoscalers": "HorizontalPodAutoscaler"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Optional[dict]

    @property
    def api_version(self) -> str:
        """`v1` for /api/v1/..., `batch/v1` for /apis/batch/v1/..."""
        parts = self.path.split("?")[0].strip("/").split("/")
        return parts[1] if parts[0] == "api" else f"{parts[1]}/{parts[2]}"

    @property
    def kind(self) -> Optional[str]:
        collection = self.path.split("?")[0].rstrip("/").split("/")[-1]
        return _KINDS.get(collection)

    def manifest(self) -> dict:
        """The body as a complete manifest: `apiVersion` and `kind` filled in from the URL."""
        return {"apiVersion": self.api_version, "kind": self.kind, **(self.body or {})}


@dataclass
class RecordingKubernetesAPI:
    """Start with `start()`, stop with `stop()`; `requests` holds what arrived, in order."""

    host: str = "127.0.0.1"
    requests: List[RecordedRequest] = field(default_factory=list)
    _server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "RecordingKubernetesAPI":
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # the test output stays readable
                pass

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> Optional[dict]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                recorder.requests.append(RecordedRequest(self.command, self.path, body))
                return body

            def do_POST(self) -> None:
                body = self._record() or {}
                metadata = dict(body.get("metadata") or {})
                metadata.setdefault("uid", str(uuid.uuid4()))
                self._answer(201, {**body, "metadata": metadata})

            def do_GET(self) -> None:
                self._record()
                self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "NotFound", "code": 404,
                                   "message": "recording API: nothing is stored"})

            def do_PATCH(self) -> None:
                self._answer(200, self._record() or {})

            def do_PUT(self) -> None:
                self._answer(200, self._record() or {})

            def do_DELETE(self) -> None:
                self._record()
                self._answer(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def created(self, kind: Optional[str] = None) -> List[dict]:
        """Every created object (of `kind`, e.g. "Job", "Secret"), as complete manifests, in order."""
        return [r.manifest() for r in self.requests
                if r.method == "POST" and (kind is None or r.kind == kind)]

    def write_kubeconfig(self, path: Path, context: str = "keel-recording") -> Path:
        """A kubeconfig whose only context points at this server (plain HTTP, a dummy token)."""
        import yaml

        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "recording-api-needs-no-token"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                         "namespace": "default"}}],
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

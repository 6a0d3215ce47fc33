"""Start, find and stop the BentoML serving process of a deployment folder (127.0.0.1 by default)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

from keel.provenance import PROJECT_ROOT

PID_FILE = "service.pid"
LOG_FILE = "service.log"
# What a BentoML worker logs when the service's __init__ raised; the arbiter itself keeps running,
# so without this the caller would wait out the whole timeout.
STARTUP_FAILED = b"Application startup failed"


class ServiceNotAnswering(RuntimeError):
    """The service did not become ready; the message carries the end of its log."""


def service_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def is_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as response:
            return response.status == 200
    # OSError: nothing listens (or a timeout); HTTPException: something listens that is not an
    # HTTP server (BadStatusLine, RemoteDisconnected), so it is no keel service either.
    except (OSError, http.client.HTTPException):
        return False


def running_pid(folder: Path) -> int | None:
    try:
        pid = int((Path(folder) / PID_FILE).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def service_process(folder: Path, host: str, port: int, **popen) -> subprocess.Popen:
    """The one way keel starts the BentoML service of a deployment folder: `bentoml serve` of
    `serving.service:KeelService` from the project root, with keel importable (the project root first on
    PYTHONPATH, the caller's entries kept), the folder in $KEEL_DEPLOYMENT_DIR and BentoML's tracking off.
    `popen` goes to subprocess.Popen (e.g. where its output goes)."""
    folder = Path(folder).resolve()
    bentoml = Path(sys.executable).parent / "bentoml"
    path = [str(PROJECT_ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {**os.environ, "KEEL_DEPLOYMENT_DIR": str(folder), "BENTOML_DO_NOT_TRACK": "True",
           "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.Popen([str(bentoml), "serve", "serving.service:KeelService", "--host", host,
                             "--port", str(port)], cwd=PROJECT_ROOT, env=env, **popen)


def serve_foreground(folder: Path, host: str, port: int) -> int:
    """Run the service in the foreground until it ends (Ctrl+C stops it); its exit code."""
    with service_process(folder, host, port) as process:
        try:
            return process.wait()
        except BaseException:  # Ctrl+C or any other interruption: the service goes with it
            process.kill()
            raise


def start_service(folder: Path, host: str, port: int, wait_seconds: float = 90.0) -> int:
    """Start the service for the folder in the background; return its pid once /readyz answers."""
    folder = Path(folder).resolve()
    url = service_url(host, port)
    if is_ready(url, 0.5):
        raise ServiceNotAnswering(f"{url} is already taken by another process; choose another port")
    log = open(folder / LOG_FILE, "ab")
    log_start = log.tell()
    process = service_process(folder, host, port, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (folder / PID_FILE).write_text(str(process.pid))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None or _startup_failed(folder / LOG_FILE, log_start):
            break
        if is_ready(url):
            return process.pid
        time.sleep(0.5)
    stop_service(folder)
    log.close()
    tail = (folder / LOG_FILE).read_bytes()[log_start:].decode(errors="replace")[-3000:]
    raise ServiceNotAnswering(f"the service at {url} did not become ready:\n{tail}")


def _startup_failed(log_path: Path, since: int) -> bool:
    with open(log_path, "rb") as stream:
        stream.seek(since)
        return STARTUP_FAILED in stream.read()


def _process_tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_service(folder: Path, kill: bool = False) -> bool:
    """Stop the service and its workers (BentoML's workers may leave the process group)."""
    import psutil

    pid = running_pid(folder)
    if pid is None:
        return False
    processes = _process_tree(pid)
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    (Path(folder) / PID_FILE).unlink(missing_ok=True)
    return True


def post_json(url: str, payload: dict, timeout: float = 10.0, headers: Optional[dict] = None) -> tuple[int, dict]:
    """POST `payload` as JSON; `headers` adds e.g. X-API-Key. Returns (status, parsed body)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")

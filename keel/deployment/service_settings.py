"""Putting a bundle in service, and changing service settings as a rollout of its own.

A running service reloads the bundle's models and routing on its next request, but some settings it
takes only when it starts: the API key (read from its own environment), whether the key protects the
documents and metrics. Writing such a change into a live folder made the service answer 500 to every
request. So a settings change on a live service starts a candidate server with the new settings on a
spare port from a copy of the bundle, checks it, and only then restarts the live server with them; if
the candidate or the restart fails, the previous bundle and settings stay (or are put back) live.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Callable, Optional

from keel.deployment.server import ServiceNotAnswering, is_ready, running_pid, service_url, start_service, stop_service
from keel.files import write_atomically
from keel.serving.identity import ServiceIdentity
from keel.serving.layout import DEPLOYMENT_FILE, ROUTING_FILE
from keel.spec.models import Spec

SETTINGS_FILE = "server_settings.json"  # the settings the live server was started with, and its pid
CANDIDATE_FOLDER = "candidate"
SETTINGS_CHANGED = "service_settings_changed"
SETTINGS_CHANGE_FAILED = "service_settings_change_failed"

Check = Callable[[str], Optional[str]]          # a server's URL -> what is wrong with it, or None
Event = Callable[[str, dict], None]             # (audit event, details) -> recorded


class SettingsChangeFailed(RuntimeError):
    """The new settings did not work; the previous ones are live."""


def server_settings(spec: Spec) -> dict:
    """What a server takes only when it starts (the key by its hash: the file must not hold it)."""
    key_env = spec.deployment.api_key_env
    key = os.environ.get(key_env) if key_env else None
    return {"api_key_env": key_env, "api_key_sha256": hashlib.sha256(key.encode()).hexdigest() if key else None,
            "api_key_protects_docs_and_metrics": spec.deployment.api_key_protects_docs_and_metrics,
            "workers": spec.deployment.workers}  # BentoML fixes the worker count when the service starts


def running_settings(folder: Path) -> Optional[dict]:
    """The settings the folder's live server was started with; None when unknown (no record, or the
    record is of another process than the one running)."""
    try:
        recorded = json.loads((Path(folder) / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid = running_pid(folder)
    return recorded["settings"] if pid is not None and recorded.get("pid") == pid else None


def _remember(folder: Path, settings: dict, pid: int) -> None:
    write_atomically(Path(folder) / SETTINGS_FILE, json.dumps({"settings": settings, "pid": pid}, indent=2))


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def install_bundle(spec: Spec, folder: Path, write: Callable[[Path], None], check: Check,
                   on_event: Event = lambda event, details: None) -> str:
    """Put the bundle `write` makes in service at the spec's host and port; returns the URL.
    ServiceNotAnswering when a new service does not start; SettingsChangeFailed (previous settings
    live, the failure recorded through `on_event`) when a settings change does not work."""
    host, port = spec.deployment.host, spec.deployment.port
    url = service_url(host, port)
    wanted = server_settings(spec)
    if not is_ready(url, ServiceIdentity(spec.problem.name, Path(folder))):
        write(folder)
        _remember(folder, wanted, start_service(folder, host, port))
        return url
    before = running_settings(folder)
    if before == wanted:
        write(folder)  # the live server reloads it on its next request
        return url
    change = {"from": before, "to": wanted, "url": url}
    try:
        _try_candidate(folder, host, write, check)
        _restart_live(folder, host, port, wanted, write, check)
    except SettingsChangeFailed as error:
        on_event(SETTINGS_CHANGE_FAILED, {**change, "problem": str(error)})
        raise
    on_event(SETTINGS_CHANGED, change)
    return url


def _try_candidate(folder: Path, host: str, write: Callable[[Path], None], check: Check) -> None:
    candidate = Path(folder) / CANDIDATE_FOLDER
    shutil.rmtree(candidate, ignore_errors=True)
    candidate.mkdir(parents=True)
    write(candidate)
    port = free_port(host)
    try:
        start_service(candidate, host, port)
        problem = check(service_url(host, port))
    except ServiceNotAnswering as error:
        problem = str(error)
    finally:
        stop_service(candidate)
        shutil.rmtree(candidate, ignore_errors=True)
    if problem:
        raise SettingsChangeFailed(f"a server with the new settings failed its check ({problem}); "
                                   "the previous settings stay live")


def _restart_live(folder: Path, host: str, port: int, wanted: dict, write: Callable[[Path], None],
                  check: Check) -> None:
    """Restart the live server with the checked settings; put the previous bundle back on failure."""
    folder = Path(folder)
    previous = {name: (folder / name).read_bytes() for name in (DEPLOYMENT_FILE, ROUTING_FILE)
                if (folder / name).exists()}
    stop_service(folder)
    write(folder)
    try:
        _remember(folder, wanted, start_service(folder, host, port))
        problem = check(service_url(host, port))
    except ServiceNotAnswering as error:
        problem = str(error)
    if not problem:
        return
    stop_service(folder)
    for name, content in previous.items():
        write_atomically(folder / name, content)
    start_service(folder, host, port)  # the previous settings, from this process's environment
    raise SettingsChangeFailed(f"the live server restarted with the new settings failed its check ({problem}); "
                               "it was restarted with the previous settings")

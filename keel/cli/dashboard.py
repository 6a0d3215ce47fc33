"""`run.py dashboard`: the ZenML server and its dashboard over keel's local store.

Like `zenml login --local`, the server reads the same SQLite database as keel's pipelines, without
authentication, on 127.0.0.1. Unlike it, the client configuration is left alone: pipelines keep
writing to the database directly, so the dashboard can be stopped and started at any time.

A fresh server opens on an onboarding survey; keel marks the survey as done for the local user
(`PUT /api/v1/current-user`, which `Client().update_user` cannot do), so the overview opens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from keel.cli.console import fail, say
from keel.files import write_atomically

ONBOARDING_DONE = {"email_opted_in": False, "user_metadata": {"finished_onboarding_survey": True}}
LOG_TAIL_CHARACTERS = 1500  # of the server's log, shown when it exits on its own
# What the command line of keel's dashboard process holds (`python -m uvicorn zenml.zen_server...`):
# `--stop` signals a recorded pid only if it still is that process, not one that reused the pid.
DASHBOARD_COMMAND_MARKERS = ("uvicorn", "zenml.zen_server")


@dataclass
class LocalServer:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def local_store_url() -> str:
    """The SQLite URL of the store keel's pipelines write to (ZenML's global configuration)."""
    from zenml.config.global_config import GlobalConfiguration

    return str(GlobalConfiguration().store_configuration.url)


def local_stores_path() -> str:
    """Where the client's local artifact stores keep their files (a local artifact store without an
    explicit path lives here; the server must look in the same place to show visualizations)."""
    from zenml.config.global_config import GlobalConfiguration

    return str(GlobalConfiguration().local_stores_path)


def server_environment(store_url: str, stores_path: str, folder: Path) -> dict:
    """What the server process needs: the store, no authentication (it listens on 127.0.0.1 only),
    leave to read the local artifact store (visualizations), no telemetry."""
    return {**os.environ,
            "ZENML_SERVER": "true",
            "ZENML_STORE_URL": store_url,
            "ZENML_LOCAL_STORES_PATH": stores_path,
            "ZENML_SERVER_AUTH_SCHEME": "NO_AUTH",
            "ZENML_SERVER_AUTO_ACTIVATE": "True",
            "ZENML_SERVER_DEPLOYMENT_TYPE": "local",
            "ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS": "true",
            # The server keeps its own configuration folder: it must not rewrite the client's.
            "ZENML_CONFIG_PATH": str(folder / "server-config"),
            "ZENML_ANALYTICS_OPT_IN": "false"}


def dashboard_folder() -> Path:
    """Beside the ZenML configuration whose store the dashboard shows: its log and, when it runs in
    the background, its pid (so another ZenML home, e.g. a test's, has its own)."""
    from zenml.config.global_config import GlobalConfiguration

    return Path(GlobalConfiguration().config_directory) / "keel-dashboard"


def start_server(store_url: str, stores_path: str, port: int, folder: Path, timeout: float = 90) -> LocalServer:
    """Start uvicorn serving ZenML's API and dashboard on 127.0.0.1:`port`; return once healthy."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "zenml.zen_server.zen_server_api:app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=server_environment(store_url, stores_path, folder), cwd=folder, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True)  # Ctrl-C in the terminal reaches keel, which stops it in order
    server = LocalServer(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_healthy(server, timeout)
    except RuntimeError:
        server.stop()
        raise
    return server


def wait_until_healthy(server: LocalServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(exit_message(server))
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the ZenML server did not answer on {server.url} within {timeout:.0f} s "
                       f"(log: {server.log})")


def exit_message(server: LocalServer) -> str:
    """Why the server is gone: its exit code and the end of its log."""
    try:
        tail = server.log.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]
    except OSError:
        tail = "(the log cannot be read)"
    return (f"the ZenML server exited (code {server.process.returncode}); "
            f"its log {server.log} ends with:\n{tail}")


def finish_onboarding(url: str) -> dict:
    """Mark the onboarding survey as done for the server's user; returns the updated user."""
    request = urllib.request.Request(f"{url}/api/v1/current-user", method="PUT",
                                     data=json.dumps(ONBOARDING_DONE).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def dashboard(port: int, background: bool) -> int:
    """Start the server, clear the survey, print the URL; stay in the foreground unless `background`."""
    store_url = local_store_url()
    if not store_url.startswith("sqlite"):
        # A server store (e.g. the remote stack): that server serves its own dashboard.
        say(f"keel: the active ZenML store is a server; its dashboard is at {store_url}")
        return 0
    if port_in_use(port):
        return fail(f"keel dashboard: port {port} on 127.0.0.1 is already in use "
                    f"(a dashboard already running? `python run.py dashboard --stop`; or choose --port N)", 2)
    say(f"keel: starting the ZenML server and dashboard on 127.0.0.1:{port} (store {store_url}) ...")
    try:
        server = start_server(store_url, local_stores_path(), port, dashboard_folder())
        finish_onboarding(server.url)
    except (RuntimeError, OSError) as error:
        return fail(f"keel dashboard: {error}", 1)
    say(f"dashboard: {server.url}")
    say("  reports: open a run, 'Fit view' on its graph, click a report's artifact, "
        "its Visualization tab, 'Load Preview'")
    if background:
        write_atomically(pid_file(), str(server.process.pid))
        say(f"  running in the background (pid {server.process.pid}); stop it: python run.py dashboard --stop")
        return 0
    say("  Ctrl-C stops it.")
    return watch_foreground(server)


def watch_foreground(server: LocalServer, poll_seconds: float = 0.5) -> int:
    """Wait until Ctrl-C (exit 0) or until the server exits on its own: a crash, exit 1 with its log's
    end, so a script or a terminal sees that the dashboard is gone."""
    try:
        while server.process.poll() is None:
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        say("\nkeel: stopping the dashboard ...")
        server.stop()
        return 0
    return fail(f"keel dashboard: {exit_message(server)}", 1)


def pid_file() -> Path:
    folder = dashboard_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "server.pid"


def stop_background() -> int:
    path = pid_file()
    pid = _read_pid(path)
    if pid is None:
        return fail("keel dashboard: no dashboard started with --background is recorded", 1)
    command = process_command_line(pid)
    if command is None:
        say(f"keel: the dashboard (pid {pid}) had already stopped")
        path.unlink(missing_ok=True)
        return 0
    if not is_dashboard_command(command):
        path.unlink(missing_ok=True)
        return fail(f"keel dashboard: pid {pid} recorded in {path} is no longer the dashboard (it runs: "
                    f"{command[:120]}); it was left alone and the stale record removed", 1)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        say(f"keel: the dashboard (pid {pid}) had already stopped")
    except PermissionError:
        return fail(f"keel dashboard: pid {pid} (recorded in {path}) belongs to another user; not stopped", 1)
    else:
        say(f"keel: stopped the dashboard (pid {pid})")
    path.unlink(missing_ok=True)
    return 0


def process_command_line(pid: int, proc: Path = Path("/proc")) -> Optional[str]:
    """The command line of a running process (arguments joined by spaces); None if no process runs
    under that pid (or only a zombie or a kernel thread, which have none: the dashboard is gone).
    Read from Linux's /proc; without /proc, or when it cannot be read, "" (unknown)."""
    if not proc.is_dir():
        return ""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError:  # e.g. /proc mounted with hidepid: the process may exist, its command line is hidden
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None


def is_dashboard_command(command: str) -> bool:
    """Whether a command line is keel's dashboard server; "" (unknown) counts as yes, since the pid
    file named it and nothing contradicts it."""
    return command == "" or all(marker in command for marker in DASHBOARD_COMMAND_MARKERS)


def _read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None

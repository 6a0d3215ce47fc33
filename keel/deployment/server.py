"""Start, find and stop the BentoML serving process of a deployment folder (127.0.0.1 by default),
and make sure the port a service wants is free, or held by that same service."""

from __future__ import annotations

import ctypes
import errno
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from keel.provenance import PROJECT_ROOT
from keel.serving.identity import SERVICE, ServiceIdentity

if TYPE_CHECKING:
    from keel.spec.models import Spec

PID_FILE = "service.pid"
LOG_FILE = "service.log"
# The service's own BentoML home, in its deployment folder: every `bentoml serve` empties the
# Prometheus multiprocess folder of its home, so services sharing one home (two deployments on a
# machine) would erase each other's metric files and /metrics would count the other's requests.
SERVICE_HOME = "bentoml_home"
# What a BentoML worker logs when the service's __init__ raised; the arbiter itself keeps running,
# so without this the caller would wait out the whole timeout.
STARTUP_FAILED = b"Application startup failed"
# The signals that end a foreground service (`run.py serve`): what a terminal, systemd, Kubernetes or
# a CI job sends. Each stops the whole BentoML process tree, so the port is free when serve returns.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# BentoML's arbiter and workers end in 2 to 3 s on SIGTERM; what still runs after this is killed.
FOREGROUND_GRACE_SECONDS = 5.0
# How long a starting service may take to answer ready (BentoML's start and the bundle's models load).
READY_SECONDS = 90.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*:")


class ServiceNotAnswering(RuntimeError):
    """The service did not become ready; the message names why and its log."""


class PortTaken(ServiceNotAnswering):
    """The port is held: by another process, or by this deployment's own server where a new one was
    to start. The message names the holder."""


def service_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def readyz(url: str, timeout: float = 1.0) -> object:
    """What /readyz answers when it answers 200: a keel service's identity (a dict), other text as
    text; None when nothing ready answers."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as response:
            if response.status != 200:
                return None
            body = response.read(4096)
    # OSError: nothing listens, an error status (HTTPError) or a timeout; HTTPException: something
    # listens that is not an HTTP server (BadStatusLine, RemoteDisconnected), so no keel service either.
    except (OSError, http.client.HTTPException):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def is_ready(url: str, identity: ServiceIdentity, timeout: float = 1.0) -> bool:
    """Whether the service of `identity` answers ready at `url`: another service there, ready or not
    (another keel project's on the same port), is not."""
    return identity.matches(readyz(url, timeout))


def running_pid(folder: Path) -> int | None:
    try:
        pid = int((Path(folder) / PID_FILE).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


# --- who holds a port ---------------------------------------------------------------------------
def port_in_use(host: str, port: int) -> bool:
    """Whether a listener holds (host, port): binding it fails. SO_REUSEADDR as servers set it, so
    connections of an ended server (TIME_WAIT) do not count."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            # Only a held port counts: a privileged port or a host not on this machine is the
            # server's own error to report when it binds.
            return error.errno == errno.EADDRINUSE
    return False


def port_holder_pid(port: int) -> Optional[int]:
    """The process listening on `port`: of a tree sharing the socket (a BentoML arbiter and the
    workers it handed it to), the topmost. None where /proc does not show it (another user's)."""
    import psutil

    try:
        listening = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    # One pid per socket: whichever process psutil met it in last.
    pid = next((c.pid for c in listening if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                and c.pid), None)
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        while (parent := process.parent()) is not None and _listens(parent, port):
            process = parent
        return process.pid
    except psutil.Error:  # it ended meanwhile, or /proc hides its parent
        return pid


def _listens(process, port: int) -> bool:
    import psutil

    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp"))
    except psutil.Error:
        return False


def _command_line(pid: int) -> str:
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline())[:300] or "(no command line shown)"
    except psutil.Error:
        return "(gone or not shown)"


def port_holder(host: str, port: int, identity: ServiceIdentity) -> str:
    """The process holding the port, as a message names it: pid and command line where /proc shows
    them, else "another process"; and what its /readyz says it is, next to the service of `identity`."""
    pid = port_holder_pid(port)
    who = f"pid {pid} ({_command_line(pid)})" if pid else "another process"
    answer = readyz(service_url(host, port), timeout=1.0)
    if identity.matches(answer):
        return f"{who}, this deployment's own service"
    if pid is not None and pid == running_pid(identity.folder):
        return f"{who}, this deployment's own service, not answering ready (see {Path(identity.folder) / LOG_FILE})"
    if isinstance(answer, dict) and answer.get("service") == SERVICE:
        return f"{who}, a keel service of model '{answer.get('model')}' from another deployment folder " \
               f"(deployment {answer.get('deployment')})"
    return f"{who}, which is not this deployment's keel service"


def ensure_port_free(host: str, port: int, identity: ServiceIdentity) -> None:
    """Raise PortTaken naming the holder unless (host, port) is free or held by the service of
    `identity` itself (answering as it, or its recorded process still starting). Call it before
    anything changes: a deploy against another project's service would probe that service."""
    if not port_in_use(host, port):
        return
    if is_ready(service_url(host, port), identity):
        return
    ours = running_pid(identity.folder)
    if ours is not None and ours == port_holder_pid(port):  # ours, still starting
        return
    raise PortTaken(_held(host, port, identity))


def refuse_held_port(host: str, port: int, identity: ServiceIdentity) -> None:
    """Before starting a server: any holder, the service of `identity` too (a second server could
    not bind), is refused with PortTaken naming it."""
    if port_in_use(host, port):
        raise PortTaken(_held(host, port, identity))


def _held(host: str, port: int, identity: ServiceIdentity) -> str:
    return (f"port {port} on {host} is held by {port_holder(host, port, identity)}: stop it, or give this "
            "service another port (deployment.port)")


def port_taken(spec: "Spec", port: Optional[int] = None, ours_too: bool = False) -> Optional[str]:
    """keel's refusal, as a command prints it, when the spec's service port (or `port`) is held by
    anything but this spec's own service (`ours_too`: by anything, as a foreground `serve` needs it
    free); None otherwise. Commands call it before they change anything."""
    from keel.deployment.deploy import deployment_folder

    host, port = spec.deployment.host, port or spec.deployment.port
    identity = ServiceIdentity(spec.problem.name, deployment_folder(spec))
    try:
        (refuse_held_port if ours_too else ensure_port_free)(host, port, identity)
    except PortTaken as error:
        return f"keel: {error}"
    return None


# --- starting and stopping ----------------------------------------------------------------------
def service_process(folder: Path, host: str, port: int, **popen) -> subprocess.Popen:
    """The one way keel starts the BentoML service of a deployment folder: `bentoml serve` of
    `serving.service:KeelService` from the project root, with keel importable (the project root first on
    PYTHONPATH, the caller's entries kept), the folder in $KEEL_DEPLOYMENT_DIR, a BentoML home of its
    own (SERVICE_HOME) and BentoML's tracking off. `popen` goes to subprocess.Popen (e.g. where its
    output goes)."""
    folder = Path(folder).resolve()
    bentoml = Path(sys.executable).parent / "bentoml"
    path = [str(PROJECT_ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = {**os.environ, "KEEL_DEPLOYMENT_DIR": str(folder), "BENTOML_DO_NOT_TRACK": "True",
           "BENTOML_HOME": str(folder / SERVICE_HOME), "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.Popen([str(bentoml), "serve", "serving.service:KeelService", "--host", host,
                             "--port", str(port)], cwd=PROJECT_ROOT, env=env, **popen)


class _Stopped(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame) -> None:
    raise _Stopped(signum)


def _dies_with_this_process() -> Optional[Callable[[], None]]:
    """A Popen preexec_fn that has Linux send the child SIGTERM when this process ends, SIGKILL too:
    BentoML's arbiter quits on SIGTERM and stops its workers (they hold the port too), so a killed
    `serve` leaves no server behind. None elsewhere (no prctl)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it ended before the prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return die_with_parent


def _copy_output(source, log) -> None:
    """Copy the service's output to this process's output (the operator's terminal or journal) and to
    its log, where startup failures are looked for."""
    out = getattr(sys.stdout, "buffer", None)  # None: a text-only stream stands in for it (captured)
    while chunk := os.read(source.fileno(), 65536):
        log.write(chunk)
        log.flush()
        try:
            if out is not None:
                out.write(chunk)
                out.flush()
        except (OSError, ValueError):  # no terminal to write to any more: the log keeps everything
            pass


def serve_foreground(folder: Path, host: str, port: int, on_ready: Callable[[str], None] = lambda url: None,
                     ready_seconds: float = READY_SECONDS) -> int:
    """Run the service in the foreground until it ends or this process gets SIGTERM, SIGINT (Ctrl+C)
    or SIGHUP; then its whole process tree is stopped (BentoML's workers hold the port too) before this
    returns 128 + the signal's number. The service has its own session, so a stop reaches it only
    through here, and all of it; and it dies with this process, even one SIGKILLed (Linux). Its output
    goes to this process's output and to the folder's log. `on_ready(url)` once /readyz answers as this
    folder's service; ServiceNotAnswering, naming the failure and the log, when the service ends or
    its startup fails first, or it is not ready within `ready_seconds`. Otherwise its own exit code."""
    folder = Path(folder).resolve()
    identity = ServiceIdentity.of_folder(folder)
    refuse_held_port(host, port, identity)
    url = service_url(host, port)
    log = open(folder / LOG_FILE, "ab")
    log_start = log.tell()
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS}
    process = copier = None
    try:
        process = service_process(folder, host, port, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True, preexec_fn=_dies_with_this_process())
        copier = threading.Thread(target=_copy_output, args=(process.stdout, log), daemon=True)
        copier.start()
        _wait_until_ready(process, url, identity, log_start, ready_seconds)
        on_ready(url)
        return process.wait()
    except _Stopped as stop:
        return 128 + stop.signum
    finally:
        for signum in STOP_SIGNALS:  # a second signal must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        if process is not None and process.poll() is None:  # not yet reaped: its pid is still its own
            end_process_tree(process.pid, grace=FOREGROUND_GRACE_SECONDS)
            process.wait()
        if copier is not None:
            copier.join(FOREGROUND_GRACE_SECONDS)  # the rest of its output, up to the end of the pipe
        log.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_until_ready(process: subprocess.Popen, url: str, identity: ServiceIdentity, log_start: int,
                      wait_seconds: float) -> None:
    """Return once /readyz at `url` answers as the service of `identity`; ServiceNotAnswering, with
    the log's last exception and its path, when the process ends, its startup fails (BentoML's arbiter
    keeps running then) or `wait_seconds` pass first."""
    log_path = Path(identity.folder) / LOG_FILE
    deadline = time.monotonic() + wait_seconds
    while True:
        if process.poll() is not None:
            failure = f"it exited with code {process.returncode}"
        elif _startup_failed(log_path, log_start):
            failure = "its startup failed"
        elif time.monotonic() >= deadline:
            failure = f"it was not ready within {wait_seconds:g} s"
        elif is_ready(url, identity):
            return
        else:
            time.sleep(0.1)  # a refused loopback connection is cheap; every deploy and serve waits here
            continue
        raise ServiceNotAnswering(f"the service at {url} did not become ready: {failure}"
                                  f"{_last_error(_log_since(log_path, log_start))}; its log: {log_path}")


def _log_since(log_path: Path, since: int) -> str:
    return log_path.read_bytes()[since:].decode(errors="replace")


def _last_error(log: str) -> str:
    """The last exception line of a log (`ValueError: ...`), as ` (...)`; empty when there is none."""
    errors = [line.strip() for line in log.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    return f" ({errors[-1][:300]})" if errors else ""


# BentoML's arbiter binds two ZeroMQ endpoints of its own on ports it found free by binding to 0 and
# closing them; another process's outgoing connection can take one before the arbiter binds it (seen
# once in CI: a settings change refused). The ports are BentoML's choice, not the deployment's, so a
# start that failed on one of them is started once more, on ports chosen afresh.
ARBITER_PORT_RACE = "zmq.error.ZMQError: Address already in use"
STARTS_ON_ARBITER_PORT_RACE = 2


def start_service(folder: Path, host: str, port: int, wait_seconds: float = READY_SECONDS) -> int:
    """Start the service for the folder in the background; return its pid once its /readyz answers
    as this folder's service. PortTaken, naming the holder, when the port is held."""
    folder = Path(folder).resolve()
    identity = ServiceIdentity.of_folder(folder)
    for start in range(1, STARTS_ON_ARBITER_PORT_RACE + 1):
        refuse_held_port(host, port, identity)
        try:
            return _start_once(folder, identity, host, port, wait_seconds)
        except ServiceNotAnswering as error:
            if start == STARTS_ON_ARBITER_PORT_RACE or ARBITER_PORT_RACE not in str(error):
                raise


def _start_once(folder: Path, identity: ServiceIdentity, host: str, port: int, wait_seconds: float) -> int:
    log = open(folder / LOG_FILE, "ab")
    log_start = log.tell()
    process = service_process(folder, host, port, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (folder / PID_FILE).write_text(str(process.pid))
    try:
        _wait_until_ready(process, service_url(host, port), identity, log_start, wait_seconds)
        return process.pid
    except ServiceNotAnswering as error:
        stop_service(folder)
        # Its output went nowhere else: the message carries the end of it.
        raise ServiceNotAnswering(f"{error}\n{_log_since(folder / LOG_FILE, log_start)[-3000:]}") from None
    finally:
        log.close()


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


def end_process_tree(pid: int, kill: bool = False, grace: float = 10.0) -> None:
    """Signal a process and all its descendants (BentoML's workers may leave the process group, and
    they hold the listening socket too), SIGTERM unless `kill`; whatever still runs after `grace`
    seconds is killed. The tree is taken before any signal: orphaned workers are no one's children."""
    import psutil

    processes = _process_tree(pid)
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


def stop_service(folder: Path, kill: bool = False) -> bool:
    """Stop the service and its workers."""
    pid = running_pid(folder)
    if pid is None:
        return False
    end_process_tree(pid, kill)
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

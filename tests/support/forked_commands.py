"""`run.py` commands for tests, forked from a process that has already imported ZenML and the libraries.

A command's process spends about 2.2 of its ~3 CPU-seconds importing ZenML, pandas, scikit-learn and
LightGBM; the suite starts ~90. Here a process (the zygote; one per test process and environment, at
most MOST_ZYGOTES alive at once) imports them once and forks a child per command. The child is a real
process (own pid, session, working directory, environment, standard streams) that runs `run.py` as
`python run.py ...` would, with keel and the project imported fresh from its own sys.path; ZenML is
unpatched, as for users.

What a fork cannot give is a different environment at import time, so the zygote records every
environment variable the libraries read while it imported them; a command whose environment differs
in one of those, or in any PYTHON* variable, runs as a plain subprocess instead (`run_command` and
`start_command` do this themselves). `run_command` is subprocess.run for commands run to their end;
`start_command` is the Popen the chaos trials read as it runs and kill by process group. Commands other
tests signal (SIGINT, SIGTERM to the process) keep subprocess.Popen.
"""

from __future__ import annotations

import atexit
import io
import json
import locale
import os
import select
import signal
import socket
import subprocess
import sys
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

# Third-party only: keel and the project's modules come from each command's own sys.path.
PRELOADED = ("zenml.client", "zenml.zen_stores.sql_zen_store", "zenml.pipelines", "zenml.steps", "zenml.models",
             "pandas", "sklearn", "lightgbm", "sqlalchemy")
_ROOT = Path(__file__).resolve().parents[2]


# ---- the zygote (its own process) ----------------------------------------------------------------------

def _import_recording_environment_reads() -> tuple:
    """Import PRELOADED: (the environment variables read meanwhile, with the values they had before,
    the variables the imports set, with the values they set; e.g. LightGBM sets KMP_INIT_AT_FORK)."""
    environ_class = type(os.environ)
    original = environ_class.__getitem__
    before = dict(os.environ)
    read: set = set()

    def recording(self, key):
        read.add(key)
        return original(self, key)

    environ_class.__getitem__ = recording
    try:
        for name in PRELOADED:
            __import__(name)
    finally:
        environ_class.__getitem__ = original
    changed = {key: value for key, value in os.environ.items() if before.get(key) != value}
    return {key: before.get(key) for key in read if isinstance(key, str)}, changed


def _same_import_environment(read_at_import: dict, env: dict, env_of_zygote=os.environ) -> bool:
    """Whether a fresh process with `env` would import what the zygote imported, as it did."""
    python = {key for key in (*env_of_zygote, *env) if key.startswith("PYTHON")}
    return (all(env.get(key) == value for key, value in read_at_import.items())
            and all(env.get(key) == env_of_zygote.get(key) for key in python))


def _run_child(request: dict, base_path: list) -> None:
    """In the forked child: become the command's process and run run.py; never returns."""
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(request["fds"]):
            os.dup2(fd, target)
            os.close(fd)
        # As Python starts: SIGINT raises KeyboardInterrupt, SIGPIPE is ignored, the rest as the OS has them.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for number in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.update(request["set_at_import"])
        script = request["argv"][0]
        sys.path[:] = [os.path.dirname(os.path.abspath(script)), *base_path]  # PYTHONPATH is the zygote's
        sys.argv = list(request["argv"])
        import random

        import numpy

        random.seed()  # a fresh process's generators are seeded afresh, not copied from the zygote
        numpy.random.seed()
        import runpy

        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if stop.code is not None and not isinstance(stop.code, int):
                print(stop.code, file=sys.stderr)
        except BaseException:  # what the interpreter prints for an uncaught exception
            import traceback

            traceback.print_exc()
            code = 1
        # The interpreter's own exit: wait for the threads still running, then the atexit functions.
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve(socket_path: str) -> None:
    read_at_import, set_at_import = _import_recording_environment_reads()
    base_path = sys.path[1:]  # PYTHONPATH, the standard library, site-packages: not this module's folder
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(8)
    waiting: dict = {}  # child pid -> the connection its status goes to

    def reap(*_):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = waiting.pop(pid, None)
            if connection is not None:
                try:
                    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:  # the client is gone (it timed out and killed the command): nobody to tell
                    pass
                finally:
                    connection.close()

    signal.signal(signal.SIGCHLD, reap)
    print("ready", json.dumps({**read_at_import, **{key: os.environ.get(key) for key in os.environ
                                                    if key.startswith("PYTHON")}}), flush=True)
    while True:
        connection, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        request = json.loads(message)
        if not _same_import_environment(read_at_import, request["env"], {**os.environ, **read_at_import}):
            for fd in fds:
                os.close(fd)
            connection.sendall(b"refused\n")
            connection.close()
            continue
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # the pid is known before it is reaped
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
            listener.close()
            connection.close()
            _run_child({**request, "fds": fds, "set_at_import": set_at_import}, base_path)
        for fd in fds:
            os.close(fd)
        connection.sendall(f"{pid}\n".encode())
        waiting[pid] = connection
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])


# ---- the test process's side -----------------------------------------------------------------------------

MOST_ZYGOTES = 3  # live per test process; at the cap the least recently used idle one makes room


@dataclass
class Zygote:
    owner: int                # the test process that started it (a forked test process does not use it)
    path: str                 # its socket
    read_at_import: dict      # the variables its imports read, with their values
    process: subprocess.Popen
    in_flight: int = 0        # commands forked from it and not yet ended
    last_used: float = 0.0


_zygotes: List[Zygote] = []
_zygotes_lock = threading.Lock()


def _zygote_for(env: dict) -> Optional[Zygote]:
    """A zygote of this process whose imports read what `env` holds, started (with `env`) if there is none
    yet, counted in flight until `_release`; None where none can serve it. The suite's modules need
    different import environments one after another: a fixed first three would leave every later module
    to run plain subprocesses, so at the cap the least recently used zygote with no command running stops."""
    with _zygotes_lock:
        mine = [z for z in _zygotes if z.owner == os.getpid()]
        for zygote in mine:
            if _same_import_environment(zygote.read_at_import, env, env_of_zygote=zygote.read_at_import):
                zygote.in_flight += 1
                zygote.last_used = time.monotonic()
                return zygote
        if not sys.platform.startswith("linux"):
            return None
        while len(mine) >= MOST_ZYGOTES:
            idle = [z for z in mine if z.in_flight == 0]
            if not idle:
                return None
            retired = min(idle, key=lambda z: z.last_used)
            mine.remove(retired)
            _zygotes.remove(retired)
            _stop(retired.process)
        zygote = _start_zygote(env)
        if zygote is not None:
            zygote.in_flight = 1
            zygote.last_used = time.monotonic()
            _zygotes.append(zygote)
        return zygote


def _release(zygote: Zygote) -> None:
    with _zygotes_lock:
        zygote.in_flight -= 1


def _start_zygote(env: dict) -> Optional[Zygote]:
    from keel.deployment.server import _dies_with_this_process

    path = os.path.join(tempfile.mkdtemp(prefix="keel-zygote-"), "socket")
    process = subprocess.Popen([sys.executable, "-m", "tests.support.forked_commands", path], cwd=_ROOT, env=env,
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               preexec_fn=_dies_with_this_process())
    ready = process.stdout.readline()
    if not ready.startswith("ready "):
        process.kill()
        process.wait()
        return None
    atexit.register(_stop, process)
    return Zygote(os.getpid(), path, json.loads(ready[len("ready "):]), process)


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()  # reaped: its CPU, and its commands', counts in this process's children's usage
    shutil.rmtree(os.path.dirname(process.args[-1]), ignore_errors=True)  # its socket's folder


def _run_plainly(argv, env, cwd, timeout, input) -> subprocess.CompletedProcess:
    stdin = subprocess.DEVNULL if input is None else None  # no terminal: a prompt fails, it does not hang
    return subprocess.run(argv, env=env, cwd=cwd, timeout=timeout, input=input, stdin=stdin, capture_output=True,
                          text=True)


def run_command(argv: list, *, env: Optional[dict] = None, cwd=None, timeout: Optional[float] = None,
                input: Optional[str] = None) -> subprocess.CompletedProcess:
    """What subprocess.run(argv, capture_output=True, text=True, ...) gives, for argv = [python, run.py, ...]
    with python this interpreter: forked from the zygote when the environment allows, else run so."""
    env = dict(os.environ if env is None else env)
    cwd = str(cwd or os.getcwd())
    stdin_read, stdin_write = os.pipe() if input is not None else (os.open(os.devnull, os.O_RDONLY), None)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    process = _forked(argv, env, cwd, [stdin_read, out_write, err_write])
    if process is None:
        for fd in (out_read, err_read, *([stdin_write] if stdin_write is not None else [])):
            os.close(fd)
        return _run_plainly(argv, env, cwd, timeout, input)
    captured = {}

    def collect(name, fd):  # decoded as subprocess's text mode does: locale encoding, universal newlines
        with io.TextIOWrapper(os.fdopen(fd, "rb"), encoding=locale.getpreferredencoding(False)) as source:
            captured[name] = source.read()

    readers = [threading.Thread(target=collect, args=item, daemon=True)
               for item in (("stdout", out_read), ("stderr", err_read))]
    for reader in readers:
        reader.start()
    if stdin_write is not None:  # after the readers: a command may write before it reads
        with os.fdopen(stdin_write, "w") as feed:
            feed.write(input)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    for reader in readers:
        reader.join()
    return subprocess.CompletedProcess(argv, code, captured.get("stdout", ""), captured.get("stderr", ""))


def start_command(argv: list, *, env: Optional[dict] = None, cwd=None):
    """What subprocess.Popen(argv, cwd=cwd, env=env, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT,
    start_new_session=True) gives, for a test that reads a command's output as it runs and may kill its
    process group: a ForkedProcess where the environment allows, else that Popen."""
    env = dict(os.environ if env is None else env)
    cwd = str(cwd or os.getcwd())
    stdin = os.open(os.devnull, os.O_RDONLY)
    out_read, out_write = os.pipe()
    process = _forked(argv, env, cwd, [stdin, out_write, out_write])
    if process is None:
        os.close(out_read)
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    process.stdout = os.fdopen(out_read, "rb")
    return process


class ForkedProcess:
    """A command forked from a zygote, as much of subprocess.Popen as the tests use: `pid` (its own session
    and process group), `stdout` (start_command's), `returncode`, `poll()` and `wait()`. Its exit status
    comes from the zygote, which reaps it."""

    def __init__(self, argv: list, pid: int, connection: socket.socket, zygote: Zygote):
        self.args, self.pid, self.returncode, self.stdout = argv, pid, None, None
        self._connection, self._zygote = connection, zygote

    def poll(self) -> Optional[int]:
        if self.returncode is None and select.select([self._connection], [], [], 0)[0]:
            self._read_status(None)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            self._read_status(timeout)
        return self.returncode

    def _read_status(self, timeout: Optional[float]) -> None:
        self._connection.settimeout(timeout)
        try:
            line = _read_line(self._connection)
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.args, timeout) from None
        self._connection.close()
        _release(self._zygote)
        if not line:
            raise RuntimeError(f"the zygote of pid {self.pid} ended before it reported the command's exit")
        self.returncode = int(line)


def _read_line(connection: socket.socket) -> str:
    """One short reply line, read byte by byte: nothing is buffered past it, so select() on the socket
    still tells when the next one has come."""
    line = b""
    while not line.endswith(b"\n"):
        byte = connection.recv(1)
        if not byte:
            break
        line += byte
    return line.decode().strip()


class _ZygoteGone(Exception):
    pass


def _forked(argv: list, env: dict, cwd: str, fds: list) -> Optional[ForkedProcess]:
    """The command forked with `fds` as its stdin, stdout and stderr (this process's copies are closed), or
    None where no zygote can start it (then it is for the caller to run it otherwise)."""
    script = len(argv) > 1 and argv[0] == sys.executable and not str(argv[1]).startswith("-")  # not -c, -m
    zygote = _zygote_for(env) if script else None
    started = None
    try:
        if zygote is not None:
            started = _fork(zygote.path, argv, env, cwd, fds)
    except _ZygoteGone:  # nothing was started: later commands get a new zygote
        with _zygotes_lock:
            if zygote in _zygotes:
                _zygotes.remove(zygote)
    finally:
        for fd in dict.fromkeys(fds):
            os.close(fd)
    if started is None:
        if zygote is not None:
            _release(zygote)
        return None
    return ForkedProcess(argv, *started, zygote)


def _fork(path: str, argv: list, env: dict, cwd: str, fds: list) -> Optional[tuple]:
    """(pid, connection) of the command the zygote at `path` forked; None when it refused the environment."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        connection.close()
        raise _ZygoteGone() from None
    request = json.dumps({"argv": [str(a) for a in argv[1:]], "env": env, "cwd": cwd}).encode()
    socket.send_fds(connection, [request], fds)
    first = _read_line(connection)
    if first == "refused" or not first:
        connection.close()
        return None
    return int(first), connection


if __name__ == "__main__":
    serve(sys.argv[1])

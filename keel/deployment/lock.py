"""One command at a time per service: `deploy`, `rollback` and `serve` hold `service.lock` in the
deployment folder for as long as they run.

The lock is an fcntl.flock on the file, which the kernel releases when the holder's process ends (even
by SIGKILL), so a dead holder's lock is simply taken. The holder writes who it is (command, pid,
user, since) into the file, for the message the next one gets. Re-entrant within a process: the
deployment pipeline's rollout step runs inside `deploy`, which already holds it."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
from pathlib import Path
from typing import Dict, Iterator

from keel.clock import utc_now

LOCK_FILE = "service.lock"

_held: Dict[Path, int] = {}  # lock files this process holds -> nesting depth


def user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


class ServiceBusy(RuntimeError):
    """Another live process holds the service's lock (or its port); the message names it."""


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:  # it has the lock but has not written its name yet
        return "another process (it is starting)"
    return (f"'{holder.get('command')}' (pid {holder.get('pid')}, user {holder.get('user')} on "
            f"{holder.get('host')}, since {holder.get('since')})")


@contextlib.contextmanager
def service_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the service's lock while the block runs; ServiceBusy at once if a live process has it."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the servers we start
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise ServiceBusy(f"keel: the service in {folder} is busy: {_holder(path)} is running; "
                          "one deploy, rollback or serve at a time") from None
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, json.dumps({"command": command, "pid": os.getpid(), "user": user(),
                                         "host": socket.gethostname(), "since": utc_now().isoformat()}).encode())
        _held[path] = 1
        yield
    finally:
        _held.pop(path, None)
        os.ftruncate(descriptor, 0)  # no stale name for the next reader
        os.close(descriptor)


def holds_lock(folder: Path) -> bool:
    """Whether this process holds the service's lock (the rollout controller must)."""
    return (Path(folder).resolve() / LOCK_FILE) in _held

"""Advisory locks between keel commands of one project: a file under the project's `.keel/locks/`,
held with `flock` (Linux, macOS) and naming its holder while held.

The kernel releases a lock when its holder dies, so a killed command never leaves one behind; the
holder text it left is overwritten by the next holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from keel.clock import utc_now

LOCK_FOLDER = Path(".keel") / "locks"  # relative to the project (the working directory), like .keel/deployments
POLL_SECONDS = 0.05


class LockBusy(RuntimeError):
    """Another process held the lock for longer than we would wait."""


def lock_path(name: str, folder: Path = LOCK_FOLDER) -> Path:
    return Path(folder) / f"{name}.lock"


def holder(path: Path) -> str:
    """Who holds (or last held) the lock at `path`: "pid 123 (user ana, since ..., run.py evaluate)"."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        found = {}
    if not found:
        return "an unknown process"
    return f"pid {found.get('pid')} (user {found.get('user')}, since {found.get('since')}, {found.get('command')})"


@contextlib.contextmanager
def file_lock(name: str, what: str, wait_seconds: float = 120.0, folder: Path = LOCK_FOLDER) -> Iterator[Path]:
    """Hold the lock `name` (one process at a time), waiting up to `wait_seconds` for it; LockBusy naming
    the holder after that. `what` says what the lock guards, for that message."""
    path = lock_path(name, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{what} is locked by {holder(path)} (lock file {path}); "
                                   f"waited {wait_seconds:g} s") from None
                time.sleep(POLL_SECONDS)
        me = {"pid": os.getpid(), "user": getpass.getuser(), "since": utc_now().isoformat(),
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(me).encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(descriptor, 0)  # released: nobody holds it (a killed holder's text is overwritten)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)

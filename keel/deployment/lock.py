"""One command at a time per service: `deploy`, `rollback` and `serve` hold `service.lock` in the
deployment folder for as long as they run (keel.locks: an flock the kernel releases when the holder's
process ends, even by SIGKILL, so a dead holder's lock is simply taken; the file names the live
holder). Re-entrant within a process: the deployment pipeline's rollout step runs inside `deploy`,
which already holds it."""

from __future__ import annotations

import contextlib
import getpass
import os
from pathlib import Path
from typing import Dict, Iterator

from keel.locks import LockBusy, file_lock

LOCK_NAME = "service"  # service.lock in the deployment folder

_held: Dict[Path, int] = {}  # deployment folders whose lock this process holds -> nesting depth


class ServiceBusy(RuntimeError):
    """Another live process holds the service's lock (or its port); the message names it."""


def user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


@contextlib.contextmanager
def service_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the service's lock while the block runs; ServiceBusy at once if a live process has it."""
    folder = Path(folder).resolve()
    if folder in _held:
        _held[folder] += 1
        try:
            yield
        finally:
            _held[folder] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(LOCK_NAME, f"the service in {folder} ({command} wants it)", wait_seconds=0, folder=folder):
            _held[folder] = 1
            try:
                yield
            finally:
                del _held[folder]
    except LockBusy as busy:
        raise ServiceBusy(f"keel: {busy}; one deploy, rollback or serve at a time") from None

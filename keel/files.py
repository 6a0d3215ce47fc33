"""Writing a local file, or publishing a folder, so that no reader ever sees it half-written.

The bytes go to a temporary file in the same folder (same filesystem, so the final step is a rename,
not a copy), are flushed and fsynced, and only then take the final name. A crash at any point leaves
either the old content or the new, never a mix; the folder is fsynced too, where the platform allows,
so the new name survives a power loss.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Union


def new_file_mode() -> int:
    """The mode open() gives a new file: 0o666 less the process's umask. mkstemp creates 0600, so records
    another account must read (an approver's `approve` and `audit verify` reading the trainer's audit
    trail on a shared machine) were unreadable to it. The umask is read from /proc where there is one:
    setting it to read it would race with other threads creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Union[str, os.PathLike], data: Union[bytes, str], *, exclusive: bool = False) -> None:
    """Replace `path` with `data` (str is written as UTF-8) in one step.

    exclusive=True creates the file only if the name is free, also in one step (a hard link, which
    fails when the name exists), and raises FileExistsError otherwise: for content-addressed or
    append-only records that must never be overwritten."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, new_file_mode())
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    sync_folder(path.parent)


def publish_folder(staged: Union[str, os.PathLike], destination: Union[str, os.PathLike],
                   aside: Union[str, os.PathLike]) -> None:
    """Give the finished folder `staged` the name `destination` (both on one filesystem) by a rename.
    A folder already under that name (a rename cannot replace a folder that is not empty) is first
    renamed to `aside` and deleted only once the new one took its place; name `aside` so that the
    caller's clean-up finds it if the process dies in between."""
    staged, destination, aside = Path(staged), Path(destination), Path(aside)
    if destination.exists():
        os.replace(destination, aside)
    os.replace(staged, destination)
    shutil.rmtree(aside, ignore_errors=True)
    sync_folder(destination.parent)


def sync_folder(folder: Path) -> None:
    """Persist the folder entry of a renamed file; not every platform can open a folder (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some filesystems refuse fsync on a folder; the file itself is already durable
        pass
    finally:
        os.close(descriptor)

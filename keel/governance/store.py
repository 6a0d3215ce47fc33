"""Where audit records live: one immutable object per record, created once and never replaced.

Two stores behind one small interface: a local folder (atomic create-only through a hard link, so
two writers can never both create the same record) and any path ZenML's `fileio` can write (the
active artifact store's S3/GCS/Azure bucket), where create-only is check, write, then read back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Protocol

from keel.files import write_atomically


class RecordExists(FileExistsError):
    """Another writer created this record first; the caller re-reads the chain and retries."""


class AuditStore(Protocol):
    location: str

    def names(self) -> List[str]: ...

    def read(self, name: str) -> bytes: ...

    def create(self, name: str, payload: bytes) -> None: ...


class FolderStore:
    """Records as files in a local folder (also what the local ZenML artifact store is)."""

    def __init__(self, folder: os.PathLike | str):
        self.folder = Path(folder)
        self.location = str(self.folder)

    def names(self) -> List[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def create(self, name: str, payload: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            write_atomically(self.folder / name, payload, exclusive=True)  # create-only, atomic
        except FileExistsError:
            raise RecordExists(f"{self.folder / name} already exists") from None


class FileioStore:
    """Records under an artifact-store path (s3://, gs://, az://, ...), written with `zenml.io.fileio`.

    Create-only: an exclusive create (`xb`: S3's conditional put `If-None-Match: *`) where the
    filesystem has one; elsewhere check, write, and read back (a racing writer that replaced our
    object is then noticed and we append one further). Listings are re-read on every use: a cached
    listing would let a long-lived process write over a record another process appended."""

    def __init__(self, uri: str, filesystem=None):
        self.uri = uri.rstrip("/")
        self.location = self.uri
        self.filesystem = filesystem  # the artifact store's fsspec filesystem, to drop its caches

    def _fresh(self) -> None:
        invalidate = getattr(self.filesystem, "invalidate_cache", None)
        if invalidate is not None:
            invalidate()

    def names(self) -> List[str]:
        from zenml.io import fileio

        self._fresh()
        if not fileio.exists(self.uri):
            return []
        return sorted(str(n).rsplit("/", 1)[-1] for n in fileio.listdir(self.uri)
                      if not str(n).rsplit("/", 1)[-1].startswith("."))

    def read(self, name: str) -> bytes:
        from zenml.io import fileio

        try:
            with fileio.open(f"{self.uri}/{name}", "rb") as stream:
                return stream.read()
        except OSError:  # a cached size or ETag of an object changed since: read it afresh
            self._fresh()
            with fileio.open(f"{self.uri}/{name}", "rb") as stream:
                return stream.read()

    def create(self, name: str, payload: bytes) -> None:
        from zenml.io import fileio

        path = f"{self.uri}/{name}"
        fileio.makedirs(self.uri)
        self._fresh()
        if fileio.exists(path):
            raise RecordExists(f"{path} already exists")
        try:
            with fileio.open(path, "xb") as stream:
                stream.write(payload)
            return
        except FileExistsError:
            raise RecordExists(f"{path} already exists") from None
        except OSError as error:
            if re.search(r"pre-?condition", str(error), re.IGNORECASE):  # S3 412: another writer created it first
                raise RecordExists(f"{path} was created by another writer") from None
            raise
        except (ValueError, NotImplementedError):  # this filesystem has no exclusive create
            pass
        with fileio.open(path, "wb") as stream:
            stream.write(payload)
        self._fresh()
        if self.read(name) != payload:
            raise RecordExists(f"{path} was written concurrently by another writer")


def store_at(location: str, filesystem=None) -> AuditStore:
    """A folder store for local paths, a fileio store for URIs with a scheme (s3://, gs://, ...)."""
    return FileioStore(location, filesystem) if "://" in location else FolderStore(location)


def active_artifact_store_filesystem():
    """The active artifact store's fsspec filesystem (remote stores), or None."""
    from zenml.client import Client

    return getattr(Client().active_stack.artifact_store, "filesystem", None)


def active_artifact_store_root() -> str:
    """The path of the active ZenML stack's artifact store (where the stack keeps its state)."""
    from zenml.client import Client

    return str(Client().active_stack.artifact_store.path)

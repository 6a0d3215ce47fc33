"""A real PostgreSQL server on 127.0.0.1 for the tests and the serving benchmark (Debian's
`postgresql`), as tests/support/servers.py starts MariaDB: a free port, its data in a folder of its
own, no systemd, stopped (and its folder removed) on exit.

PostgreSQL refuses to run as root; run as root, the server runs as the `postgres` user (Debian's
package creates it) from a folder that user owns. fsync and synchronous commit stay on: the tests
check durability against it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.servers import LOOPBACK, _Process, free_port, require_binary

DATABASE, USER = "keel", "keel"


@dataclass
class PostgreSQL:
    port: int
    folder: Path

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its database (psycopg 3 driver)."""
        return f"postgresql+psycopg://{USER}@{LOOPBACK}:{self.port}/{DATABASE}"


def _binary(name: str) -> str:
    """A PostgreSQL server binary: on PATH, or where Debian's package puts it (not on PATH:
    /usr/lib/postgresql/<version>/bin, the newest version); skips (fails under
    KEEL_REQUIRE_SYSTEM_SERVICES=1) when neither has it."""
    found = shutil.which(name) or next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                                                                key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit()
                                                                else 0, reverse=True)), None)
    return found or require_binary(name, "postgresql")


def _as_server_user() -> dict:
    """Popen arguments that run a command as `postgres` when this process is root; none otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root, and there is no 'postgres' user to run PostgreSQL as (Debian's postgresql "
                    "package creates it)")
    return {"user": user.pw_uid, "group": user.pw_gid}


def _connects(port: int) -> bool:
    import psycopg

    try:
        psycopg.connect(host=LOOPBACK, port=port, user=USER, dbname="postgres", connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


@contextlib.contextmanager
def postgresql_server(parent: Path | None = None) -> Iterator[PostgreSQL]:
    """PostgreSQL on 127.0.0.1 and a free port with an empty database `keel` (user `keel`, trust
    authentication on loopback only). `parent` is ignored for the data (pytest's folders are private
    to root, so the server user could not enter them); the data lives in a fresh folder in /tmp."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg (psycopg[binary]) is not installed")
    initdb, postgres = _binary("initdb"), _binary("postgres")
    as_user = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="keel-postgres-"))
    if as_user:
        os.chown(folder, as_user["user"], as_user["group"])
    data, port = folder / "data", free_port()
    server = None
    try:
        subprocess.run([initdb, "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, cwd=folder, **as_user)
        log = folder / "postgres.log"
        with open(log, "ab") as handle:  # opened by this process: the server user need not own it
            process = subprocess.Popen([postgres, "-D", str(data), "-p", str(port), "-h", LOOPBACK, "-k", str(folder)],
                                       stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
                                       **as_user)
        server = _Process("postgres", process, log)
        server.wait_until(lambda: _connects(port), timeout=60)
        import psycopg

        with psycopg.connect(host=LOOPBACK, port=port, user=USER, dbname="postgres", autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        yield PostgreSQL(port, folder)
    finally:
        if server is not None:
            # SIGINT is PostgreSQL's fast shutdown: it ends the sessions still open (a test's pooled
            # connections) and checkpoints. SIGTERM (smart) waits for every session to close itself:
            # 20 s, then a SIGKILL, after a test that left its engine's pool open.
            server.stop(signum=signal.SIGINT)
        shutil.rmtree(folder, ignore_errors=True)

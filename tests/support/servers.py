"""Real servers on 127.0.0.1 for the tests: MariaDB, a ZenML server (uvicorn) and moto's S3 server.

Each is a context manager that starts the process on a free port with its state in a folder the
caller owns, waits until it answers, and stops it (and checks it stopped) on exit. Nothing here uses
systemd or the network beyond loopback.

A system binary that is missing (e.g. `mariadbd` on a laptop) makes the test skip with the reason,
unless KEEL_REQUIRE_SYSTEM_SERVICES=1 (set by .ci/run), where it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

LOOPBACK = "127.0.0.1"
REQUIRE_ENV = "KEEL_REQUIRE_SYSTEM_SERVICES"
# A fixed secret: tokens stay valid across a server restart within a test session.
TEST_JWT_SECRET = "keel-tests-jwt-secret-not-for-production"
ADMIN_USER = "keel-admin"
ADMIN_PASSWORD = "keel-admin-password-1"


def require_binary(name: str, package: str) -> str:
    """Path of a system binary; skips the test (fails under KEEL_REQUIRE_SYSTEM_SERVICES=1) if absent."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)
    if path:
        return path
    reason = f"the system binary '{name}' is missing: install Debian's '{package}' (apt-get install {package})"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_ENV}=1 requires it")
    pytest.skip(reason)


def _port_pool() -> range:
    """This test process's ports: a slice, one per xdist worker, of the 8,192 ports below the kernel's
    ephemeral range. A port the kernel hands out (bind to 0, every outgoing connection) would be free
    when chosen and could be taken by another process's connection before the server binds it, seconds
    later (a deploy then refused with "port held", CI at f837efe); the kernel never picks these."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    start = max(1024, low - 8192)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), index + 1)
    size = (low - start) // workers
    return range(start + index * size, start + (index + 1) * size)


_handed_out: set = set()


def free_port() -> int:
    """A port free now on 127.0.0.1 that no other test process is given and this one is given once."""
    for port in _port_pool():
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    # A kernel whose ephemeral range starts low leaves no such slice: its own choice, as before.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class _Process:
    """A started server process, its log file and how to tell it is ready."""

    name: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_until(self, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode} before "
                                   f"it was ready; log {self.log}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.05)  # a readiness probe is one loopback connection: cheap to ask often
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s; log {self.log}:\n{self.log_tail()}")

    def stop(self, timeout: float = 20, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)


def _start(name: str, command: List[str], log: Path, env: Optional[Dict[str, str]] = None) -> _Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "ab")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                               stdin=subprocess.DEVNULL)
    handle.close()
    return _Process(name, process, log)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
        return True
    return False


# --------------------------------------------------------------------------------------------- MariaDB

@dataclass
class MariaDB:
    port: int
    database: str
    user: str
    password: str
    datadir: Path

    @property
    def zenml_store_url(self) -> str:
        """The URL a ZenML server takes as ZENML_STORE_URL."""
        return f"mysql://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{self.database}"

    def query(self, sql: str, *params) -> list:
        import pymysql

        connection = pymysql.connect(host=LOOPBACK, port=self.port, user=self.user,
                                     password=self.password, database=self.database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params or None)
                return list(cursor.fetchall())
        finally:
            connection.close()


@contextlib.contextmanager
def mariadb_server(workdir: Path, database: str = "zenml", user: str = "zenml",
                   password: str = "zenml-test-password") -> Iterator[MariaDB]:
    """MariaDB (Debian's mariadb-server) on 127.0.0.1 and a free port, data in `workdir`, no systemd."""
    install_db = require_binary("mariadb-install-db", "mariadb-server")
    mariadbd = require_binary("mariadbd", "mariadb-server")
    import pymysql

    datadir, socket_path = workdir / "data", workdir / "mariadb.sock"
    workdir.mkdir(parents=True, exist_ok=True)
    # mariadbd refuses to run as root unless told which user to run as
    as_user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run([install_db, f"--datadir={datadir}", "--auth-root-authentication-method=normal",
                    "--skip-test-db", *as_user], check=True, capture_output=True, timeout=120)
    port = free_port()
    server = _start("mariadbd", [
        mariadbd, "--no-defaults", f"--datadir={datadir}", f"--socket={socket_path}",
        f"--bind-address={LOOPBACK}", f"--port={port}", "--skip-name-resolve",
        f"--pid-file={workdir / 'mariadb.pid'}", "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M", *as_user], workdir / "mariadb.log")
    try:
        server.wait_until(lambda: socket_path.exists() and port_open(port), timeout=60)
        root = pymysql.connect(unix_socket=str(socket_path), user="root", password="")
        with root.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}`")
            cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")
        root.commit()
        root.close()
        yield MariaDB(port, database, user, password, datadir)
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------ ZenML server

@dataclass
class ZenMLServer:
    url: str
    store_url: str
    auth_scheme: str
    config_path: Path
    process: _Process = field(repr=False)

    def login_token(self, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> Optional[str]:
        """An access token from the OAuth2 password flow; None under NO_AUTH (no token needed)."""
        if self.auth_scheme == "NO_AUTH":
            return None
        form = {"username": username, "password": password}
        request = urllib.request.Request(f"{self.url}/api/v1/login",
                                         data=urllib.parse.urlencode(form).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def api(self, method: str, path: str, body: Optional[dict] = None, token: Optional[str] = None) -> dict:
        """One JSON request to the server's REST API as the admin user."""
        token = token or self.login_token()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.url}/api/v1{path}", method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def create_service_account_api_key(self, name: str = "keel-ci") -> str:
        """A service account (admin) and an API key for it: what a CI client logs in with."""
        token = self.login_token()
        account = self.api("POST", "/service_accounts", {"name": name, "active": True}, token)
        key = self.api("POST", f"/service_accounts/{account['id']}/api_keys", {"name": f"{name}-key"}, token)
        return key["body"]["key"]


@contextlib.contextmanager
def zenml_server(workdir: Path, store_url: Optional[str] = None, auth_scheme: str = "OAUTH2_PASSWORD_BEARER",
                 port: Optional[int] = None, timeout: float = 180) -> Iterator[ZenMLServer]:
    """A ZenML server (`uvicorn zenml.zen_server.zen_server_api:app`) on 127.0.0.1, its bcrypt at the
    lowest cost (uvicorn_with_fast_hashing.py).

    `store_url` defaults to a SQLite file in `workdir` (`sqlite:///...`); pass `MariaDB.zenml_store_url`
    for MySQL. `auth_scheme="NO_AUTH"` serves without login (as `zenml login --local` does); otherwise
    the admin user ADMIN_USER/ADMIN_PASSWORD is created at start (under NO_AUTH: ZenML's "default"). The server's own ZenML config lives in
    `workdir`, apart from the client's.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    store_url = store_url or f"sqlite:///{workdir / 'zenml-server.db'}"
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_STORE_", "ZENML_SERVER_"))}
    env.update({
        "ZENML_SERVER": "true",
        "ZENML_CONFIG_PATH": str(workdir / "server-config"),
        "ZENML_LOCAL_STORES_PATH": str(workdir / "server-local-stores"),
        "ZENML_STORE_URL": store_url,
        "ZENML_SERVER_JWT_SECRET_KEY": TEST_JWT_SECRET,
        "ZENML_SERVER_AUTH_SCHEME": auth_scheme,
        "ZENML_SERVER_AUTO_ACTIVATE": "True",
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
    })
    if auth_scheme != "NO_AUTH":  # NO_AUTH serves every request as ZenML's user named "default"
        env.update({"ZENML_DEFAULT_USER_NAME": ADMIN_USER, "ZENML_DEFAULT_USER_PASSWORD": ADMIN_PASSWORD})
    server = _start("zenml server", [
        sys.executable, str(Path(__file__).with_name("uvicorn_with_fast_hashing.py")), "zenml.zen_server.zen_server_api:app",
        "--host", LOOPBACK, "--port", str(port), "--log-level", "warning"], workdir / "zenml-server.log", env)
    url = f"http://{LOOPBACK}:{port}"
    try:
        server.wait_until(lambda: http_ok(f"{url}/health"), timeout=timeout)
        yield ZenMLServer(url, store_url, auth_scheme, workdir / "server-config", server)
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------- moto S3

@dataclass
class S3Server:
    endpoint_url: str
    access_key_id: str = "keel-test-access-key"
    secret_access_key: str = "keel-test-secret-key"
    region: str = "us-east-1"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key, region_name=self.region)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str) -> List[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [item["Key"] for page in paginator.paginate(Bucket=bucket) for item in page.get("Contents", [])]


@contextlib.contextmanager
def moto_s3_server(workdir: Path) -> Iterator[S3Server]:
    """moto's S3 server (`moto[server]`, a Python package of the dev extra) on 127.0.0.1."""
    port = free_port()
    server = _start("moto s3 server", [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
                    workdir / "moto.log")
    url = f"http://{LOOPBACK}:{port}"
    try:
        server.wait_until(lambda: http_ok(f"{url}/moto-api/"), timeout=60)
        yield S3Server(url)
    finally:
        server.stop()


# ------------------------------------------------------------------------------------ a keel client

ROOT = Path(__file__).resolve().parents[2]


def client_environment(config_path: Path, **variables: str) -> Dict[str, str]:
    """The environment of a keel client process with its own ZenML config folder (so it can log in
    to a server without touching the test session's store)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_STORE_", "ZENML_SERVER"))}
    env.update({"ZENML_CONFIG_PATH": str(config_path), "ZENML_ANALYTICS_OPT_IN": "false",
                "ZENML_LOGGING_VERBOSITY": "INFO", "BENTOML_DO_NOT_TRACK": "True",
                "WHYLOGS_NO_ANALYTICS": "True", **variables})
    return env


def run_keel(args: List[str], env: Dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python run.py ARGS` as a user would run it (no terminal: a prompt would fail, not hang)."""
    from tests.support.forked_commands import run_command

    return run_command([sys.executable, str(ROOT / "run.py"), *args], env=env, cwd=cwd, timeout=timeout)

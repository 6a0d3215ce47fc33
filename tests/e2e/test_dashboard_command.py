"""`run.py dashboard` as a user runs it: it starts the server over keel's local store, prints the URL,
clears the onboarding survey (a new user lands on the overview), refuses a busy port, and `--stop`
ends a dashboard left in the background."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration



def _run(*args, env, timeout=120):
    return subprocess.run([sys.executable, "run.py", "dashboard", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fresh_home(tmp_path):
    """A brand-new ZenML configuration (nothing run yet) for the command's process."""
    return {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml")}


def test_dashboard_starts_prints_its_url_skips_the_survey_and_stops(fresh_home):
    port = free_port()
    started = _run("--port", str(port), "--background", env=fresh_home)
    url = f"http://127.0.0.1:{port}"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"dashboard: {url}" in started.stdout.splitlines()
        with urllib.request.urlopen(f"{url}/api/v1/current-user", timeout=10) as answer:
            user = json.loads(answer.read())
        assert user["metadata"]["user_metadata"]["finished_onboarding_survey"] is True
        assert user["body"]["email_opted_in"] is False
        with urllib.request.urlopen(f"{url}/api/v1/info", timeout=10) as answer:
            info = json.loads(answer.read())
        assert info["auth_scheme"] == "NO_AUTH" and info["database_type"] == "sqlite"
        with urllib.request.urlopen(url, timeout=10) as answer:  # the dashboard itself
            assert b"<title>ZenML Dashboard</title>" in answer.read()

        busy = _run("--port", str(port), env=fresh_home)
        assert busy.returncode == 2
        assert f"port {port} on 127.0.0.1 is already in use" in busy.stderr
    finally:
        stopped = _run("--stop", env=fresh_home)
    assert stopped.returncode == 0 and "stopped the dashboard" in stopped.stdout
    deadline = time.monotonic() + 20
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(port)
    again = _run("--stop", env=fresh_home)
    assert again.returncode == 1 and "no dashboard started with --background" in again.stderr


def test_a_port_out_of_range_is_refused_before_anything_starts(fresh_home):
    done = _run("--port", "80", env=fresh_home, timeout=30)
    assert done.returncode == 2 and "--port must be between 1024 and 65535; found 80" in done.stderr


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0

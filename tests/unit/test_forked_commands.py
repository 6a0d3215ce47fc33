"""A command forked from the tests' zygote is what `python script ...` run as a subprocess gives: same
output, exit status, working directory, environment and sys.path; a timeout kills it."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

import tests.support.forked_commands as forked_commands
from tests.support.forked_commands import _same_import_environment, _zygotes, run_command

SCRIPT = textwrap.dedent("""
    import os, sys
    open("parent", "w").write(str(os.getppid()))
    print(sys.argv[1:], os.getcwd(), os.environ.get("KEEL_PROBE"), sys.path[0], __name__)
    print("to stderr", sys.stdin.read() or "-", file=sys.stderr)
    sys.stdout.write("progress 50%\\r100% \\N{CHECK MARK}\\r\\n")  # as text mode reads it: newlines, UTF-8
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), 9)
    sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else sys.argv[1])
""")


@pytest.mark.parametrize("argument", ["0", "3", "a message", "kill"])
def test_a_forked_command_gives_what_a_subprocess_gives(tmp_path, argument):
    script = tmp_path / "scripts" / "command.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    env = {**os.environ, "KEEL_PROBE": "probe value"}
    argv = [sys.executable, str(script), argument]
    forked = run_command(argv, env=env, cwd=tmp_path, timeout=60)
    assert int((tmp_path / "parent").read_text()) in {z.process.pid for z in _zygotes}  # forked, not run
    plain = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=60)
    assert (forked.returncode, forked.stdout, forked.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert str(tmp_path / "scripts") in forked.stdout and "probe value" in forked.stdout
    assert run_command(argv[:2] + ["0"], env=env, cwd=tmp_path, input="fed").stderr == "to stderr fed\n"


def test_a_command_that_outlives_its_timeout_is_killed_and_the_zygote_serves_the_next(tmp_path):
    script = tmp_path / "sleeps.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        run_command([sys.executable, str(script)], cwd=tmp_path, timeout=1)
    # The zygote finds the killed command's client gone when it reaps it (it crashed on the broken pipe).
    (tmp_path / "parent.py").write_text("import os\nprint(os.getppid())\n")
    time.sleep(0.5)
    ran = run_command([sys.executable, str(tmp_path / "parent.py")], cwd=tmp_path, timeout=60)
    assert ran.returncode == 0 and int(ran.stdout) in {z.process.pid for z in _zygotes if z.process.poll() is None}


def test_an_environment_the_imports_would_read_differently_is_not_forked():
    read_at_import = {"ZENML_LOGGING_VERBOSITY": "WARN", "COLUMNS": None}
    zygote = {**read_at_import, "PYTHONPATH": "/a"}
    assert _same_import_environment(read_at_import, {"ZENML_LOGGING_VERBOSITY": "WARN", "PYTHONPATH": "/a",
                                                     "ZENML_CONFIG_PATH": "/any"}, zygote)
    assert not _same_import_environment(read_at_import, {"ZENML_LOGGING_VERBOSITY": "INFO", "PYTHONPATH": "/a"}, zygote)
    assert not _same_import_environment(read_at_import, {"ZENML_LOGGING_VERBOSITY": "WARN", "COLUMNS": "80",
                                                         "PYTHONPATH": "/a"}, zygote)
    assert not _same_import_environment(read_at_import, {"ZENML_LOGGING_VERBOSITY": "WARN", "PYTHONPATH": "/b"}, zygote)


def test_at_the_cap_the_least_recently_used_idle_zygote_makes_room_for_another_environment(tmp_path, monkeypatch):
    """Modules need other import environments one after another (e.g. COLUMNS, ZENML_LOGGING_VERBOSITY): a cap
    on the first ones started left every later module's commands to run as plain subprocesses."""
    monkeypatch.setattr(forked_commands, "MOST_ZYGOTES", 1)
    script = tmp_path / "parent.py"
    script.write_text("import os\nprint(os.getppid())\n")

    def parent_of(columns: str) -> int:
        ran = run_command([sys.executable, str(script)], env={**os.environ, "COLUMNS": columns}, cwd=tmp_path, timeout=60)
        assert ran.returncode == 0, ran.stderr
        return int(ran.stdout)

    first = parent_of("81")
    zygote = next(z for z in _zygotes if z.process.pid == first)
    assert parent_of("81") == first  # the same environment: the same zygote
    second = parent_of("82")
    assert second != first and zygote.process.poll() is not None  # the idle one was stopped for the new one
    assert [z.process.pid for z in _zygotes if z.owner == os.getpid()] == [second]
    # A zygote with a command still running is never stopped: another environment then runs unforked.
    busy = next(z for z in _zygotes if z.process.pid == second)
    busy.in_flight += 1
    try:
        assert parent_of("83") == os.getpid()
    finally:
        busy.in_flight -= 1
    assert busy.process.poll() is None


def test_a_zygote_that_died_is_replaced_and_the_command_still_runs(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text("import os\nprint(os.getppid())\n")
    argv = [sys.executable, str(script)]
    first = int(run_command(argv, cwd=tmp_path, timeout=60).stdout)
    dead = next(z for z in _zygotes if z.process.pid == first)
    dead.process.kill()
    dead.process.wait()
    ran = run_command(argv, cwd=tmp_path, timeout=60)  # run unforked, once, with the same result
    assert ran.returncode == 0 and int(ran.stdout) == os.getpid() and dead not in _zygotes
    assert int(run_command(argv, cwd=tmp_path, timeout=60).stdout) in {z.process.pid for z in _zygotes}


def test_a_started_command_is_read_as_it_runs_and_its_process_group_killed_as_with_popen(tmp_path):
    """start_command: what subprocess.Popen(stdout=PIPE, stderr=STDOUT, start_new_session=True) gives the chaos
    trials, which read a command's lines as they come and SIGKILL its process group at a kill point."""
    from tests.support.forked_commands import ForkedProcess, start_command

    script = tmp_path / "ticks.py"
    script.write_text("import os, sys, time\nprint('pgid', os.getpgid(0), flush=True)\n"
                      "print('to stderr', file=sys.stderr, flush=True)\ntime.sleep(60)\n")
    process = start_command([sys.executable, str(script)], cwd=tmp_path)
    assert isinstance(process, ForkedProcess)
    assert process.stdout.readline() == f"pgid {process.pid}\n".encode()  # its own process group
    assert process.stdout.readline() == b"to stderr\n"  # stderr on the same pipe
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)
    os.killpg(process.pid, 9)
    assert process.wait(timeout=30) == -9 and process.poll() == -9
    assert process.stdout.read() == b""
    # Only a script is forked (the child runs a file); `python -c` gets Popen, with the same use.
    done = start_command([sys.executable, "-c", "print('done')"], cwd=tmp_path)
    assert isinstance(done, subprocess.Popen)
    assert done.stdout.read() == b"done\n" and done.wait(timeout=30) == 0

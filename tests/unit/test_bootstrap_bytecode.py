"""bootstrap.py compiles the project's own modules to bytecode: where PYTHONDONTWRITEBYTECODE is set
(CI runners and container images often set it) no process writes it, and each command compiled every
keel module it imported again."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import bootstrap


def _imported(root: Path) -> str:
    """What a fresh process under PYTHONDONTWRITEBYTECODE=1 imports from `root`: the module's file and VALUE."""
    done = subprocess.run([sys.executable, "-c", "import tests.bytecode_probe as m; print(m.__file__, m.VALUE)"],
                          cwd=root, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    file, value = done.stdout.split()
    assert Path(file) == root / "tests" / "bytecode_probe.py"  # this folder's module, not another
    return value


def test_processes_under_dontwritebytecode_run_the_compiled_modules_until_a_source_changes(tmp_path):
    package = tmp_path / "tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "bytecode_probe.py"
    source.write_text("VALUE = 1\n")
    cached = Path(importlib.util.cache_from_source(str(source)))

    assert _imported(tmp_path) == "1" and not cached.exists()  # the variable: nobody writes the bytecode

    bootstrap.compile_project_sources(tmp_path, Path(sys.executable))
    assert cached.is_file()
    # What a process runs is that bytecode: a source changed behind Python's back (same size, same
    # modification time) still gives the compiled value.
    unchanged = source.stat()
    source.write_text("VALUE = 2\n")
    os.utime(source, ns=(unchanged.st_atime_ns, unchanged.st_mtime_ns))
    assert _imported(tmp_path) == "1"
    # An edit (a newer modification time) is seen: Python ignores bytecode older than its source.
    os.utime(source, ns=(unchanged.st_atime_ns, unchanged.st_mtime_ns + 5_000_000_000))
    assert _imported(tmp_path) == "2"
    # Compiling again picks the edit up.
    bootstrap.compile_project_sources(tmp_path, Path(sys.executable))
    source.write_text("VALUE = 3\n")
    os.utime(source, ns=(unchanged.st_atime_ns, unchanged.st_mtime_ns + 5_000_000_000))
    assert _imported(tmp_path) == "2"


def test_every_project_package_is_compiled():
    """The folders compiled are the project's own packages and its entry point, as they exist."""
    root = Path(bootstrap.__file__).resolve().parent
    assert {"keel", "steps", "pipelines", "serving", "run.py"} <= set(bootstrap.PROJECT_SOURCES)
    assert all((root / name).exists() for name in bootstrap.PROJECT_SOURCES)

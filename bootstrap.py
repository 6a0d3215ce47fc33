"""Set up keel's environment if needed, then run the main job or the tests.

    python3 bootstrap.py run [run.py arguments]   # the full lifecycle on the embedded default data
    python3 bootstrap.py test [pytest arguments]  # the test suite, on every core (pytest-xdist)
    python3 bootstrap.py setup                    # only the environment (CI does it beside its apt install)

Needs only Python 3.10-3.12 and pip: creates `.venv/` beside this file, installs the exact versions
pinned in requirements.lock (plus keel itself, editable), and reinstalls only when the lock changes.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".keel-lock-sha256"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> None:
    if not (3, 10) <= sys.version_info[:2] < (3, 13):
        sys.exit(f"keel needs Python 3.10-3.12; this is {sys.version.split()[0]}")
    digest = _lock_digest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    print(f"bootstrap: installing the locked environment into {VENV} (first run: a few minutes) ...",
          flush=True)
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not _install_with_uv():
        _install_with_pip()
    STAMP.write_text(digest)
    print("bootstrap: environment ready", flush=True)


def _locked(name: str) -> str:
    """`name==version` as pinned in the lock."""
    prefix = f"{name}=="
    return next(line.split()[0] for line in LOCK.read_text().splitlines() if line.startswith(prefix))


def _install_with_uv() -> bool:
    """The lock through uv (pinned in the lock itself, installed first with pip): the same versions as
    pip installs, in about a third of the time (measured on a fresh venv). False when any of it fails
    (no uv wheel for this platform, an index that only pip is configured for): pip then does it all.
    Bytecode is compiled at install, as pip does: without it each new Python process would compile
    every module it imports again wherever PYTHONDONTWRITEBYTECODE is set."""
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    uv = [str(PYTHON), "-m", "uv", "pip", "install", "--quiet", "--python", str(PYTHON)]
    try:
        subprocess.run([*pip, _locked("uv")], check=True, cwd=ROOT)
        subprocess.run([*uv, "--compile-bytecode", "-r", str(LOCK)], check=True, cwd=ROOT)
        # keel's build backend (setuptools) is in the lock, installed just above (see _install_with_pip).
        subprocess.run([*uv, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True, cwd=ROOT)
    except (subprocess.CalledProcessError, StopIteration, OSError) as error:
        print(f"bootstrap: uv could not install the lock ({error}); installing with pip", flush=True)
        return False
    return True


def _install_with_pip() -> None:
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, "-r", str(LOCK)], check=True, cwd=ROOT)
    # keel's build backend (setuptools) is in the lock, installed just above: build with it rather than
    # in a fresh isolated environment that pip would first fill from the index.
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True, cwd=ROOT)


# The project's own modules: compiled to bytecode beside their sources by `compile_project_sources`.
PROJECT_SOURCES = ("keel", "steps", "pipelines", "serving", "tests", "run.py")


def compile_project_sources(root: Path = ROOT, python: Path = PYTHON) -> None:
    """The project's own modules compiled to bytecode, as uv compiles the installed packages: where
    PYTHONDONTWRITEBYTECODE is set (CI runners and container images often set it) no process writes
    them, so every command compiled each keel module it imported again (~0.3 s of CPU for one that
    imports all of keel; a test run starts over a hundred such processes). Python still reads them
    there, and ignores one whose source changed since. Files already compiled are skipped (~0.1 s);
    a file that does not compile is reported by compileall and fails where it is imported, as before."""
    paths = [str(root / name) for name in PROJECT_SOURCES if (root / name).exists()]
    subprocess.run([str(python), "-m", "compileall", "-q", *paths], cwd=root, check=False)


# The suite on every core (a worker per core; each worker and each test module has its own ZenML store,
# see tests/conftest.py), a module's tests together on one worker, and the 25 slowest tests reported.
# Arguments given to `test` come after these and win (e.g. `-n 0` runs in this process, `--durations=0`).
# loadfile: a module runs whole on one worker (module fixtures built once), but for the few long modules
# tests/conftest.py hands out test by test (HANDED_OUT_BY_TEST); xdist_group marks added at collection
# did not group (a module was split over both workers: checked with -v).
TEST_DEFAULTS = ["-n", "auto", "--dist", "loadfile", "--no-loadscope-reorder", "--durations=25"]


def _test_command(args: list) -> list:
    defaults = TEST_DEFAULTS if "no:xdist" not in args else TEST_DEFAULTS[-1:]  # `-p no:xdist`: no -n
    return [str(PYTHON), "-m", "pytest", *defaults, *args]


def main(argv: list) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__)
        return 2
    ensure_environment()
    compile_project_sources()
    if argv[0] == "setup":
        return 0
    if argv[0] == "run":
        command = [str(PYTHON), str(ROOT / "run.py"), *argv[1:]]
    else:
        command = _test_command(argv[1:])
    return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

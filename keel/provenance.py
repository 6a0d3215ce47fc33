"""Where a model came from: code version, environment and lock, gathered without heavy imports."""

from __future__ import annotations

import getpass
import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = PROJECT_ROOT / "requirements.lock"
TRACKED_PACKAGES = ("zenml", "scikit-learn", "lightgbm", "numpy", "pandas", "pandera", "pyarrow",
                    "shap", "fairlearn", "whylogs", "bentoml", "pydantic")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


def git_state() -> Dict[str, object]:
    """The commit checked out and whether tracked files differ from it (and which)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "unknown", "git_dirty": None, "git_changed_files": []}
    changed = _git("status", "--porcelain", "--untracked-files=no") or ""
    files = sorted(line[3:] for line in changed.splitlines() if line.strip())
    return {"git_commit": commit, "git_dirty": bool(files), "git_changed_files": files}


def package_versions() -> Dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def lock_hash(lock_file: Path = LOCK_FILE) -> str:
    try:
        return hashlib.sha256(lock_file.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def collect_provenance() -> Dict[str, object]:
    """Everything about the code and environment that a model version records."""
    return {
        **git_state(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "lock_file": LOCK_FILE.name,
        "lock_sha256": lock_hash(),
        "os_user": getpass.getuser(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }

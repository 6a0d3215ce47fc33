"""Where a model came from: code version, environment and lock, gathered without heavy imports.

The code is named by its git commit (and dirty flag) when keel runs from a git checkout, and always by a
content hash of keel's own source files, which is all there is to name it by in a container image or a
release archive (no `.git`): there `git_commit` says "not a git checkout"."""

from __future__ import annotations

import functools
import getpass
import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Tuple

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


NOT_A_CHECKOUT = "not a git checkout"
# keel's own source: what the source hash covers (the lock and the spec have their own hashes).
SOURCE_FOLDERS = ("keel", "steps", "pipelines", "serving")
SOURCE_FILES = ("run.py",)


def source_files(root: Path = PROJECT_ROOT) -> List[Path]:
    """keel's Python source files under `root`, as paths relative to it, in a fixed order."""
    found = [Path(name) for name in SOURCE_FILES if (root / name).is_file()]
    for folder in SOURCE_FOLDERS:
        found += [path.relative_to(root) for path in (root / folder).rglob("*.py")
                  if path.is_file() and "__pycache__" not in path.parts]
    return sorted(set(found), key=lambda path: path.as_posix())


def source_hash(root: Path = PROJECT_ROOT) -> Tuple[str, int]:
    """(SHA-256 over each source file's relative path and content, how many files): the same for the same
    files wherever they lie, with or without `.git`, whatever their timestamps."""
    digest = hashlib.sha256()
    files = source_files(root)
    for relative in files:
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((root / relative).read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest(), len(files)


@functools.lru_cache(maxsize=None)
def source_stamp() -> str:
    """keel's source hash, once per process: part of every cached step's cache key (ZenML's
    `CachePolicy.cache_func`). ZenML's key covers a step's own function, not the keel code it calls, so
    without it a step cached before keel changed would be reused, and its output recorded as made by
    code that did not make it."""
    return source_hash()[0]


def in_git_checkout() -> bool:
    """Whether keel's source is tracked by a git repository: keel unpacked from an archive inside some
    other repository's folder is not a checkout of it."""
    return bool(_git("ls-files", "--", "keel/provenance.py"))


def git_state() -> Dict[str, object]:
    """The commit checked out and whether tracked files differ from it (and which); outside a git
    checkout only `git_commit` = "not a git checkout" (no dirty flag: there is nothing to differ from)."""
    from keel import registration as keys  # not at the top (numpy, the spec): light imports
    if _git("--version") is None:
        return {keys.GIT_COMMIT: "unknown (git is not installed)"}
    if not in_git_checkout():
        return {keys.GIT_COMMIT: NOT_A_CHECKOUT}
    commit = _git("rev-parse", "HEAD")
    if commit is None:  # a repository without a commit yet
        return {keys.GIT_COMMIT: "unknown (no commit yet)"}
    changed = _git("status", "--porcelain", "--untracked-files=no") or ""
    files = sorted(line[3:] for line in changed.splitlines() if line.strip())
    return {keys.GIT_COMMIT: commit, keys.GIT_DIRTY: bool(files), keys.GIT_CHANGED_FILES: files}


def code_state() -> Dict[str, object]:
    """The git state and the source hash: what names the code now."""
    from keel import registration as keys
    digest, count = source_hash()
    return {**git_state(), keys.SOURCE_SHA256: digest, keys.SOURCE_FILES: count}


def is_git_commit(value: object) -> bool:
    return isinstance(value, str) and len(value) in (40, 64) and all(c in "0123456789abcdef" for c in value)


def source_text(record: dict) -> str:
    """The recorded source hash for people: "<SHA-256> (<n> files)", or why there is none."""
    from keel import registration as keys
    source = record.get(keys.SOURCE_SHA256)
    if not source:
        return "not recorded (keel recorded no source hash then)"
    count = record.get(keys.SOURCE_FILES)
    return f"{source} ({count} files of keel's source)" if count else str(source)


def describe_code(record: dict, short: bool = False) -> str:
    """How a record names its code, for people: "git <commit> (dirty: files); source SHA-256 <hash>", or
    "not a git checkout; source SHA-256 <hash>". `short`: abbreviated hashes, no file names."""
    from keel import registration as keys
    commit, dirty = record.get(keys.GIT_COMMIT), record.get(keys.GIT_DIRTY)
    if is_git_commit(commit):
        text = f"git {commit[:12] if short else commit}"
        if dirty:
            files = ", ".join(record.get(keys.GIT_CHANGED_FILES) or [])
            text += " (dirty)" if short or not files else f" (dirty: {files})"
    else:
        text = str(commit) if commit else "git commit not recorded"
    source = record.get(keys.SOURCE_SHA256)
    if source:
        count = record.get(keys.SOURCE_FILES)
        text += f"; source SHA-256 {source[:12] + '...' if short else source}"
        text += f" ({count} files)" if count and not short else ""
    return text


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
    from keel import registration as keys
    return {
        **code_state(),
        keys.PYTHON_VERSION: platform.python_version(),
        keys.PLATFORM: platform.platform(),
        keys.PACKAGES: package_versions(),
        keys.LOCK_FILE: LOCK_FILE.name,
        keys.LOCK_SHA256: lock_hash(),
        keys.OS_USER: getpass.getuser(),
        keys.COMMAND: " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }

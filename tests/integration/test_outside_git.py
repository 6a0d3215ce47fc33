"""keel run from a copy of its source without `.git` (a release archive, a container image): `train`
records "not a git checkout" and a content hash of keel's source files, and `lineage`, `reproduce` and
`docs` show and use them. The copy lies untracked inside another git repository, as an archive unpacked
in someone's project would: that repository's commit is not keel's."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from keel.provenance import NOT_A_CHECKOUT, PROJECT_ROOT, source_files, source_hash

pytestmark = pytest.mark.integration

COPIED = ("keel", "steps", "pipelines", "serving", "configs", "run.py", "pyproject.toml", "requirements.lock")


def copy_source(target: Path) -> Path:
    """keel's files as an archive would hold them: no .git, no .venv, no state."""
    target.mkdir(parents=True)
    for name in COPIED:
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(PROJECT_ROOT / name, target / name)
    return target


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=folder, check=True,
                   capture_output=True)


def _machines(rows: int, seed: int) -> pd.DataFrame:
    """Machine failures: nothing like a credit application."""
    rng = np.random.default_rng(seed)
    temperature = rng.normal(70, 8, rows)
    vibration = rng.gamma(2.0, 1.5, rows)
    line = rng.choice(["press", "lathe", "mill"], rows)
    shifts = rng.integers(1, 4, rows)
    risk = 0.15 * (temperature - 70) + 0.6 * vibration + np.where(line == "press", 1.0, 0.0) + rng.normal(0, 1, rows)
    failed = np.where(risk > np.quantile(risk, 0.8), "broke", "ran")
    return pd.DataFrame({"machine": [f"m-{i:05d}" for i in range(rows)], "temperature": temperature.round(2),
                         "vibration": vibration.round(3), "line": line, "shifts": shifts, "failed": failed})


def _spec(folder: Path) -> Path:
    data = folder / "machines.csv"
    _machines(1200, seed=3).to_csv(data, index=False)
    spec = {
        "problem": {"name": "machine_failure", "objective": "Which machines break this week.",
                    "intended_users": "tests", "business_metric": "none",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {"source": {"kind": "csv", "path": str(data)}, "id_column": "machine",
                 "target": {"column": "failed", "positive": "broke", "negative": "ran", "positive_label": "breaks"},
                 "features": {"temperature": {"type": "numeric", "min": 0, "max": 150},
                              "vibration": {"type": "numeric", "min": 0},
                              "line": {"type": "categorical", "categories": ["press", "lathe", "mill"]},
                              "shifts": {"type": "integer", "min": 1, "max": 3}}},
        "split": {"strategy": "random", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 5},
        "training": {"primary_metric": "roc_auc", "seed": 5, "threads": 1,
                     "candidate": {"kind": "lightgbm", "params": {"n_estimators": 30}, "trials": 1}},
        "deployment": {"folder": str(folder / ".keel" / "deployments"), "allow_folder_outside_project": True},
    }
    path = folder / "machines.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _run(copy: Path, *args: str) -> subprocess.CompletedProcess:
    """`python run.py ARGS` in the copy, keel imported from it (forked where it can be: keel is imported fresh
    from the child's own sys.path, the copy's)."""
    from tests.support.forked_commands import run_command

    env = {**os.environ, "PYTHONPATH": str(copy)}
    return run_command([sys.executable, str(copy / "run.py"), *args], cwd=copy, env=env, timeout=600)


def test_the_source_hash_is_the_files_content_wherever_they_lie(tmp_path):
    first, second = copy_source(tmp_path / "a"), copy_source(tmp_path / "b")
    os.utime(second / "run.py", (0, 0))  # timestamps and location do not matter
    digest, count = source_hash(first)
    assert source_hash(second) == (digest, count) and count == len(source_files(first)) > 50
    assert all(not p.name.endswith(".pyc") for p in source_files(first))
    (second / "keel" / "cli" / "console.py").write_text((second / "keel" / "cli" / "console.py").read_text() + "\n")
    assert source_hash(second)[0] != digest  # one byte of keel's code changes it
    (first / "configs" / "note.yaml").write_text("x: 1\n")
    assert source_hash(first)[0] == digest  # a spec is not keel's code (it has its own hash)


def test_train_lineage_reproduce_and_docs_outside_a_git_checkout(tmp_path):
    outer = tmp_path / "someones-project"  # a git repository with a commit, which keel's copy is not part of
    outer.mkdir()
    (outer / "README").write_text("another project\n")
    _git(outer, "init", "-q")
    _git(outer, "add", "README")
    _git(outer, "commit", "-q", "-m", "unrelated")
    copy = copy_source(outer / "keel-0.1.0")
    assert not (copy / ".git").exists()
    spec = _spec(copy)
    expected, count = source_hash(copy)

    trained = _run(copy, "train", "--config", str(spec))
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert "KeyError" not in trained.stderr
    assert f"code:           {NOT_A_CHECKOUT}; source SHA-256 {expected[:12]}..." in trained.stdout

    lineage = _run(copy, "lineage", "--model-version", "1", "--config", str(spec))
    assert lineage.returncode == 0, lineage.stdout + lineage.stderr
    assert re.search(rf"git commit\s+{NOT_A_CHECKOUT}\n", lineage.stdout), lineage.stdout
    assert re.search(rf"source SHA-256\s+{expected} \({count} files of keel's source\)", lineage.stdout), lineage.stdout

    reproduced = _run(copy, "reproduce", "--model-version", "1", "--config", str(spec))
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    code_line = next(line for line in reproduced.stdout.splitlines() if line.strip().startswith("code "))
    assert " ok " in code_line and f"identical by content: SHA-256 {expected[:12]}" in code_line, code_line
    assert f"trained from: {NOT_A_CHECKOUT}; now: {NOT_A_CHECKOUT}" in code_line

    (copy / "keel" / "training" / "fit.py").write_text((copy / "keel" / "training" / "fit.py").read_text() + "# edited\n")
    changed = _run(copy, "reproduce", "--model-version", "1", "--config", str(spec))
    code_line = next(line for line in changed.stdout.splitlines() if line.strip().startswith("code "))
    assert " warning " in code_line and f"recorded SHA-256 {expected[:12]}, now" in code_line, code_line

    docs = _run(copy, "docs", "--model-version", "1", "--config", str(spec))
    assert docs.returncode == 0, docs.stdout + docs.stderr
    document = (copy / "reports" / "machine_failure" / "v1" / "technical_documentation.md").read_text()
    assert NOT_A_CHECKOUT in document and expected in document

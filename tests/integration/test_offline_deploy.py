"""Nothing is downloaded at run time: the Bento build `deploy` runs (keel.deployment.package.build_bento)
works with the package index unreachable, in an environment holding exactly what requirements.lock pins.

BentoML's build runs uv, and pip-installs it from the index mid-build when it is missing ("uv is not
installed, installing it with: python -m pip install -q uv"). The environment under test is built from
the lock the way bootstrap.py installs it: a fresh virtual environment whose site-packages holds only
the distributions the lock names (plus pip and setuptools, which a venv comes with), linked from this
one. Whatever happened to be installed here by hand is not in it."""

import importlib.metadata
import json
import os
import re
import subprocess
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

from keel.deployment.package import BuildToolMissing
from keel.provenance import LOCK_FILE, PROJECT_ROOT

pytestmark = pytest.mark.integration

OFFLINE = {"PIP_INDEX_URL": "http://127.0.0.1:9/", "PIP_NO_INDEX": "1", "UV_OFFLINE": "1",
           "PIP_FIND_LINKS": "", "UV_INDEX_URL": "http://127.0.0.1:9/"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_names(lock: Path) -> set:
    return {_normal(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), re.M)}


def environment_from_lock(lock: Path, target: Path) -> Path:
    """A virtual environment at `target` whose site-packages links only the locked distributions (and
    pip, setuptools) of this environment; returns its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    wanted = locked_names(lock) | {"pip", "setuptools"}
    source = Path(sysconfig.get_paths()["purelib"])
    entries = set()
    for dist in importlib.metadata.distributions(path=[str(source)]):
        if _normal(dist.metadata["Name"] or "") not in wanted:
            continue
        for file in dist.files or []:
            top = Path(file).parts[0]
            if top != ".." and (source / top).exists():
                entries.add(top)
    missing = wanted - {"pip", "setuptools"} - {_normal(d.metadata["Name"] or "")
                                                for d in importlib.metadata.distributions(path=[str(source)])}
    assert not missing, f"locked but not installed here (run bootstrap.py): {sorted(missing)}"
    python = target / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    for entry in sorted(entries):
        link = site / entry
        if not link.exists():
            link.symlink_to(source / entry)
    return python


BUILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import keel
    from keel.deployment.bundle import write_bundle
    from keel.deployment.package import build_bento
    from keel.serving.routing import Arm, RoutingTable
    from keel.spec import load_spec

    spec = load_spec(Path(sys.argv[1]))
    folder = write_bundle(Path(sys.argv[2]), spec, {3: "stand-in model v3"}, {3: 0.4},
                          RoutingTable([Arm("champion", 3, 1.0)]), None)
    print(json.dumps({"tag": build_bento(folder, spec.problem.name, 3)}))
""")


def _spec(tmp_path: Path) -> Path:
    """A small spec of a shape keel's generator never makes (a churn problem on a Parquet file)."""
    import yaml

    spec = {"problem": {"name": "Churn_Offline", "objective": "Who cancels next month.", "intended_users": "tests",
                        "business_metric": "none", "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
            "data": {"source": {"kind": "parquet", "path": str(tmp_path / "absent.parquet")}, "id_column": "account",
                     "target": {"column": "cancelled", "positive": "yes", "negative": "no", "positive_label": "cancels"},
                     "features": {"plan": {"type": "categorical", "categories": ["basic", "pro"]},
                                  "seats": {"type": "integer", "min": 1, "max": 500}}},
            "deployment": {"folder": str(tmp_path / "deployments"), "allow_folder_outside_project": True}}
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _build(python: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV"))}
    env.update(OFFLINE, PATH=f"{python.parent}:/usr/bin:/bin", PYTHONPATH=str(PROJECT_ROOT),
               BENTOML_HOME=str(tmp_path / "bentoml"), BENTOML_DO_NOT_TRACK="True")
    return subprocess.run([str(python), "-c", BUILD, str(_spec(tmp_path)), str(tmp_path / "bundle")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_the_bento_builds_offline_from_the_locked_environment_without_installing_anything(tmp_path):
    python = environment_from_lock(LOCK_FILE, tmp_path / "venv")
    done = _build(python, tmp_path)
    output = done.stdout + done.stderr
    assert "install" not in output.lower(), output[-3000:]  # BentoML says "installing it", then "Failed to install uv"
    assert done.returncode == 0, output[-3000:]
    tag = json.loads(done.stdout.strip().splitlines()[-1])["tag"]
    assert tag == "keel-churn-offline:v3"
    assert (tmp_path / "bentoml" / "bentos" / "keel-churn-offline" / "v3" / "bento.yaml").exists()
    # nothing was added to the environment by the build
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    assert all(entry.is_symlink() for entry in site.iterdir() if entry.name != "__pycache__"), \
        [e.name for e in site.iterdir() if not e.is_symlink()]


def test_without_uv_the_build_stops_with_a_message_before_bentoml_runs(monkeypatch, tmp_path):
    from keel.deployment import package

    monkeypatch.setattr(package, "uv_installed", lambda: False)
    with pytest.raises(BuildToolMissing, match="uv is not installed.*requirements.lock"):
        package.build_bento(tmp_path / "no-bundle-needed", "churn", 1)

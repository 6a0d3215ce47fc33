"""A Bento per model version: keel's code, the deployment bundle and the locked dependencies,
built by BentoML into its store (BENTOML_HOME). Containerizing it needs a Docker engine."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from keel.files import write_atomically
from keel.provenance import LOCK_FILE, PROJECT_ROOT
from keel.serving.routing import Arm, RoutingTable
from keel.serving.layout import DEPLOYMENT_FILE, ROUTING_FILE


def bundled_versions(bundle: Path) -> set:
    """The model versions a deployment folder holds (none if nothing was ever deployed there)."""
    path = Path(bundle) / DEPLOYMENT_FILE
    return {int(v) for v in json.loads(path.read_text())["models"]} if path.exists() else set()


def copy_version_only(bundle: Path, target: Path, version: int) -> Path:
    """A copy of the deployment folder that holds and routes to `version` alone: the live folder
    may hold a champion beside it and route to either (after a rollback, or awaiting approval)."""
    config = json.loads((Path(bundle) / DEPLOYMENT_FILE).read_text())
    if str(version) not in config["models"]:
        raise LookupError(f"v{version} is not in the deployment folder {bundle}")
    target = Path(target)
    model_file = config["models"][str(version)]
    (target / model_file).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(bundle) / model_file, target / model_file)
    if (Path(bundle) / "background.parquet").exists():
        shutil.copy(Path(bundle) / "background.parquet", target / "background.parquet")
    config.update(models={str(version): model_file}, thresholds={str(version): config["thresholds"][str(version)]})
    write_atomically(target / DEPLOYMENT_FILE, json.dumps(config, indent=2))
    salt = config["spec"]["deployment"]["salt"]
    routing = RoutingTable([Arm("champion", version, 1.0)], strategy="bento", step=f"v{version} only", salt=salt)
    write_atomically(target / ROUTING_FILE, json.dumps(routing.to_dict(), indent=2))
    return target


class BuildToolMissing(RuntimeError):
    """A tool BentoML's build runs is not installed here; keel installs nothing at run time."""


def uv_installed() -> bool:
    """BentoML's build runs uv and, when neither the `uv` command nor the package is there, pip-installs
    it from the package index in the middle of the build. It is pinned in requirements.lock."""
    import shutil
    from importlib import metadata

    if shutil.which("uv"):
        return True
    try:
        metadata.version("uv")
    except metadata.PackageNotFoundError:
        return False
    return True


def build_bento(bundle: Path, model_name: str, version: int) -> str:
    """Build `keel-<model>:v<version>` from a deployment bundle, with that version's model alone and
    all traffic routed to it; returns the Bento tag. BuildToolMissing, before BentoML starts, when uv
    is missing (BentoML would download it)."""
    if not uv_installed():
        raise BuildToolMissing(
            "cannot build the Bento: uv is not installed in this environment, and BentoML would download "
            "it now. It is pinned in requirements.lock: install the lock into this environment "
            "(pip install -r requirements.lock; python3 bootstrap.py does it for .venv/)")
    import bentoml
    from bentoml._internal.bento.build_config import BentoEnvSchema

    name = f"keel-{model_name}".lower().replace("_", "-")
    try:  # a rebuilt version replaces the old Bento
        bentoml.bentos.delete(f"{name}:v{version}")
    except bentoml.exceptions.NotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="keel-bento-") as context:
        context = Path(context)
        for package in ("keel", "serving"):
            shutil.copytree(PROJECT_ROOT / package, context / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        copy_version_only(bundle, context / "bundle", version)
        shutil.copy(LOCK_FILE, context / "requirements.lock")
        bento = bentoml.bentos.build(
            "serving.service:KeelService",
            name=name,
            version=f"v{version}",
            labels={"keel-model": model_name, "keel-version": str(version)},
            description=f"keel service for {model_name} v{version}",
            include=["keel/**/*.py", "serving/**/*.py", "bundle/**"],
            python={"requirements_txt": "requirements.lock", "lock_packages": False},
            envs=[BentoEnvSchema(name=name, value=value) for name, value in (
                ("KEEL_DEPLOYMENT_DIR", "/home/bentoml/bento/src/bundle"), ("BENTOML_DO_NOT_TRACK", "True"),
                ("ZENML_ANALYTICS_OPT_IN", "false"), ("WHYLOGS_NO_ANALYTICS", "True"),
                # Inside a container the log defaults to the container's disk; point it at a real
                # database (any SQLAlchemy URL) in a cluster.
                ("KEEL_PREDICTION_LOG_URL", "sqlite:////home/bentoml/predictions.db"))],
            build_ctx=str(context),
        )
    return str(bento.tag)

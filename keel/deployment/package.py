"""A Bento per model version: keel's code, the deployment bundle and the locked dependencies,
built by BentoML into its store (BENTOML_HOME). Containerizing it needs a Docker engine."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from keel.provenance import LOCK_FILE, PROJECT_ROOT


def build_bento(bundle: Path, model_name: str, version: int) -> str:
    """Build `keel-<model>:v<version>` from a deployment bundle; returns the Bento tag."""
    import bentoml
    from bentoml._internal.bento.build_config import BentoEnvSchema

    name = f"keel-{model_name}".lower().replace("_", "-")
    try:  # a rebuilt version replaces the old Bento (its bundle may now hold another champion)
        bentoml.bentos.delete(f"{name}:v{version}")
    except bentoml.exceptions.NotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="keel-bento-") as context:
        context = Path(context)
        for package in ("keel", "serving"):
            shutil.copytree(PROJECT_ROOT / package, context / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copytree(bundle, context / "bundle",
                        ignore=shutil.ignore_patterns("*.db", "*.db-*", "service.*", ".*"))
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

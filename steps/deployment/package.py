from pathlib import Path
from typing import Tuple

import yaml
from typing_extensions import Annotated
from zenml import step

from keel.deployment.kubernetes import serving_manifests
from keel.deployment.package import build_bento


@step(enable_cache=False)
def package_step(rollout_evidence: dict, bundle_folder: str, model_name: str, model_version: int) -> Tuple[
    Annotated[str, "bento_tag"],
    Annotated[str, "kubernetes_manifests"],
]:
    """Build the version's Bento (code, bundle, locked dependencies, generated Dockerfile) and the
    Kubernetes manifests for its image. Out: the Bento tag and the manifests as YAML."""
    if not (Path(bundle_folder) / "deployment.json").exists():  # nothing was deployed (awaiting approval)
        return "", ""
    tag = build_bento(Path(bundle_folder), model_name, model_version)
    manifests = serving_manifests(model_name, model_version, image=tag)  # `bentoml containerize` names it so
    text = yaml.safe_dump_all(manifests, sort_keys=False)
    (Path(bundle_folder) / "kubernetes.yaml").write_text(text)
    return tag, text

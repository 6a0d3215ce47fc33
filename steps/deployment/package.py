from pathlib import Path
from typing import Optional, Tuple

import yaml
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.deployment.kubernetes import serving_manifests
from keel.deployment.package import build_bento, bundled_versions
from keel.files import write_atomically


@step(enable_cache=False)
def package_step(rollout_evidence: dict, bundle_folder: str, model_name: str, model_version: int,
                 api_key_env: Optional[str] = None) -> Tuple[
    Annotated[str, Artifact.BENTO_TAG],
    Annotated[str, Artifact.KUBERNETES_MANIFESTS],
]:
    """Build the version's Bento (code, that version's model alone routed all traffic, locked
    dependencies, generated Dockerfile) and the Kubernetes manifests for its image, whatever the
    rollout's outcome: the Bento of v<N> always serves v<N>. Out: the Bento tag and the manifests as
    YAML (both empty when v<N> was never bundled, e.g. a first version awaiting approval)."""
    if model_version not in bundled_versions(Path(bundle_folder)):
        print(f"no Bento built for v{model_version}: it was not rolled out (rollout outcome: "
              f"{rollout_evidence.get('outcome')}); its Bento is built when a deploy rolls it out")
        return "", ""
    tag = build_bento(Path(bundle_folder), model_name, model_version)
    print(f"built Bento {tag} serving v{model_version} alone (rollout outcome: {rollout_evidence.get('outcome')}; "
          f"the live service serves v{rollout_evidence.get('serving')})")
    # `bentoml containerize` names the image after the tag.
    manifests = serving_manifests(model_name, model_version, image=tag, api_key_env=api_key_env)
    text = yaml.safe_dump_all(manifests, sort_keys=False)
    write_atomically(Path(bundle_folder) / "kubernetes.yaml", text)
    return tag, text

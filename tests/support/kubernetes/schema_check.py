"""Offline validation of Kubernetes manifests against the API schemas that `kubernetes-validate`
ships (no cluster, no download). Strict: an unknown or misspelt field is an error, as a real API
server with field validation would reject it."""

from __future__ import annotations

from typing import Iterable, List

# A version whose schemas kubernetes-validate ships and that kind, minikube and the managed
# services (EKS, GKE, AKS) all offer.
KUBERNETES_VERSION = "1.33.0"


def schema_problems(manifests: Iterable[dict], kubernetes_version: str = KUBERNETES_VERSION) -> List[str]:
    """One line per invalid manifest ('Kind/name: what is wrong'); empty when all are valid."""
    import kubernetes_validate

    problems = []
    for manifest in manifests:
        name = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
        try:
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path) or "(top level)"
            problems.append(f"{name}: {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name}: no schema for this kind in Kubernetes {kubernetes_version} ({error})")
    return problems

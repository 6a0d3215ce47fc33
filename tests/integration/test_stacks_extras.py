"""Each stack extra of pyproject.toml is installed at versions that satisfy it, its packages import
with ZenML's implementations, and ZenML registers every flavor the stack files use."""

import importlib
import importlib.metadata
import sys

import pytest
from packaging.requirements import Requirement

from keel.stacks import load_stack_file
from keel.stacks.load import STACKS_DIR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = STACKS_DIR.parent / "pyproject.toml"
# ZenML's implementation classes behind the flavors each extra serves (importing them imports the
# extra's packages the way a pipeline run would).
IMPLEMENTATIONS = {
    "remote": ["zenml.integrations.s3.artifact_stores.s3_artifact_store:S3ArtifactStore"],
    "aws": ["zenml.integrations.s3.artifact_stores.s3_artifact_store:S3ArtifactStore",
            "zenml.integrations.aws.container_registries.aws_container_registry:AWSContainerRegistry",
            "zenml.integrations.kubernetes.orchestrators.kubernetes_orchestrator:KubernetesOrchestrator"],
    "gcp": ["zenml.integrations.gcp.artifact_stores.gcp_artifact_store:GCPArtifactStore",
            "zenml.integrations.kubernetes.orchestrators.kubernetes_orchestrator:KubernetesOrchestrator"],
    "kubernetes": ["zenml.integrations.kubernetes.orchestrators.kubernetes_orchestrator:KubernetesOrchestrator",
                   "zenml.integrations.kaniko.image_builders.kaniko_image_builder:KanikoImageBuilder",
                   "zenml.integrations.s3.artifact_stores.s3_artifact_store:S3ArtifactStore"],
}


def _extra_requirements(extra: str) -> list:
    """The extra's requirements, self-references (keel[remote]) expanded."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    found = []
    for text in extras[extra]:
        requirement = Requirement(text)
        if requirement.name == "keel":
            for inner in requirement.extras:
                found += _extra_requirements(inner)
        else:
            found.append(requirement)
    return found


@pytest.mark.parametrize("extra", sorted(IMPLEMENTATIONS))
def test_each_stack_extra_is_installed_and_imports_with_zenml(extra):
    requirements = _extra_requirements(extra)
    assert requirements, f"extra {extra} lists nothing"
    for requirement in requirements:
        version = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
    for path in IMPLEMENTATIONS[extra]:
        module, name = path.split(":")
        assert isinstance(getattr(importlib.import_module(module), name), type)


def test_the_pins_that_clash_in_zenml_lists_resolve_together():
    # s3fs and gcsfs pin the same fsspec; s3fs must not be the resolver's 0.4.2 fallback.
    versions = {name: importlib.metadata.version(name) for name in ("s3fs", "gcsfs", "fsspec", "kubernetes")}
    assert int(versions["s3fs"].split(".")[0]) >= 2025 and int(versions["gcsfs"].split(".")[0]) >= 2025
    for package in ("s3fs", "gcsfs"):
        fsspec_pins = [Requirement(r) for r in importlib.metadata.requires(package) or [] if r.startswith("fsspec")]
        assert all(pin.specifier.contains(versions["fsspec"]) for pin in fsspec_pins), (package, fsspec_pins)
    assert int(versions["kubernetes"].split(".")[0]) >= 30  # ZenML's list says <26; see pyproject.toml


def test_zenml_registers_every_flavor_the_stack_files_use():
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.stack.flavor import Flavor

    client = Client()
    used = {(kind, component.flavor) for name in ("local", "remote", "aws", "gcp", "kubernetes")
            for kind, component in load_stack_file(STACKS_DIR / f"{name}.yaml", {}).components.items()}
    assert len(used) >= 9
    for kind, flavor in sorted(used):
        model = client.get_flavor_by_name_and_type(flavor, StackComponentType(kind))
        implementation = Flavor.from_model(model).implementation_class
        assert implementation.__name__, (kind, flavor)

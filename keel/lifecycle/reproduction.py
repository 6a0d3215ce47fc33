"""Reproduce a model version: rebuild it from what its registration recorded (spec, code, data,
packages) and compare it with the recorded one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional


def recorded_spec(run_id: str) -> Optional[dict]:
    """The spec exactly as the training run received it (ZenML keeps a pipeline's parameters)."""
    from zenml.client import Client

    try:
        return dict(Client().get_pipeline_run(run_id).config.parameters["spec"])
    except (KeyError, TypeError):
        return None


def files_changed_since(commit: str) -> Optional[List[str]]:
    """The files that differ between `commit` and HEAD; None when this clone does not hold `commit`."""
    from keel.provenance import _git

    if _git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        return None
    return (_git("diff", "--name-only", commit, "HEAD") or "").split()


@dataclass
class ReproductionTarget:
    """The version to reproduce and its registration metadata; or `error` (no such version)."""

    version: Optional[int] = None
    recorded: Optional[dict] = None
    error: Optional[str] = None
    model: Optional[str] = None


def reproduction_target(spec, version: Optional[int]) -> ReproductionTarget:
    """`version` (None: the latest) of the spec's model, with what its registration recorded."""
    from keel.registry import get_model_version_metadata, resolve_version

    if version is not None and version < 1:  # the registry's lookup would say "no version" without the number
        return ReproductionTarget(error=f"keel: there is no version {version} of model '{spec.problem.name}': "
                                        "versions are numbered from 1")
    try:
        version = resolve_version(spec.problem.name, version)
    except LookupError as error:
        return ReproductionTarget(error=f"keel: {error}")
    return ReproductionTarget(version, get_model_version_metadata(spec.problem.name, version),
                              model=spec.problem.name)


def base_record(model: Optional[str], recorded: dict) -> Optional[tuple]:
    """(metadata, its run's spec) of the version a mitigated version was made from; None for a version
    not mitigated, (None, None) when the base's record cannot be read."""
    from keel import registration as keys
    from keel.registry import get_model_version_metadata

    source = recorded.get(keys.MITIGATED_FROM)
    if source is None:
        return None
    try:
        metadata = get_model_version_metadata(model, int(source))
    except (KeyError, LookupError):
        return None, None
    return metadata, recorded_spec(metadata[keys.RUN_ID]) if metadata.get(keys.RUN_ID) else None


@dataclass
class ReproductionResult:
    """keel.governance.reproduce's result (checks, whether it retrained, differences); or `error`."""

    result: Optional[object] = None
    error: Optional[str] = None


def reproduce_version(target: ReproductionTarget) -> ReproductionResult:
    """Rebuild `target` on the active stack's engine and compare it with the recorded version."""
    from keel import registration as keys
    from keel.engine.cluster import EngineUnavailableError
    from keel.engine.selection import active_engine
    from keel.governance.reproduce import reproduce as rebuild
    from keel.provenance import code_state, lock_hash, package_versions

    recorded = target.recorded
    try:
        return ReproductionResult(rebuild(recorded, recorded_spec(recorded[keys.RUN_ID]) if recorded.get(keys.RUN_ID)
                                          else None, git_now=code_state(), diff_names=files_changed_since,
                                          lock_sha256=lock_hash(), packages=package_versions(), engine=active_engine(),
                                          base=base_record(target.model, recorded)))
    except EngineUnavailableError as error:
        return ReproductionResult(error=f"keel: {error}")

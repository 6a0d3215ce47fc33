"""`run.py reproduce --model-version N`: rebuild a version and prove it identical (exit 0) or not (exit 1)."""

from __future__ import annotations

from typing import List, Optional

from keel.cli.console import fail, say


def _files_changed_since(commit: str) -> Optional[List[str]]:
    from keel.provenance import _git

    if _git("cat-file", "-e", f"{commit}^{{commit}}") is None:
        return None
    return (_git("diff", "--name-only", commit, "HEAD") or "").split()


def recorded_spec(run_id: str) -> Optional[dict]:
    """The spec exactly as the training run received it (ZenML keeps a pipeline's parameters)."""
    from zenml.client import Client

    try:
        return dict(Client().get_pipeline_run(run_id).config.parameters["spec"])
    except (KeyError, TypeError):
        return None


def reproduce(spec, version: Optional[int]) -> int:
    from keel import registration as keys
    from keel.governance.reproduce import reproduce as rebuild
    from keel.provenance import code_state, lock_hash, package_versions
    from keel.registry import get_model_version_metadata, resolve_version

    model = spec.problem.name
    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return fail(f"keel: {error}", 1)
    from keel.engine.cluster import EngineUnavailableError
    from keel.engine.selection import active_engine

    recorded = get_model_version_metadata(model, version)
    say(f"keel: reproducing {model} v{version} (trained by run {recorded.get(keys.RUN_NAME)}) ...")
    try:
        result = rebuild(recorded, recorded_spec(recorded[keys.RUN_ID]) if recorded.get(keys.RUN_ID) else None,
                         git_now=code_state(), diff_names=_files_changed_since, lock_sha256=lock_hash(),
                         packages=package_versions(), engine=active_engine())
    except EngineUnavailableError as error:
        return fail(f"keel: {error}", 1)
    for check in result.checks:
        say(f"  {check.name:<16} {check.status:<8} {check.detail}")
    if not result.retrained:
        return fail(f"\nnot reproduced: {'; '.join(c.name for c in result.checks if c.status == 'FAILED')} "
                    "check(s) failed, so the version was not retrained", 1)
    say()
    if result.identical and result.within_tolerance:
        say(f"reproduced within tolerance {result.within_tolerance}")
        return 0
    if result.identical:
        say(f"reproduced: identical model SHA-256 {result.reproduced[keys.MODEL_SHA256]} and identical "
            f"validation and test metrics")
        return 0
    for difference in result.differences:
        say(f"  DIFFERS {difference['what']}: recorded {difference['recorded']}, reproduced {difference['reproduced']}")
        say(f"          likely cause: {difference['cause']}")
    return fail(f"\nNOT identical: {len(result.differences)} difference(s)", 1)

"""Mitigate one model version: run the mitigation pipeline (fit the spec's mitigation, register the
mitigated model as a new version) and return the new version with its before/after report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from keel.artifacts import Artifact
from keel.spec.models import Spec


@dataclass
class MitigationResult:
    """What `mitigate_version` came to: `version` mitigated into `new_version` by its own run, with the
    mitigation report (method, groups, decision rule, every gate metric before and after); or `error`."""

    version: Optional[int]
    new_version: Optional[int] = None
    run_name: Optional[str] = None
    report: Optional[dict] = None
    error: Optional[str] = None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else 1


def mitigate_version(spec: Spec, version: Optional[int], no_cache: bool = False) -> MitigationResult:
    """Run the mitigation pipeline on `version` (None: the latest); the new version is this run's
    `register_mitigated_model_step` output (never "the latest version")."""
    from keel.lifecycle.pipeline_runs import run_for_version
    from keel.provenance import collect_provenance
    from keel.spec import spec_hash

    resolved, outcome = run_for_version("pipelines.mitigation:mitigation_pipeline", spec, version, no_cache=no_cache,
                                        spec_hash=spec_hash(spec), provenance=collect_provenance())
    if resolved is None:
        return MitigationResult(version, error=outcome)
    steps = outcome.run.steps
    return MitigationResult(resolved, new_version=steps["register_mitigated_model_step"].output.load(),
                            run_name=outcome.run.name,
                            report=steps["fit_mitigation_step"].outputs[Artifact.MITIGATION_REPORT][0].load())

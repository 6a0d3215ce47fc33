"""Technical documentation (Annex IV structure) of a model version as Markdown and HTML files: drawn
from its registration, the evaluation run that judged it and a verified audit trail, with the spec it
was trained with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


def evaluation_reports(run_id: Optional[str]) -> dict:
    """The performance (metrics at the decision threshold), fairness, robustness and mitigation reports of
    the evaluation run that judged the version."""
    if not run_id:
        return {}
    from zenml.client import Client

    from keel.artifacts import Artifact

    steps = Client().get_pipeline_run(run_id).steps
    found = {}
    for key, step, output in (("performance", "performance_step", Artifact.PERFORMANCE_REPORT),
                              ("fairness", "fairness_step", Artifact.FAIRNESS_REPORT),
                              ("robustness", "robustness_step", Artifact.ROBUSTNESS_REPORT),
                              ("mitigation", "mitigation_step", Artifact.MITIGATION_REPORT)):
        if step in steps and steps[step].outputs.get(output):
            found[key] = steps[step].outputs[output][0].load()
    return found


def training_spec(current, run_id: Optional[str]):
    """The spec the version was trained with (recorded by its run); the current one only if that is unreadable."""
    from keel.lifecycle.reproduction import recorded_spec
    from keel.spec import SpecError, validate_spec

    raw = recorded_spec(run_id) if run_id else None
    if raw is not None:
        try:
            return validate_spec(raw, "the training run's spec"), f"the spec recorded by training run {run_id}"
        except SpecError:
            pass
    return current, "the current spec (the training run's spec could not be read back)"


# What a version is released under: judged, decided, approved and served. A re-evaluation under another
# spec changes these; the documentation shows the ones the version's latest evaluation recorded.
RELEASE_SECTIONS = ("evaluation", "decisions", "governance", "deployment")


def with_release_sections(spec, origin: str, evaluation_run_id: Optional[str]):
    """`spec` (the training run's) with RELEASE_SECTIONS from the spec the evaluation run recorded, and
    where each comes from; `spec` as it is when there is no evaluation or its spec cannot be read back."""
    from keel.lifecycle.reproduction import recorded_spec
    from keel.spec import SpecError, validate_spec

    raw = recorded_spec(evaluation_run_id) if evaluation_run_id else None
    if raw is None:
        return spec, origin
    try:
        evaluated = validate_spec(raw, "the evaluation run's spec")
    except SpecError:
        return spec, origin
    released = spec.model_copy(update={name: getattr(evaluated, name) for name in RELEASE_SECTIONS})
    return released, f"{origin}; {', '.join(RELEASE_SECTIONS)} as recorded by evaluation run {evaluation_run_id}"


@dataclass
class DocumentationResult:
    """What `write_documentation` came to: the files written (Markdown, HTML), which spec they were drawn
    with, how many sections and audit records; or `error` and nothing written."""

    version: Optional[int] = None
    origin: Optional[str] = None
    sections: int = 0
    records: int = 0
    paths: list = field(default_factory=list)
    error: Optional[str] = None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else 1


def write_documentation(spec, version: Optional[int], config: Optional[Path] = None) -> DocumentationResult:
    """Write `version`'s (None: the latest) documentation under the reports folder of `spec` (today's),
    each file atomically. Monitoring is described with `spec` (the one given, from `config`), the rest
    with the spec the version was trained with."""
    from keel import registration as keys
    from keel.files import write_atomically
    from keel.governance.annex_iv import documentation_html, documentation_markdown, documentation_sections
    from keel.governance.audit import TamperedTrail, verified_trail
    from keel.lifecycle.evaluation import reports_folder
    from keel.registry import get_model_version_metadata, resolve_version

    model = spec.problem.name
    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return DocumentationResult(error=f"keel: {error}")
    metadata = get_model_version_metadata(model, version)
    try:
        records, check = verified_trail(model, "documentation drawn from it")
    except TamperedTrail as error:
        return DocumentationResult(version, error=f"keel: {error}")
    folder = reports_folder(spec) / model / f"v{version}"  # where to write: today's spec
    monitoring = (spec.monitoring, f"the spec given to this command ({config})" if config else "the current spec")
    evaluation_run = (metadata.get(keys.EVALUATION) or {}).get("run_id")
    spec, origin = with_release_sections(*training_spec(spec, metadata.get(keys.RUN_ID)), evaluation_run)
    sections = documentation_sections(spec, model, version, metadata, evaluation_reports(evaluation_run), records,
                                      monitoring_spec=monitoring)
    folder.mkdir(parents=True, exist_ok=True)
    markdown, html = folder / "technical_documentation.md", folder / "technical_documentation.html"
    write_atomically(markdown, documentation_markdown(model, version, sections, check.head_hash))
    write_atomically(html, documentation_html(model, version, sections, check.head_hash))
    return DocumentationResult(version, origin, len(sections), len(records), [markdown.resolve(), html.resolve()])

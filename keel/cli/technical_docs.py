"""`run.py docs --model-version N`: technical documentation (Annex IV) as Markdown and HTML files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from keel.artifacts import Artifact
from keel.cli.console import fail, say


def evaluation_reports(run_id: Optional[str]) -> dict:
    """The fairness and robustness reports of the evaluation run that judged the version."""
    if not run_id:
        return {}
    from zenml.client import Client

    steps = Client().get_pipeline_run(run_id).steps
    found = {}
    for key, step, output in (("fairness", "fairness_step", Artifact.FAIRNESS_REPORT),
                              ("robustness", "robustness_step", Artifact.ROBUSTNESS_REPORT),
                              ("mitigation", "mitigation_step", Artifact.MITIGATION_REPORT)):
        if step in steps and steps[step].outputs.get(output):
            found[key] = steps[step].outputs[output][0].load()
    return found


def training_spec(current, run_id: Optional[str]):
    """The spec the version was trained with (recorded by its run); the current one only if that is unreadable."""
    from keel.cli.reproduce import recorded_spec
    from keel.spec import SpecError, validate_spec

    raw = recorded_spec(run_id) if run_id else None
    if raw is not None:
        try:
            return validate_spec(raw, "the training run's spec"), f"the spec recorded by training run {run_id}"
        except SpecError:
            pass
    return current, "the current spec (the training run's spec could not be read back)"


def write_docs(spec, version: Optional[int], config: Optional[Path] = None) -> int:
    from keel import registration as keys
    from keel.governance.annex_iv import documentation_html, documentation_markdown, documentation_sections
    from keel.governance.audit import TamperedTrail, verified_trail
    from keel.lifecycle.evaluation import reports_folder
    from keel.registry import get_model_version_metadata, resolve_version

    model = spec.problem.name
    try:
        version = resolve_version(model, version)
    except LookupError as error:
        return fail(f"keel: {error}", 1)
    metadata = get_model_version_metadata(model, version)
    try:
        records, check = verified_trail(model, "documentation drawn from it")
    except TamperedTrail as error:
        return fail(f"keel: {error}", 1)
    folder = reports_folder(spec) / model / f"v{version}"  # where to write: today's spec
    # Monitoring runs with the spec given here (as `monitor --config` does), not the one trained with.
    monitoring = (spec.monitoring, f"the spec given to this command ({config})" if config else "the current spec")
    spec, origin = training_spec(spec, metadata.get(keys.RUN_ID))
    say(f"keel: using {origin}")
    sections = documentation_sections(spec, model, version, metadata,
                                      evaluation_reports((metadata.get(keys.EVALUATION) or {}).get("run_id")), records,
                                      monitoring_spec=monitoring)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / "technical_documentation.md"
    markdown.write_text(documentation_markdown(model, version, sections, check.head_hash), encoding="utf-8")
    (folder / "technical_documentation.html").write_text(documentation_html(model, version, sections, check.head_hash),
                                                         encoding="utf-8")
    say(f"technical documentation of {model} v{version} (Annex IV structure, {len(sections)} sections, "
        f"{len(records)} audit records):")
    say(f"  {markdown.resolve()}")
    say(f"  {markdown.with_suffix('.html').resolve()}")
    return 0

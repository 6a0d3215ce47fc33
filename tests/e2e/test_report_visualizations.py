"""Every keel report reaches the dashboard as an HTML visualization: each report a step returns is a
`zenml.types.HTMLString` output (the dashboard renders only typed visualizations; a plain `str` or
`dict` shows as data), and each report-producing step is part of a pipeline keel runs."""

import importlib
from pathlib import Path

from tests.conftest import ROOT

# Report -> the step that renders it. Drift joins with the monitoring pipeline.
EXPECTED_REPORTS = {
    "validation_report_html": "validate_step", "readiness_report_html": "readiness_step",
    "performance_report_html": "performance_step", "fairness_report_html": "fairness_step",
    "calibration_report_html": "calibration_step", "robustness_report_html": "robustness_step",
    "explainability_report_html": "explainability_step", "latency_report_html": "latency_step",
    "business_report_html": "business_step", "champion_comparison_html": "champion_challenger_step",
    "promotion_decision_html": "gates_step", "model_card_html": "model_card_step",
    "rollout_timeline_html": "rollout_step", "model_registry_html": "registry_view_step",
}


def _steps():
    from zenml.steps import BaseStep

    for path in sorted((ROOT / "steps").rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for value in vars(module).values():
            if isinstance(value, BaseStep) and value.__module__ == module.__name__:
                yield value


def _html_outputs():
    from zenml.types import HTMLString

    found = {}
    for step in _steps():
        for name, output in step.entrypoint_definition.outputs.items():
            if output.resolved_annotation is HTMLString:
                found[name] = step.name
    return found


def test_every_keel_report_is_an_html_string_output_of_its_step():
    found = _html_outputs()
    missing = {name: step for name, step in EXPECTED_REPORTS.items() if found.get(name) != step}
    assert not missing, f"not an HTMLString output of the named step: {missing}"
    if (ROOT / "steps" / "monitoring").is_dir():  # the drift report, once monitoring has landed
        assert any("drift" in name for name in found), sorted(found)


def test_every_report_step_runs_in_a_pipeline():
    sources = "".join(Path(p).read_text() for p in (ROOT / "pipelines").glob("*.py"))
    for step in set(_html_outputs().values()):
        assert f"{step}(" in sources, f"{step} renders a report but no pipeline calls it"


def test_no_report_builder_writes_a_script():
    # The dashboard shows HTML in an iframe with sandbox="": a script would not run, so none is written.
    for path in (ROOT / "keel").rglob("*.py"):
        assert "<script" not in path.read_text().lower(), path

"""Every keel report reaches the dashboard as an HTML visualization: each report a step returns is a
`zenml.types.HTMLString` output (the dashboard renders only typed visualizations; a plain `str` or
`dict` shows as data), each report-producing step is part of a pipeline keel runs, and every report
builder, rendered from a small real training and evaluation run, writes a page with content and no
script (the dashboard's iframe has sandbox="", where a script would not run)."""

import importlib
import re
from pathlib import Path

import pytest

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
    assert any("drift" in name for name in found), sorted(found)  # the monitoring pipeline's report


def test_every_report_step_runs_in_a_pipeline():
    sources = "".join(Path(p).read_text() for p in (ROOT / "pipelines").glob("*.py"))
    for step in set(_html_outputs().values()):
        assert f"{step}(" in sources, f"{step} renders a report but no pipeline calls it"


def test_no_report_builder_source_writes_a_script_tag():
    # A cheap net under the rendering test below: no builder even spells a script tag.
    for path in (ROOT / "keel").rglob("*.py"):
        assert "<script" not in path.read_text().lower(), path


# Builders not rendered here, each with where its HTML is checked instead.
RENDERED_ELSEWHERE = {
    "documentation_html": "tests/unit/test_governance_records.py (Annex IV documentation, governance)",
}
FAST = ["data.source.rows=2000", "training.candidate.trials=2", "training.candidate.params.n_estimators=40",
        "evaluation.latency.single_row_calls=20", "evaluation.explainability.sample_size=100",
        "evaluation.comparison.bootstrap_samples=100", "evaluation.performance.interval_samples=50",
        "evaluation.mitigation.method=threshold_optimizer", "evaluation.mitigation.attribute_at_decision_time=true"]


def _builder_names():
    """Every `def *_html(` in keel: each must be rendered below or be listed in RENDERED_ELSEWHERE."""
    names = set()
    for path in (ROOT / "keel").rglob("*.py"):
        names |= set(re.findall(r"^def ([a-z_]*html)\(", path.read_text(), flags=re.MULTILINE))
    return names


@pytest.fixture(scope="module")
def rendered():
    """{builder name: its HTML} from a small in-process training and evaluation (about 10-20 s)."""
    from keel.data.generator import generate_credit_applications
    from keel.data.readiness import readiness_html
    from keel.data.schema import validation_html
    from keel.deployment.report import rollout_html
    from keel.evaluation import (business, calibration, comparison, explainability, fairness, gates, latency,
                                 mitigation, model_card, performance, robustness)
    from keel.evaluation.suite import evaluate_all
    from keel.monitoring.profiles import compare_columns, profile_frame
    from keel.monitoring.report import drift_report_html, profile_html
    from keel.reports.registry_view import registry_html
    from keel.spec import load_spec
    from keel.training.in_process import train_in_process

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", FAST)
    trained = train_in_process(generate_credit_applications(spec.data.source), spec)
    model = trained.selected.pipeline
    reports = evaluate_all(model, trained.validation, trained.test, spec)
    features = list(spec.data.model_features)
    reference, window = profile_frame(trained.train[features]), profile_frame(trained.test[features])
    status = {"model": spec.problem.name, "model_version": 1, "judged": True,
              "window": {"window": "day", "start": "2026-11-26", "end": "2026-11-27",
                         "rows": len(trained.test), "new_rows": len(trained.test)},
              "features": {"features": compare_columns(window, reference, features), "alpha": 0.01,
                           "tested": len(features)}}
    stage = {"stage": "canary", "step": 1, "started": "2026-11-26T10:00:00+00:00",
             "challenger": {"requests": 20, "errors": 0, "p95_latency_ms": 4.2}, "score_psi": 0.01,
             "value_per_application_by_arm": {"champion": 1.5, "challenger": 1.7}, "healthy": True, "breaches": []}
    version = {"number": 1, "stage": "staging", "created": None,
               "metadata": {"model_family": "lightgbm", "primary_metric": "roc_auc",
                            "evaluation": {**reports["decision"], "threshold": reports["threshold"]["threshold"]}}}
    return {
        "validation_html": validation_html(trained.validation_report),
        "readiness_html": readiness_html(trained.readiness),
        "performance_html": performance.performance_html(reports["performance"]),
        "fairness_html": fairness.fairness_html(reports["fairness"]),
        "calibration_html": calibration.calibration_html(reports["calibration"]),
        "robustness_html": robustness.robustness_html(reports["robustness"]),
        "explainability_html": explainability.explainability_html(reports["explainability"]),
        "latency_html": latency.latency_html(reports["latency"]),
        "business_html": business.business_html(reports["business"]),
        "comparison_html": comparison.comparison_html(reports["comparison"]),
        "gates_html": gates.gates_html(reports["decision"]),
        "mitigation_html": mitigation.mitigation_html(
            mitigation.mitigate(model, trained.train, trained.validation, trained.test, spec, reports)),
        "model_card_html": model_card.model_card_html(
            spec.problem.name, 1, model_card.card_sections(spec, spec.problem.name, 1, {},  # as model_card_step
                                                           {**reports, "comparison": None})),
        "rollout_html": rollout_html({"challenger": 1, "strategy": "canary", "outcome": "promoted",
                                      "serving": 1, "stages": [stage]}),
        "registry_html": registry_html(spec.problem.name, [version]),
        "drift_report_html": drift_report_html(status),
        "profile_html": profile_html(reference),
    }


def test_every_report_builder_is_rendered_here_or_checked_elsewhere(rendered):
    unchecked = _builder_names() - set(rendered) - set(RENDERED_ELSEWHERE)
    assert not unchecked, f"add these report builders to the `rendered` fixture: {sorted(unchecked)}"


def test_every_rendered_report_has_content_and_no_script(rendered):
    for name, page in rendered.items():
        body = re.search(r"<body>(.*)</body>", page, flags=re.DOTALL)
        assert body, f"{name}: no <body>"
        # Beyond the page title: the builder wrote something (a table, a chart, text).
        content = re.sub(r"<[^>]+>", " ", re.sub(r"<h1>.*?</h1>", "", body.group(1), count=1))
        assert len(content.split()) >= 5, f"{name}: an empty page: {page[:300]}"
        assert "<script" not in page.lower(), f"{name} writes a script"
        assert "javascript:" not in page.lower() and not re.search(r"\son[a-z]+\s*=", page), \
            f"{name} writes an event handler or a javascript: URL"

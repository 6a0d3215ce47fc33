"""Where keel writes its reports and how: the spec's documentation_folder, relative to the project (the
working directory the command runs in, as .keel/deployments and data.source.path are), and each file
written atomically (no temporary file left beside it, an earlier copy replaced whole)."""

from pathlib import Path

from tests.conftest import ROOT


def _spec(*overrides):
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml", list(overrides))


def test_reports_resolve_against_the_project_the_command_runs_in_like_the_deployment_folder(tmp_path, monkeypatch):
    from keel.deployment.deploy import deployment_folder
    from keel.lifecycle.evaluation import model_card_path, reports_folder

    elsewhere = tmp_path / "another project"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = _spec()
    assert reports_folder(spec) == elsewhere / "reports"  # the default spec's folder, in this project
    assert deployment_folder(spec).parent.parent == elsewhere / ".keel"  # the same rule
    assert model_card_path(spec, 3) == elsewhere / "reports" / "credit_risk" / "v3" / "model_card.md"
    assert reports_folder(_spec("governance.documentation_folder=out/docs")) == elsewhere / "out" / "docs"
    absolute = tmp_path / "shared reports"
    assert reports_folder(_spec(f"governance.documentation_folder={absolute}")) == absolute


def test_model_cards_and_drift_reports_are_written_whole_under_that_folder(tmp_path, monkeypatch):
    from keel.lifecycle.evaluation import write_model_card
    from keel.lifecycle.monitoring import write_report

    monkeypatch.chdir(tmp_path)
    spec = _spec()
    kept, latest = write_model_card(spec, 2, "evaluation_pipeline-run-1", "# first card", "<p>first</p>")
    assert latest == tmp_path / "reports" / "credit_risk" / "v2" / "model_card.md"
    assert kept == latest.parent / "evaluations" / "evaluation_pipeline-run-1" / "model_card.md"
    write_model_card(spec, 2, "evaluation_pipeline-run-2", "# second card", "<p>second</p>")
    assert latest.read_text() == "# second card" and latest.with_suffix(".html").read_text() == "<p>second</p>"
    assert kept.read_text() == "# first card"  # an earlier run's card is kept as it was

    report = write_report(spec, "monitoring_pipeline-run-1", "<html>drift</html>")
    assert report == tmp_path / "reports" / "credit_risk" / "monitoring" / "monitoring_pipeline-run-1.html"
    assert report.read_text() == "<html>drift</html>"
    written = [p for p in Path(tmp_path / "reports").rglob("*") if p.is_file()]
    assert not [p for p in written if p.name.startswith(".")]  # no temporary file left behind
    assert len(written) == 7

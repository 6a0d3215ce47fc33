"""The evaluation pipeline on a real, isolated ZenML store: records, stages, champion, model card."""

import pytest

from keel.spec import load_spec
from tests.conftest import ROOT, new_zenml_store
from tests.support.forked_commands import run_command
from tests.support.training_runs import train_in_process

pytestmark = pytest.mark.integration

FAST = ["data.source.rows=6000", "training.candidate.trials=2", "training.candidate.params.n_estimators=60",
        "evaluation.latency.single_row_calls=20", "evaluation.explainability.sample_size=100",
        "evaluation.comparison.bootstrap_samples=200", "problem.name=eval_model",
        # 6,000 rows leave a 1,200-row test split: too few for a 0.05 calibration bar.
        "evaluation.gates[expected_calibration_error].max=0.1",
        # ... and a loaded CI machine must not decide them through the latency bar.
        "evaluation.gates[p95_latency_ms].max=1000", "evaluation.gates[p95_latency_ratio].max=1000"]


def _spec(*extra):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [*FAST, *extra])


def _evaluate(spec, version):
    from keel.lifecycle.pipeline_runs import run_pipeline
    from pipelines.evaluation import evaluation_pipeline

    outcome = run_pipeline(evaluation_pipeline, spec=spec, model_version=version)
    assert outcome.error is None, outcome.error
    return outcome.run


def test_evaluate_records_the_decision_promotes_and_writes_a_card(tmp_path):
    from zenml.client import Client

    spec = _spec()
    first = train_in_process(spec)
    run = _evaluate(spec, first)
    decision = run.steps["gates_step"].outputs["promotion_decision"][0].load()
    assert decision["passed"], decision["failed"]
    version = Client().get_model_version("eval_model", first)
    assert str(version.stage) in ("staging", "ModelStages.STAGING")
    recorded = version.run_metadata["evaluation"]
    assert recorded["decision"] == "promote to staging"
    assert [g["gate"] for g in recorded["gates"]] == [g["gate"] for g in decision["gates"]]

    card = run.steps["model_card_step"].outputs["model_card_markdown"][0].load()
    assert version.run_metadata["data_fingerprint"] in card
    assert "## Gates and decision" in card and "roc_auc >= 0.75" in card
    html = str(run.steps["model_card_step"].outputs["model_card_html"][0].load())
    assert "<script" not in html and "Gates and decision" in html

    # Evidence: every report artifact is linked to the model version.
    linked = {a.name for a in Client().list_artifact_versions(model_version_id=version.id, size=200).items}
    assert {"fairness_report_html", "model_card_html", "promotion_decision"} <= linked

    # A second version is compared with the first, now the staging champion, on the same rows.
    second = train_in_process(_spec("training.seed=1"))
    run = _evaluate(spec, second)
    comparison = run.steps["champion_challenger_step"].outputs["champion_comparison"][0].load()
    assert comparison["champion"] == f"v{first} (staging)"
    assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
    decision = run.steps["gates_step"].outputs["promotion_decision"][0].load()
    assert any(g["metric"] == "champion_challenger" for g in decision["gates"])


def test_evaluate_cli_exit_codes_and_card_file(tmp_path):
    import os
    import sys

    env = {**os.environ, "ZENML_CONFIG_PATH": new_zenml_store(tmp_path / "zenml")}

    def cli(*args):
        return run_command([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path, env=env, timeout=600)

    sets = [item for override in FAST for item in ("--set", override)]
    missing = cli("evaluate", *sets)
    assert missing.returncode == 1 and "train one first" in missing.stderr
    assert cli("train", *sets).returncode == 0
    # An impossible gate: blocking -> exit 3 and the failed gate named.
    strict = cli("evaluate", *sets, "--set", "evaluation.gates[roc_auc].min=0.99")
    assert strict.returncode == 3, strict.stdout[-2000:] + strict.stderr[-2000:]
    assert "failed gates:   roc_auc >= 0.99" in strict.stdout
    card = tmp_path / "reports" / "eval_model" / "v1" / "model_card.md"
    assert card.is_file() and "reject" in card.read_text()
    lenient = cli("evaluate", *sets, "--set", "evaluation.gates[roc_auc].min=0.99", "--set", "evaluation.blocking=false")
    assert lenient.returncode == 0

"""An evaluation that did not complete never promotes: each evaluation step fails in turn, on data keel
has never seen (scikit-learn's bundled breast-cancer table, a text target), on a real ZenML store."""

import functools
import importlib

import pytest
import yaml

from keel.spec import load_spec

pytestmark = pytest.mark.integration

# Every step of the evaluation pipeline, by the module that defines it.
EVALUATION_STEPS = {
    "begin_evaluation_step": "steps.evaluation.begin",
    "decision_threshold_step": "steps.evaluation.decision_threshold",
    "performance_step": "steps.evaluation.performance",
    "fairness_step": "steps.evaluation.fairness",
    "calibration_step": "steps.evaluation.calibration",
    "robustness_step": "steps.evaluation.robustness",
    "explainability_step": "steps.evaluation.explainability",
    "latency_step": "steps.evaluation.latency",
    "champion_challenger_step": "steps.evaluation.champion_challenger",
    "business_step": "steps.evaluation.business",
    "gates_step": "steps.evaluation.gates",
    "model_card_step": "steps.evaluation.model_card",
    "link_evidence_step": "steps.evaluation.link_evidence",
    "reference_profiles_step": "steps.monitoring.reference_profiles",
    "link_references_step": "steps.monitoring.link_references",
    "record_decision_step": "steps.evaluation.record_decision",
}
FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "mean_concavity", "worst_area", "worst_symmetry"]


@pytest.fixture(scope="module")
def cancer_spec(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("cancer")
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame[[*FEATURES, "diagnosis"]].to_csv(folder / "cancer.csv", index=False)
    spec = {
        "problem": {"name": "cancer_fails_closed", "objective": "flag malignant tumours for review",
                    "business_metric": "missed malignancies", "success_criteria": [{"metric": "roc_auc", "min": 0.8}]},
        "data": {"source": {"kind": "csv", "path": str(folder / "cancer.csv")},
                 "target": {"column": "diagnosis", "positive": "malignant", "negative": "benign",
                            "positive_label": "malignant tumour"},
                 "features": {name: {"type": "numeric", "min": 0} for name in FEATURES}},
        "training": {"candidate": {"params": {"n_estimators": 30}, "trials": 1}},
        "evaluation": {"gates": [{"metric": "roc_auc", "min": 0.8}],
                       "value_matrix": {"true_positive": 0, "false_positive": -1, "true_negative": 0,
                                        "false_negative": -10, "currency": "points"},
                       # One round of latency calls: no latency gate here, and the step runs in all 20 runs.
                       "performance": {"interval_samples": 50}, "latency": {"single_row_calls": 20, "max_rounds": 1},
                       "explainability": {"sample_size": 50, "local_examples": 1},
                       "comparison": {"bootstrap_samples": 100}},
    }
    path = folder / "cancer.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _train(spec) -> int:
    from keel.lifecycle.training import train_version

    trained = train_version(spec)
    assert trained.error is None, trained.error
    return trained.version


def _stage(name: str, version: int):
    from zenml.client import Client

    stage = Client().get_model_version(name, version).stage
    return getattr(stage, "value", stage)


def _latest_evaluated(name: str, version: int) -> dict:
    from keel.governance.audit import audit_store, read_records

    return [r for r in read_records(audit_store(name)) if r["event"] == "evaluated" and r["version"] == version][-1]


def _failing(monkeypatch, step_name: str):
    """Make one step raise when it runs (and not be served from cache)."""
    import pipelines.evaluation

    step = getattr(importlib.import_module(EVALUATION_STEPS[step_name]), step_name)

    @functools.wraps(step.entrypoint)
    def fail(*args, **kwargs):
        raise RuntimeError(f"injected failure in {step_name}")

    monkeypatch.setattr(step, "entrypoint", fail)
    monkeypatch.setattr(pipelines.evaluation, "evaluation_pipeline",
                        pipelines.evaluation.evaluation_pipeline.with_options(
                            steps={step_name: {"enable_cache": False}}))


def test_each_failed_step_leaves_the_version_incomplete_unstaged_and_undeployable(cancer_spec, monkeypatch, tmp_path):
    from keel.cli.evaluate import EVALUATION_INCOMPLETE, GATES_FAILED, evaluate
    from keel.deployment.deploy import NotDeployable, check_deployable
    from keel.registry import evaluation_outcome

    monkeypatch.chdir(tmp_path)  # model cards go to ./reports
    spec = load_spec(cancer_spec)
    name = spec.problem.name
    version = _train(spec)
    assert evaluate(spec, version) == 0
    assert _stage(name, version) == "staging"
    check_deployable(version, evaluation_outcome(name, version))

    for step_name in EVALUATION_STEPS:
        with monkeypatch.context() as patch:
            _failing(patch, step_name)
            code = evaluate(spec, version)
        assert code == EVALUATION_INCOMPLETE, step_name
        evaluation = evaluation_outcome(name, version)
        assert evaluation["decision"] == "incomplete" and evaluation["failed_step"] == step_name, evaluation
        assert evaluation["status"] == "failed" and not evaluation["deployable"]
        assert _stage(name, version) not in ("staging", "production"), step_name
        with pytest.raises(NotDeployable, match="not complete"):
            check_deployable(version, evaluation)
        record = _latest_evaluated(name, version)["details"]
        assert record["failed_step"] == step_name and f"injected failure in {step_name}" in record["missing"][0]

    # A complete evaluation stages it again; a later reject of the staged version takes it out.
    assert evaluate(spec, version) == 0 and _stage(name, version) == "staging"
    strict = load_spec(cancer_spec, ["evaluation.gates[roc_auc].min=0.999"])
    assert evaluate(strict, version) == GATES_FAILED
    assert _stage(name, version) is None or _stage(name, version) == "none"
    with pytest.raises(NotDeployable, match="failed its gates"):
        check_deployable(version, evaluation_outcome(name, version))
    # The same failing gate under blocking: false is advisory: recorded, shown and deployable.
    # ... and judging groups on one row fewer than before is named as loosened too.
    fewer = spec.data.min_group_size - 1
    advisory = load_spec(cancer_spec, ["evaluation.gates[roc_auc].min=0.999", "evaluation.blocking=false",
                                       f"data.min_group_size={fewer}"])
    assert evaluate(advisory, version) == 0
    evaluation = evaluation_outcome(name, version)
    assert evaluation["advisory"] and evaluation["deployable"]
    # The failed gate, with its interval named when that interval crosses the bound (helper-47).
    assert len(evaluation["failed"]) == 1 and evaluation["failed"][0].startswith("roc_auc >= 0.999")
    assert evaluation["evidence_minimums"]["data.min_group_size"] == fewer
    assert (f"LOOSENED: data.min_group_size {spec.data.min_group_size} -> {fewer} (groups and test splits judged on "
            "less evidence)") in evaluation["gate_changes"]
    assert _stage(name, version) == "staging"
    check_deployable(version, evaluation)
    # Loosening the gates after a reject is named in the record and the kept cards (one per run).
    assert "LOOSENED: gates made advisory (evaluation.blocking: false)" in evaluation["gate_changes"]
    cards = sorted((tmp_path / "reports" / name / f"v{version}" / "evaluations").glob("*/model_card.md"))
    assert len(cards) == 4  # the complete runs: first pass, second pass, reject, advisory
    latest = (tmp_path / "reports" / name / f"v{version}" / "model_card.md").read_text()
    assert "LOOSENED" in latest and "Gate history" in latest

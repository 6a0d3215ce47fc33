"""`run.py mitigate` end to end on a real ZenML store, on data keel has never seen (scikit-learn's
bundled breast-cancer table, a text target, an invented `clinic` attribute with a tiny group): the
mitigated model becomes its own version with lineage, goes through `evaluate` unchanged, is
documented with its before/after table, and is served with the attribute it decides with."""

import re
from pathlib import Path

import numpy as np

import pytest
import yaml

from keel.spec import load_spec, spec_hash
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "mean_concavity", "worst_area", "worst_symmetry"]


@pytest.fixture(scope="module")
def cancer_spec(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("clinics")
    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    rng = np.random.default_rng(5)
    frame["clinic"] = rng.choice(["east", "west"], len(frame))
    # A mobile unit saw 12 patients, all benign: too small (and one-sided) for the small-group rule.
    mobile = frame.index[frame["diagnosis"] == "benign"][:12]
    frame.loc[mobile, "clinic"] = "mobile"
    frame[[*FEATURES, "clinic", "diagnosis"]].to_csv(folder / "clinics.csv", index=False)
    spec = {
        "problem": {"name": "clinic_triage", "objective": "flag tumours for specialist review",
                    "business_metric": "missed malignancies", "success_criteria": [{"metric": "roc_auc", "min": 0.8}]},
        "data": {"source": {"kind": "csv", "path": str(folder / "clinics.csv")},
                 "target": {"column": "diagnosis", "positive": "malignant", "negative": "benign",
                            "positive_label": "malignant tumour", "favourable": "positive"},
                 "features": {**{name: {"type": "numeric", "min": 0} for name in FEATURES},
                              "clinic": {"type": "categorical", "categories": ["east", "west", "mobile"]}},
                 "sensitive_attributes": {"clinic": {"categories": ["east", "west", "mobile"]}},
                 "min_group_size": 20, "min_group_outcomes": 3},
        "training": {"candidate": {"params": {"n_estimators": 30}, "trials": 1}},
        "evaluation": {"gates": [{"metric": "roc_auc", "min": 0.8},
                                 {"metric": "demographic_parity_ratio", "attribute": "clinic", "min": 0.5}],
                       "comparison": {"bootstrap_samples": 100, "margin": 0.2},
                       "value_matrix": {"true_positive": 0, "false_positive": -1, "true_negative": 0,
                                        "false_negative": -10, "currency": "points"},
                       # One round of latency calls (no latency gate here): the interval is not under test.
                       "performance": {"interval_samples": 50}, "latency": {"single_row_calls": 20, "max_rounds": 1},
                       "explainability": {"sample_size": 50, "local_examples": 1},
                       "mitigation": {"method": "threshold_optimizer", "constraint": "demographic_parity",
                                      "attribute_at_decision_time": True}},
        "deployment": {"strategy": "all-at-once", "hold_seconds": 0, "probe_requests": 40,
                       "approval": {"auto_approve": True}, "port": free_port(),
                       "folder": str(folder / "deployments"), "allow_folder_outside_project": True,
                       "health": {"min_requests": 20}},
        "governance": {"documentation_folder": str(folder / "docs")},
    }
    path = folder / "clinics.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _train(spec) -> int:
    from keel.lifecycle.training import train_version

    trained = train_version(spec)
    assert trained.error is None, trained.error
    return trained.version


def _linked_ids(name: str, version: int) -> dict:
    from keel.registry import version_artifacts

    return {k: a.id for k, a in version_artifacts(name, version, ["model", "train", "validation", "test"]).items()}


def test_a_mitigated_model_is_its_own_version_evaluated_documented_and_served(cancer_spec, tmp_path, monkeypatch, capsys):
    from keel.cli.evaluate import GATES_FAILED, evaluate
    from keel.cli.mitigate import mitigate
    from keel.cli.technical_docs import write_docs
    from keel.deployment.deploy import check_deployable
    from keel.evaluation.mitigation import GroupAdjustedModel
    from keel.registry import evaluation_outcome, get_model_version_metadata, load_version_model

    monkeypatch.chdir(tmp_path)  # nothing of this test lands in the working directory
    spec = load_spec(cancer_spec)
    name = spec.problem.name
    unmitigated = _train(spec)
    assert evaluate(spec, unmitigated) in (0, GATES_FAILED)

    # mitigate: a new version, with lineage, on the same splits, whose model decides with `clinic`.
    assert mitigate(spec, unmitigated) == 0
    printed = capsys.readouterr().out
    assert re.search(r"left out: +mobile \(\d+ rows \(< 20\)", printed), printed
    assert re.search(r"demographic_parity_ratio\[clinic\] +\S+ +\S+ +demographic_parity_ratio\[clinic\] >= 0.5", printed)
    version = unmitigated + 1
    metadata = get_model_version_metadata(name, version)
    assert metadata["mitigated_from"] == unmitigated
    facts = metadata["mitigation"]
    assert facts["method"] == "threshold_optimizer" and facts["attribute"] == "clinic"
    assert list(facts["groups_left_out"]) == ["mobile"] and facts["groups_fitted"] == ["east", "west"]
    assert {r["metric"] for r in facts["before_after"]} >= {"roc_auc", "demographic_parity_ratio[clinic]",
                                                            "expected_calibration_error", "p95_latency_ms"}
    assert metadata["model_family"].endswith("+ threshold_optimizer") and metadata["spec_sha256"] == spec_hash(spec)
    assert metadata["data_fingerprint"] == get_model_version_metadata(name, unmitigated)["data_fingerprint"]
    before, after = _linked_ids(name, unmitigated), _linked_ids(name, version)
    assert all(before[k] == after[k] for k in ("train", "validation", "test"))
    assert before["model"] != after["model"]
    model = load_version_model(name, version)
    assert isinstance(model, GroupAdjustedModel) and model.decision_attributes_ == ["clinic"]

    # evaluate runs on it unchanged: complete, judged by the same gates, its card shows the table.
    code = evaluate(spec, version)
    assert code in (0, GATES_FAILED)
    evaluation = evaluation_outcome(name, version)
    assert evaluation["complete"] and evaluation["decision"] in ("promote to staging", "reject")
    card = (Path(spec.governance.documentation_folder) / name / f"v{version}" / "model_card.md").read_text()
    assert "## Mitigation (this version)" in card and f"v{unmitigated} mitigated by threshold_optimizer" in card
    row = {r["metric"]: r for r in facts["before_after"]}["roc_auc"]
    assert f"| roc_auc | {row['before']:.4g} -> {row['after']:.4g}" in card

    # The technical documentation (Annex IV) carries the same table, from the version's metadata.
    assert write_docs(spec, version) == 0
    docs = (tmp_path / spec.governance.documentation_folder / name / f"v{version}" / "technical_documentation.md")
    assert "4a. Fairness mitigation of this version" in docs.read_text()
    assert f"| roc_auc | {row['before']:.4g} -> {row['after']:.4g}" in docs.read_text()

    # A mitigated version is not mitigated again; no method is a spec-level refusal.
    assert mitigate(spec, version) == 1
    assert f"v{version} is itself mitigated (from v{unmitigated})" in capsys.readouterr().err
    assert mitigate(load_spec(cancer_spec, ["evaluation.mitigation.method=none"]), unmitigated) == 2

    if code != 0:
        pytest.skip(f"v{version} failed its gates on this data; nothing to deploy")
    check_deployable(version, evaluation)
    _deploy_and_score(spec, version)


def _deploy_and_score(spec, version):
    """deploy: the service accepts `clinic` for the mitigated version and logs it."""
    from keel.cli.deploy import deploy
    from keel.deployment.deploy import deployment_folder, prediction_log_url
    from keel.deployment.server import post_json, service_url, stop_service
    from keel.serving.prediction_log import PredictionLog

    try:
        assert deploy(spec, version, None) == 0
        url = service_url(spec.deployment.host, spec.deployment.port)
        record = {name: 14.0 if "radius" in name else 0.1 for name in FEATURES}
        record.update(mean_texture=20.0, worst_area=900.0, clinic="west", entity_id="patient-7")
        status, answer = post_json(f"{url}/predict", record)
        assert status == 200, answer
        assert answer["predictions"][0]["model_version"] == version
        logged = [r for r in PredictionLog(prediction_log_url(spec)).read() if r["entity_id"] == "patient-7"]
        assert logged and logged[0]["inputs"]["clinic"] == "west"
        status, answer = post_json(f"{url}/predict", {**record, "clinic": "north"})
        assert status == 422, answer
        # A benign-looking tumour is decided 0, the unfavourable side here (favourable: positive): a
        # threshold_optimizer version gives its base model's principal reasons, never the attribute.
        benign = {"mean_radius": 10.0, "mean_texture": 15.0, "mean_smoothness": 0.09, "mean_concavity": 0.02,
                  "worst_area": 400.0, "worst_symmetry": 0.25, "clinic": "east", "entity_id": "patient-8"}
        status, answer = post_json(f"{url}/predict", benign)
        assert status == 200 and answer["predictions"][0]["decision"] == 0, answer
        reasons = answer["predictions"][0]["reasons"]
        assert reasons and all(r["feature"] in FEATURES and r["feature"] != "clinic" for r in reasons), answer
    finally:
        stop_service(deployment_folder(spec))


def test_exponentiated_gradient_version_needs_no_attribute_and_evaluates(cancer_spec, tmp_path, monkeypatch):
    from keel.cli.evaluate import GATES_FAILED, evaluate
    from keel.cli.mitigate import mitigate
    from keel.registry import evaluation_outcome, get_model_version_metadata, load_version_model, resolve_version

    monkeypatch.chdir(tmp_path)
    spec = load_spec(cancer_spec, ["evaluation.mitigation.method=exponentiated_gradient",
                                   "evaluation.mitigation.attribute_at_decision_time=false"])
    unmitigated = _train(spec)
    assert mitigate(spec, unmitigated) == 0
    version = resolve_version(spec.problem.name, None)
    assert get_model_version_metadata(spec.problem.name, version)["mitigated_from"] == unmitigated
    model = load_version_model(spec.problem.name, version)
    assert "clinic" not in list(model.feature_names_in_)  # decides without the attribute
    assert evaluate(spec, version) in (0, GATES_FAILED)
    assert evaluation_outcome(spec.problem.name, version)["complete"]

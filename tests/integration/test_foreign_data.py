"""Data keel has never seen, through the whole lifecycle from the spec alone: validate -> train ->
evaluate -> deploy -> traffic through the real service -> monitor with delayed labels. Each case of
tests/data/ (made by tests/data/make_cases.py) plus scikit-learn's bundled breast-cancer table; the
metrics and fairness figures keel reports are checked against scikit-learn and fairlearn here."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

CASES = sorted(p.name for p in (ROOT / "tests" / "data").iterdir() if (p / "spec.yaml").is_file())


def _breast_cancer_case(folder: Path) -> Path:
    """scikit-learn's bundled breast-cancer table as a user would export it: spaces in the column names
    (`mean radius`) and a text target."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame.insert(0, "case", range(len(frame)))
    frame.to_csv(folder / "data.csv", index=False)
    features = [c for c in frame.columns if c not in ("case", "diagnosis")]
    spec = yaml.safe_load((ROOT / "tests" / "data" / "wide_table" / "spec.yaml").read_text())
    spec["problem"].update(name="breast_cancer", objective="Flag tumours for a pathologist's review.")
    spec["data"] = {"source": {"kind": "csv", "path": "data.csv"}, "id_column": "case",
                    "target": {"column": "diagnosis", "positive": "malignant", "negative": "benign",
                               "positive_label": "malignant"},
                    "features": {name: {"type": "numeric", "min": 0} for name in features}}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "spec.yaml"


def _case(name: str, tmp_path: Path) -> tuple:
    """(spec file, --set overrides placing everything of this test in tmp_path)."""
    if name == "breast_cancer":
        spec_file = _breast_cancer_case(tmp_path)
        data = tmp_path / "data.csv"
    else:
        spec_file, data = ROOT / "tests" / "data" / name / "spec.yaml", ROOT / "tests" / "data" / name / "data.csv"
    # One round of latency calls: no case gates latency (the measurement has its own tests).
    settings = [f"data.source.path={data}", f"deployment.port={free_port()}", "evaluation.latency.max_rounds=1",
                f"deployment.folder={tmp_path / 'deployments'}", "deployment.allow_folder_outside_project=true",
                f"monitoring.labels.source={{kind: csv, path: '{tmp_path / 'labels.csv'}'}}"]
    return spec_file, settings


def _evaluation_run(name: str, version: int):
    from zenml.client import Client

    from keel.registry import evaluation_outcome

    return Client().get_pipeline_run(evaluation_outcome(name, version)["run_id"]).steps


def _check_metrics_and_fairness(spec, steps) -> None:
    """keel's numbers against scikit-learn's and fairlearn's, computed here from the same test split."""
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate
    from sklearn.metrics import roc_auc_score

    from keel.data.groups import sensitive_groups
    from keel.training.fit import predict_scores

    test = steps["performance_step"].inputs["test"][0].load()
    scoring = steps["decision_threshold_step"].outputs["scoring_model"][0].load()
    threshold = steps["decision_threshold_step"].outputs["decision_threshold"][0].load()["threshold"]
    y = test[spec.data.target.column].to_numpy()
    assert set(np.unique(y)) == {0, 1}  # one encoding of the target, whatever the file spelt
    scores = predict_scores(scoring, test)
    performance = steps["performance_step"].outputs["performance_report"][0].load()
    assert performance["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-4)
    if not spec.data.sensitive_attributes:
        return
    fairness = steps["fairness_step"].outputs["fairness_report"][0].load()
    assert spec.data.target.favourable_decision() in fairness["favourable_decision"]
    positive_favourable = spec.data.target.favourable == "positive"
    favoured = (scores >= threshold) if positive_favourable else (scores < threshold)
    outcome = y if positive_favourable else 1 - y
    groups = sensitive_groups(test, spec.data)
    for attribute in spec.data.sensitive_attributes:
        frame = MetricFrame(metrics={"rate": selection_rate, "tpr": true_positive_rate}, y_true=outcome,
                            y_pred=favoured, sensitive_features=groups[attribute])
        reported = {g["group"]: g for g in fairness["attributes"][attribute]["groups"]}
        for group, row in frame.by_group.iterrows():
            assert reported[group]["selection_rate"] == pytest.approx(row["rate"], abs=1e-4), (attribute, group)
            if not np.isnan(row["tpr"]):
                assert reported[group]["tpr"] == pytest.approx(row["tpr"], abs=1e-4), (attribute, group)
        judged = [row["rate"] for group, row in frame.by_group.iterrows() if reported[group]["judgeable"]]
        if len(judged) >= 2:
            assert fairness["attributes"][attribute]["demographic_parity_ratio"] == pytest.approx(
                min(judged) / max(judged), abs=1e-4)


def _send_test_rows(spec, steps, url: str) -> tuple:
    """The test split's rows through POST /predict (missing values as JSON null); their labels as the
    file spelt them, known a minute later."""
    from keel.deployment.server import post_json

    test = steps["performance_step"].inputs["test"][0].load()
    features = spec.data.model_features
    records = test[features].astype(object).where(test[features].notna(), None).to_dict(orient="records")
    ids = [f"case-{i}" for i in range(len(records))]
    for record, entity in zip(records, ids):
        record["entity_id"] = entity
    for start in range(0, len(records), 50):
        status, body = post_json(f"{url}/predict", {"records": records[start:start + 50]})
        assert status == 200, body
    target = spec.data.target
    labels = np.where(test[target.column].to_numpy() == 1, str(target.positive), str(target.negative))
    return ids, labels


@pytest.mark.parametrize("case", [*CASES, "breast_cancer"])
def test_a_foreign_table_runs_the_whole_lifecycle_from_its_spec(case, tmp_path, capsys):
    import json

    from keel.cli.main import main
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.server import service_url, stop_service
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.registry import production_version, resolve_version
    from keel.spec import load_spec

    spec_file, settings = _case(case, tmp_path)
    args = ["--config", str(spec_file), *[arg for setting in settings for arg in ("--set", setting)]]
    spec = load_spec(spec_file, settings)
    name = spec.problem.name
    assert main(["validate", *args]) == 0
    assert main(["train", *args]) == 0, capsys.readouterr().err[-3000:]
    version = resolve_version(name, None)
    try:
        code = main(["evaluate", *args])
        steps = _evaluation_run(name, version)
        _check_metrics_and_fairness(spec, steps)
        fairness = steps["fairness_step"].outputs["fairness_report"][0].load()
        if case == "hiring_biased":
            # The model learnt the historical bias: parity of the favourable decision (hired) fails.
            assert code == 3, capsys.readouterr().out[-3000:]
            assert fairness["attributes"]["gender"]["demographic_parity_ratio"] < 0.8
            assert main(["deploy", *args]) == 1 and "failed its gates" in capsys.readouterr().err
            args += ["--set", "evaluation.blocking=false"]  # the organisation accepts it as advisory ...
            assert main(["evaluate", *args]) == 0  # ... recorded, shown, and deployable
            assert "advisory" in capsys.readouterr().out
        else:
            assert code == 0, capsys.readouterr().out[-3000:]
        if case == "tiny_group":
            tiny = [g for g in fairness["attributes"]["group"]["groups"] if g["group"] == "tiny"]
            assert all(not g["judgeable"] and g["reason"] for g in tiny)
        assert main(["deploy", *args]) == 0, capsys.readouterr().err[-3000:]
        assert production_version(name) == version
        ids, labels = _send_test_rows(spec, steps, service_url("127.0.0.1", spec.deployment.port))
        pd.DataFrame({"entity_id": ids, "label": labels, "time": now_utc().isoformat()}).to_csv(
            tmp_path / "labels.csv", index=False)
        assert main(["monitor", "--no-retrain", *args]) == 0, capsys.readouterr().err[-3000:]
        status = json.loads((monitoring_folder(spec) / "status.json").read_text())
        assert status["window"]["rows"] == len(ids) and status["labels"]["matched"] == len(ids)
        assert status["label"]["judged"] and status["performance"]["judged"]
        assert status["performance"]["reference"] == pytest.approx(
            steps["performance_step"].outputs["performance_report"][0].load()["metrics"]["roc_auc"], abs=1e-6)
    finally:
        stop_service(deployment_folder(spec))

"""Issue 12 through the real pipelines: a CSV keel has never seen, with the target as text (">50K" /
"<=50K") and missing values in integer, numeric and categorical features (plus a category column of
one category), is trained, evaluated (reference profiles included) and monitored from a prediction
log and a labels file that spell the classes as text. The reference must hold the true label rate
and ROC AUC, and monitoring must judge label and performance drift against them."""

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.integration

POSITIVE, NEGATIVE = ">50K", "<=50K"


def _applicants(rows: int, seed: int, first_id: int = 0) -> pd.DataFrame:
    """Adult-like rows: about a quarter earn >50K, more with age, hours and education."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    hours = rng.normal(40, 10, rows).clip(1, 99)
    education = rng.choice(["hs", "college", "masters", "phd"], rows, p=[0.4, 0.35, 0.2, 0.05]).astype(object)
    workclass = rng.choice(["private", "public", "self"], rows).astype(object)
    signal = (0.04 * (age - 40) + 0.05 * (hours - 40) + rng.normal(0, 1, rows)
              + np.select([education == "college", education == "masters", education == "phd"], [0.8, 1.5, 2.0], 0))
    income = np.where(signal > np.quantile(signal, 0.76), POSITIVE, NEGATIVE)
    hours[rng.random(rows) < 0.1] = np.nan
    age[rng.random(rows) < 0.05] = np.nan
    education[rng.random(rows) < 0.15] = None
    workclass[rng.random(rows) < 0.2] = None
    return pd.DataFrame({"id": np.arange(first_id, first_id + rows), "age": age, "hours": hours,
                         "education": education, "workclass": workclass, "country": "us",
                         "sex": rng.choice(["female", "male"], rows), "income": income})


def _spec_file(tmp_path) -> Path:
    data = tmp_path / "adult_like.csv"
    _applicants(3000, seed=0).to_csv(data, index=False)
    spec = {
        "problem": {"name": "text_target_model", "objective": "Estimate whether income exceeds 50K.",
                    "intended_users": "tests", "business_metric": "none",
                    "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "data": {
            "source": {"kind": "csv", "path": str(data)},
            "id_column": "id",
            "target": {"column": "income", "positive": POSITIVE, "negative": NEGATIVE,
                       "positive_label": "high income", "favourable": "positive"},
            "features": {
                "age": {"type": "integer", "min": 17, "max": 100, "nullable": True},
                "hours": {"type": "numeric", "min": 0, "max": 100, "nullable": True},
                "education": {"type": "categorical", "categories": ["hs", "college", "masters", "phd"],
                              "nullable": True},
                "workclass": {"type": "categorical", "categories": ["private", "public", "self"], "nullable": True},
                "country": {"type": "categorical", "categories": ["us"]}},
            "sensitive_attributes": {"sex": {"categories": ["female", "male"]}},
            "min_group_size": 30},
        "split": {"strategy": "random", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 7},
        "training": {"primary_metric": "roc_auc", "seed": 7, "threads": 1,
                     "candidate": {"kind": "lightgbm", "params": {"n_estimators": 40}, "trials": 1}},
        "evaluation": {"latency": {"single_row_calls": 20, "max_rounds": 1}, "explainability": {"sample_size": 50},
                       "comparison": {"bootstrap_samples": 200}},
        "deployment": {"folder": str(tmp_path / "deployments"), "allow_folder_outside_project": True},
        "monitoring": {"labels": {"source": {"kind": "csv", "path": str(tmp_path / "labels.csv")}},
                       "drift": {"min_labelled_rows": 100},
                       "fairness": {"groups_from": "request", "min_parity_ratio": 0.5}},
    }
    path = tmp_path / "text_target.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_text_target_with_missing_values_is_trained_evaluated_and_monitored_against_the_true_reference(tmp_path):
    from sklearn.metrics import roc_auc_score

    from keel.cli.main import main
    from keel.deployment.deploy import deployment_folder, prediction_log_url
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.registry import load_version_model, promote_to_production, resolve_version, version_artifacts
    from keel.serving.prediction_log import PredictionLog
    from keel.spec import load_spec
    from keel.training.fit import predict_scores
    from pipelines.monitoring import REFERENCES

    path = _spec_file(tmp_path)
    spec = load_spec(path)
    name = spec.problem.name
    assert main(["train", "--config", str(path)]) == 0
    version = resolve_version(name, None)
    assert main(["evaluate", "--config", str(path), "--model-version", str(version)]) == 0
    linked = version_artifacts(name, version, [*REFERENCES, "train", "test"])
    reference = linked["reference_summary"].load()

    # The reference against the raw file: the true training label rate, the true test ROC AUC.
    raw = pd.read_csv(spec.data.source.path, dtype={"id": str}).set_index("id")  # keel reads ids as text
    model = load_version_model(name, version)
    train, test = linked["train"].load(), linked["test"].load()
    truth_train = (raw.loc[train["id"], "income"] == POSITIVE).to_numpy()
    truth_test = (raw.loc[test["id"], "income"] == POSITIVE).to_numpy()
    assert 0.2 < truth_train.mean() < 0.3
    assert reference["label_rows"] == len(train) and reference["label_rate"] == pytest.approx(truth_train.mean())
    assert reference["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(truth_test, predict_scores(model, test)),
                                                            abs=1e-6)

    # Production: the same world, served with missing values as JSON nulls, outcomes delivered as text.
    promote_to_production(name, version)
    production = _applicants(600, seed=5, first_id=10_000)
    features = spec.data.model_features
    served = production[features].astype(object).where(production[features].notna(), None)
    served["sex"] = production["sex"].where(production.index >= 40, None)  # sent beside the features, 40 rows without
    scores = predict_scores(model, production[features])
    # Half an hour ago, one row a second, all in the UTC day monitor judges (the newest prediction's):
    # between 00:20 and 00:30 UTC that start would put the first rows in the day before.
    start = now_utc() - timedelta(minutes=30)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    if start + timedelta(seconds=len(production)) >= midnight:
        start = midnight - timedelta(seconds=len(production) + 60)
    rows = [{"request_id": f"r{i}", "row": 0, "entity_id": f"applicant-{i}", "time": start + timedelta(seconds=i),
             "model_name": name, "model_version": version, "arm": "champion", "shadow": False, "inputs": record,
             "score": float(score), "decision": int(score >= reference["threshold"]), "latency_ms": 1.0}
            for i, (record, score) in enumerate(zip(served.to_dict(orient="records"), scores))]
    deployment_folder(spec).mkdir(parents=True)  # what a deployment would have made
    PredictionLog(prediction_log_url(spec)).append(rows)
    pd.DataFrame({"entity_id": [f"applicant-{i}" for i in range(len(production))], "label": production["income"],
                  "time": (start + timedelta(minutes=20)).isoformat()}).to_csv(tmp_path / "labels.csv", index=False)

    assert main(["monitor", "--no-retrain", "--config", str(path)]) == 0
    status = json.loads((monitoring_folder(spec) / "status.json").read_text())
    assert status["window"]["rows"] == 600 and status["labels"]["matched"] == 600
    label = status["label"]
    assert label["judged"] and label["rate"] == pytest.approx((production["income"] == POSITIVE).mean())
    assert label["reference_rate"] == pytest.approx(reference["label_rate"]) and not label["drifted"]
    performance = status["performance"]
    assert performance["judged"] and performance["reference"] == pytest.approx(reference["metrics"]["roc_auc"])
    assert performance["value"] == pytest.approx(roc_auc_score(production["income"] == POSITIVE, scores), abs=1e-6)
    assert not performance["drifted"]
    for feature in ("education", "workclass", "age", "hours"):
        assert status["features"]["features"][feature]["target_null_fraction"] > 0
    # Issue 19: fairness per group from the attributes sent with the requests, label coverage per decision.
    production_report = status["production"]
    sex = production_report["fairness"]["sex"]
    assert sex["rows_without_group"] == 40 and {g["group"] for g in sex["groups"] if g["judged"]} == {"female", "male"}
    assert production_report["verdict"] == "pass" and sex["parity_ratio"] >= 0.5
    coverage = production_report["label_coverage"]
    assert (coverage["favourable"], coverage["unfavourable"], coverage["selective"]) == (1.0, 1.0, False)

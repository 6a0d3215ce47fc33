"""Governance end to end on one small model: two versions trained from a CSV file, evaluated,
approved, deployed (a promotion, then a canary and a promotion), rolled back, one prediction served.
Then: the audit trail verifies and answers who served at each moment (checked against the
prediction log itself), lineage of the served prediction reaches the git commit, reproduce rebuilds
v1 bit for bit and refuses a changed data file, docs and explain draw on the records."""

import json
from pathlib import Path
from datetime import timedelta, timezone

import pandas as pd
import pytest

from keel.deployment.server import post_json, service_url, stop_service
from keel.provenance import collect_provenance
from keel.spec import load_spec, spec_hash
from keel.spec.data import FileSource
from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

MODEL = "governed_model"



@pytest.fixture
def spec(tmp_path):
    from keel.data.generator import generate_credit_applications

    base = load_spec(ROOT / "configs" / "credit_risk.yaml", [
        f"problem.name={MODEL}", "data.source.rows=3000", "training.candidate.trials=1",
        "training.candidate.params.n_estimators=30", "evaluation.latency.single_row_calls=20",
        "evaluation.explainability.sample_size=50", "evaluation.comparison.bootstrap_samples=200",
        "evaluation.comparison.margin=0.2", "evaluation.gates[demographic_parity_ratio].min=0.5",
        "evaluation.gates[equalized_odds_difference].max=0.5", "evaluation.gates[expected_calibration_error].max=0.2", "evaluation.gates[robustness_max_drop].max=0.5",
        "evaluation.gates[p95_latency_ms].max=1000",
        "evaluation.gates[p95_latency_ratio].max=1000", "evaluation.gates[value_uplift_vs_baseline].min=-1000000", "evaluation.robustness.max_rows=500",
        "deployment.strategy=canary", "deployment.canary_steps=[0.5, 1.0]", "deployment.hold_seconds=0",
        "deployment.probe_requests=120", "deployment.approval.auto_approve=false", "governance.high_stakes=true",
        f"governance.documentation_folder={tmp_path / 'reports'}",
        f"deployment.port={free_port()}", f"deployment.folder={tmp_path / 'deployments'}",
        "deployment.allow_folder_outside_project=true"])
    data_file = tmp_path / "applications.csv"
    generate_credit_applications(base.data.source).to_csv(data_file, index=False)
    return base.model_copy(update={"data": base.data.model_copy(update={"source": FileSource(kind="csv", path=data_file)}),
                                   "monitoring": base.monitoring.model_copy(update={"simulation": None})})


def _run(pipeline, **parameters):
    from keel.lifecycle.pipeline_runs import run_pipeline

    outcome = run_pipeline(pipeline, **parameters)
    assert outcome.error is None, outcome.error
    return outcome


def _train_evaluate_approve(spec, seed):
    from keel.data.sources import source_stamp
    from keel.registry import record_approval
    from pipelines.evaluation import evaluation_pipeline
    from pipelines.training import training_pipeline

    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
    trained = _run(training_pipeline, spec=spec, spec_hash=spec_hash(spec), source_stamp=source_stamp(spec.data),
                   provenance=collect_provenance())
    version = trained.run.steps["register_model_step"].output.load()
    _run(evaluation_pipeline, spec=spec, model_version=version)
    record_approval(MODEL, version, by="risk-officer", reason=f"TICKET-{version}")
    return version


def _deploy(spec, version):
    from pipelines.deployment import deployment_pipeline

    evidence = _run(deployment_pipeline, spec=spec, model_version=version).run.steps["rollout_step"]
    return evidence.outputs["rollout_evidence"][0].load()


def test_audit_lineage_reproduce_docs_and_explain(spec, capsys):
    from keel.cli.deploy import rollback
    from keel.cli.explain import explain
    from keel.cli.lineage import lineage
    from keel.cli.reproduce import reproduce
    from keel.cli.technical_docs import write_docs
    from keel.deployment.deploy import deployment_folder, prediction_log_url
    from keel.governance.audit import audit_store, read_records, verify
    from keel.governance.data_versions import data_root, list_data_versions
    from keel.governance.timeline import effective_time, served_at
    from keel.registry import get_model_version_metadata, list_model_versions
    from keel.serving.prediction_log import PredictionLog

    try:
        first = _train_evaluate_approve(spec, seed=1)
        assert _deploy(spec, first)["outcome"] == "promoted"
        second = _train_evaluate_approve(spec, seed=2)
        assert _deploy(spec, second)["outcome"] == "promoted"
        assert rollback(spec) == 0
        record = json.loads(pd.read_csv(spec.data.source.path).head(1)[spec.data.model_features]
                            .to_json(orient="records"))[0]
        status, answer = post_json(f"{service_url('127.0.0.1', spec.deployment.port)}/predict",
                                   {**record, "entity_id": "customer-7"})
        assert status == 200 and answer["predictions"][0]["model_version"] == first
        request_id = answer["request_id"]
    finally:
        stop_service(deployment_folder(spec))

    # The audit trail: intact, complete against the registry, and every lifecycle event is in it.
    from keel.cli.audit_trail import verify as verify_command

    store = audit_store(MODEL)
    assert verify(store).ok
    assert verify_command(MODEL) == 0, capsys.readouterr().err
    records = read_records(store)
    events = [r["event"] for r in records]
    for event in ("data_validated", "training_run_registered", "evaluated", "stage_changed", "approved",
                  "deployment_step", "rollback", "deployment_outcome"):
        assert event in events, event
    # One validation record per training run, though the second run (same CSV) reuses the cached validation.
    training_runs = [r["run_id"] for r in records if r["event"] == "training_run_registered"]
    validations = [r for r in records if r["event"] == "data_validated"]
    assert len(training_runs) == 2 and sorted(r["run_id"] for r in validations) == sorted(training_runs)
    assert all(r["details"]["passed"] for r in validations)
    reused = [r for r in validations if "reused_from_run" in r["details"]]
    assert [r["details"]["reused_from_run"] for r in reused] == [training_runs[0]] and reused[0]["evidence"]
    approvals = [r for r in records if r["event"] == "approved"]
    assert [(r["version"], r["actor"]) for r in approvals] == [(first, "risk-officer"), (second, "risk-officer")]

    # who-served: before, during and after the first promotion, the canary, the second promotion and the rollback.
    routing = [r for r in records if r["details"].get("routing")]
    def split(at):
        found = served_at(records, at)
        return None if found is None else {a["version"]: a["weight"] for a in found["arms"]}
    tick = timedelta(microseconds=1)
    assert split(effective_time(routing[0]) - tick) is None
    canary_half = next(r for r in routing if r["event"] == "deployment_step" and len(r["details"]["routing"]["arms"]) == 2)
    assert split(effective_time(canary_half) - tick) == {first: 1.0}
    assert split(effective_time(canary_half) + tick) == {first: 0.5, second: 0.5}
    promoted = [r for r in routing if r["details"]["routing"]["strategy"] == "promoted"]
    assert split(effective_time(promoted[-1]) + tick) == {second: 1.0}
    manual = [r for r in routing if r["event"] == "rollback"][-1]
    assert split(effective_time(manual) - tick) == {second: 1.0} and split(effective_time(manual) + tick) == {first: 1.0}
    # ... and the prediction log agrees: every answer came from a version the trail says was routed then.
    logged = PredictionLog(prediction_log_url(spec)).read(include_shadow=False)
    assert len(logged) > 300
    for row in logged:
        at = row["time"] if row["time"].tzinfo else row["time"].replace(tzinfo=timezone.utc)
        assert row["model_version"] in split(at), (row["request_id"], row["time"], split(at))

    # Lineage from the served prediction reaches the git commit.
    capsys.readouterr()
    assert lineage(spec, request_id, None) == 0
    printed = capsys.readouterr().out
    v1 = get_model_version_metadata(MODEL, first)
    assert v1["git_commit"] in printed and v1["data_fingerprint"] in printed and v1["spec_sha256"] in printed
    assert f"{MODEL} v{first} on arm champion" in printed and "consistent" in printed
    assert "(stored, content verified)" in printed  # the stored rows re-hashed to the recorded fingerprint
    # The evaluation that held when it answered, from the trail (v1 was not evaluated again after it).
    then = next(line for line in printed.splitlines() if "evaluation then (audit trail)" in line)
    assert v1["evaluation"]["run_name"] in then and v1["evaluation"]["decision"] in then and "since" not in then

    # Data versions: one content-addressed file, both versions trained on it.
    versions = list_data_versions(data_root(MODEL), list_model_versions(MODEL))
    assert [(v["fingerprint"], v["stored"], v["content"], v["model_versions"]) for v in versions] == [
        (v1["data_fingerprint"], True, "verified", [first, second])]

    # Explain the served prediction, by the version that answered it.
    assert explain(spec, request_id) == 0
    printed = capsys.readouterr().out
    assert f"recomputed by v{first}" in printed and "the same" in printed and "lineage:" in printed
    # Issue 19: a declined answer's principal reasons, as the service logged them, are shown.
    declined = any(r["decision"] == 1 for r in logged if r["request_id"] == request_id)
    assert ("principal reasons given with the answer:" in printed) == declined, printed

    # Technical documentation from the records.
    assert write_docs(spec, second) == 0
    text = (Path(spec.governance.documentation_folder) / MODEL / f"v{second}" / "technical_documentation.md").read_text()
    assert "risk-officer" in text and "TICKET-2" in text and "## 7. Post-market monitoring plan" in text
    assert "| roc_auc >= 0.75 |" in text and "| rollback |" in text and "Rollbacks of this version | at " in text

    # Reproduce v1: identical model hash; then a changed data file is refused, not trained on.
    capsys.readouterr()
    assert reproduce(spec, first) == 0
    assert f"identical model SHA-256 {v1['model_sha256']}" in capsys.readouterr().out
    frame = pd.read_csv(spec.data.source.path)
    frame.loc[0, "income"] = frame.loc[0, "income"] + 1
    frame.to_csv(spec.data.source.path, index=False)
    assert reproduce(spec, first) == 1
    captured = capsys.readouterr()
    assert "fingerprint mismatch" in captured.out and "not retraining on other data" in captured.out
    changed_id = frame.loc[0, spec.data.id_column]  # named from the version's stored data version
    assert (f"What differs from the stored training data: 1 row(s) not in the training data ({changed_id}); "
            f"1 row(s) of the training data no longer there ({changed_id})") in captured.out
    assert "was not retrained" in captured.err

    # Deleting the last record leaves an intact chain; the registry cross-check still finds it.
    last = store.names()[-1]
    (Path(store.location) / last).unlink()
    assert verify(store).ok and verify_command(MODEL) == 1
    assert "a later record is missing" in capsys.readouterr().err

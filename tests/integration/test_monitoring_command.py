"""`run.py monitor` on small data: a deployed version, drifted traffic through the real service,
delayed labels (some for unknown ids), the monitoring pipeline, cooldown, then a retraining that
runs train -> evaluate -> deploy."""

import json

import pytest

from keel.deployment.server import post_json, service_url, stop_service
from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration



def test_monitor_detects_drift_records_decisions_and_retrains(tmp_path, capsys):
    from keel.cli.main import main
    from keel.deployment.deploy import deployment_folder
    from keel.monitoring.monitor import monitoring_folder, now_utc
    from keel.monitoring.simulation import send_traffic, write_labels
    from keel.registry import production_version, version_artifacts
    from keel.spec import load_spec
    from pipelines.monitoring import REFERENCES

    labels = tmp_path / "labels.csv"
    settings = [
        "problem.name=monitor_model", "data.source.rows=3000", "training.candidate.trials=1",
        "training.candidate.params.n_estimators=40", "evaluation.latency.single_row_calls=20",
        "evaluation.explainability.sample_size=50", "evaluation.comparison.bootstrap_samples=200",
        "evaluation.comparison.margin=0.5", "evaluation.gates[roc_auc].min=0.5", "evaluation.gates[expected_calibration_error].max=0.2",
        "evaluation.gates[p95_latency_ms].max=1000",
        "evaluation.gates[p95_latency_ratio].max=1000", "evaluation.gates[value_uplift_vs_baseline].min=-1000000",
        "deployment.strategy=all-at-once", "deployment.hold_seconds=0", "deployment.probe_requests=40",
        f"deployment.port={free_port()}", f"deployment.folder={tmp_path / 'deployments'}",
        "deployment.allow_folder_outside_project=true",
        "monitoring.simulation.rows=800", "monitoring.simulation.covariate_shift=2.5",
        "monitoring.simulation.shifted_features=[income, savings_balance]", "monitoring.simulation.concept_shift=0.0",
        f"monitoring.labels.source={{kind: csv, path: {labels}}}", "monitoring.drift.min_labelled_rows=100",
    ]
    args = [arg for setting in settings for arg in ("--set", setting)]
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", settings)
    try:
        assert main(["monitor", *args]) == 1  # nothing deployed yet: a clear refusal
        assert "no production version" in capsys.readouterr().err
        assert main(["monitor", "--schedule", *args]) == 0  # the local orchestrator cannot schedule
        hint = capsys.readouterr().out
        assert "python run.py monitor" in hint and "*/5 * * * *" in hint  # the cron line instead
        for command in ("train", "evaluate", "deploy"):
            assert main([command, *args]) == 0
        version = production_version("monitor_model")
        references = version_artifacts("monitor_model", version, REFERENCES)
        assert references["reference_data_profile"].load().rows() == 1800  # the training split
        assert references["reference_summary"].load()["test_rows"] == 600
        assert references["reference_prediction_profile"].visualizations  # the materializer's HTML view

        frame, traffic = send_traffic(spec, service_url("127.0.0.1", spec.deployment.port), post_json)
        assert traffic["answered"] == 800
        # A record holding a region the spec never declared: refused (422), so no prediction is logged for it.
        record = {**json.loads(frame[spec.data.model_features].head(1).to_json(orient="records"))[0], "region": "islands"}
        status_code, _ = post_json(f"{service_url('127.0.0.1', spec.deployment.port)}/predict", record,
                                   headers={"X-Request-ID": "refused-islands"})
        assert status_code == 422
        write_labels(frame, "default", labels, now_utc())
        with labels.open("a") as handle:
            handle.write(f"applicant-ghost,1,{now_utc().isoformat()}\n")  # a late label nobody predicted for

        assert main(["monitor", "--no-retrain", *args]) == 0
        out = capsys.readouterr().out
        status = json.loads((monitoring_folder(spec) / "status.json").read_text())
        assert status["window"]["rows"] == 800  # probe traffic is not production traffic
        assert status["features"]["drifted"] == ["income", "savings_balance"]
        assert status["labels"]["matched"] == 800 and status["labels"]["unknown_ids"] == 1
        assert status["decision"]["retrain"] and "drift" in status["decision"]["fired"]
        assert "income, savings_balance" in out and "drift report:" in out
        refused = status["production"]["refusals"]  # ... yet monitoring sees it
        requests = 800 // spec.monitoring.simulation.batch_size  # the simulated traffic sends records in batches
        assert (refused["refused_requests"], refused["answered_requests"]) == (1, requests)
        assert refused["most_refused"][0]["field"] == "region" and refused["most_refused"][0]["found"] == "islands"
        assert f"refused:        1 request(s) for their records' content ({1 / (requests + 1):.1%} of {requests + 1})" in out
        skipped = json.loads((monitoring_folder(spec) / "decisions.jsonl").read_text().splitlines()[-1])
        assert skipped["kind"] == "retraining" and skipped["outcome"] == "skipped (--no-retrain)"

        # The first decision starts the cooldown: the same evidence no longer retrains.
        assert main(["monitor", "--no-retrain", *args]) == 0
        decisions = [json.loads(line) for line in (monitoring_folder(spec) / "decisions.jsonl").read_text().splitlines()]
        assert decisions[-1]["fired"] and not decisions[-1]["retrain"]
        assert decisions[-1]["suppressed_by"].startswith("cooldown")
        assert decisions[-1]["window"]["new_rows"] == 0  # the hours were not profiled twice

        # Without a cooldown the monitor retrains; on the same data and spec the model is the champion's own,
        # byte for byte: recorded, not evaluated against itself nor rolled out.
        assert main(["monitor", *args, "--set", "monitoring.retraining.cooldown_hours=0"]) == 0
        record = json.loads((monitoring_folder(spec) / "decisions.jsonl").read_text().splitlines()[-1])
        assert record["kind"] == "retraining" and record["champion"] == version
        assert record["new_version"] == version + 1 and record["outcome"].startswith(
            f"not rolled out (identical to the champion v{version}"), record["outcome"]
        assert production_version("monitor_model") == version
        # On newer data (the policy's data_overrides) it evaluates against the champion and rolls out.
        assert main(["monitor", *args, "--set", "monitoring.retraining.cooldown_hours=0",
                     "--set", "monitoring.retraining.data_overrides=[data.source.seed=8]"]) == 0
        record = json.loads((monitoring_folder(spec) / "decisions.jsonl").read_text().splitlines()[-1])
        assert record["kind"] == "retraining" and record["champion"] == version
        assert record["new_version"] == version + 2 and record["outcome"] == "rolled out"
        assert production_version("monitor_model") == version + 2
    finally:
        stop_service(deployment_folder(spec))

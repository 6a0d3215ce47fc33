"""Deployment through ZenML: approvals, promotion, the production stage, rollback, refusals."""


import pytest

from keel.deployment.server import post_json, service_url, stop_service
from keel.provenance import collect_provenance
from keel.spec import load_spec, spec_hash
from tests.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration



@pytest.fixture
def spec(tmp_path):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "problem.name=deploy_model", "data.source.rows=4000", "training.candidate.trials=1",
        "training.candidate.params.n_estimators=40", "evaluation.latency.single_row_calls=20",
        "evaluation.explainability.sample_size=50", "evaluation.comparison.bootstrap_samples=200",
        "evaluation.comparison.margin=0.1", "evaluation.gates[expected_calibration_error].max=0.1", "evaluation.gates[p95_latency_ms].max=1000",
        "evaluation.gates[p95_latency_ratio].max=1000",
        "evaluation.gates[value_uplift_vs_baseline].min=-1000000",
        "deployment.strategy=canary", "deployment.canary_steps=[0.5, 1.0]", "deployment.hold_seconds=0",
        "deployment.probe_requests=150", "deployment.approval.auto_approve=false",
        # Approvals are under test here, not latency: a busy CI machine must not roll a stage back for it.
        "deployment.health.max_p95_latency_ms=5000", "deployment.health.max_p95_latency_ratio=50",
        f"deployment.port={free_port()}", f"deployment.folder={tmp_path / 'deployments'}",
        "deployment.allow_folder_outside_project=true"])


def _run(pipeline, **parameters):
    from keel.lifecycle.pipeline_runs import run_pipeline

    return run_pipeline(pipeline, **parameters)


def _train_and_evaluate(spec, seed):
    from keel.data.sources import source_stamp
    from pipelines.evaluation import evaluation_pipeline
    from pipelines.training import training_pipeline

    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed})})
    trained = _run(training_pipeline, spec=spec, spec_hash=spec_hash(spec), source_stamp=source_stamp(spec.data),
                   provenance=collect_provenance())
    version = trained.run.steps["register_model_step"].output.load()
    assert _run(evaluation_pipeline, spec=spec, model_version=version).error is None
    return version


def _deploy(spec, version, strategy=None, actor=None):
    from pipelines.deployment import deployment_pipeline

    outcome = _run(deployment_pipeline, spec=spec, model_version=version, strategy=strategy, actor=actor)
    assert outcome.error is None, outcome.error
    evidence = outcome.run.steps["rollout_step"].outputs["rollout_evidence"][0].load()
    tag = outcome.run.steps["package_step"].outputs["bento_tag"][0].load()
    if evidence["serving"] is not None:  # something was deployed: its Bento and manifests exist
        import bentoml
        import yaml

        assert tag == f"keel-deploy-model:v{version}" and bentoml.get(tag).info.labels["keel-version"] == str(version)
        manifests = list(yaml.safe_load_all(outcome.run.steps["package_step"].outputs["kubernetes_manifests"][0].load()))
        assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
        # The Bento of v<N> holds and routes to v<N> alone, whatever the live folder serves.
        bundle = bentoml.get(tag).path_of("src/bundle")
        import json

        assert set(json.loads(open(f"{bundle}/deployment.json").read())["models"]) == {str(version)}
        assert [a["version"] for a in json.loads(open(f"{bundle}/routing.json").read())["arms"]] == [version]
    return evidence


def _served(spec) -> dict:
    from keel.data.generator import generate_credit_applications

    record = generate_credit_applications(spec.data.source.model_copy(update={"rows": 1}))
    body = {k: (None if v != v else v) for k, v in record[spec.data.model_features].iloc[0].to_dict().items()}
    status, answer = post_json(f"{service_url('127.0.0.1', spec.deployment.port)}/predict", body)
    assert status == 200, answer
    return answer["predictions"][0]


def _served_version(spec):
    return _served(spec)["model_version"]


def test_approval_promotion_and_rollback(spec):
    from keel.cli.deploy import rollback
    from keel.deployment.deploy import deployment_folder
    from keel.registry import production_version, record_approval

    try:
        first = _train_and_evaluate(spec, seed=1)
        refused = _deploy(spec, first)
        assert refused["outcome"] == "awaiting approval" and refused["serving"] is None
        assert production_version("deploy_model") is None  # no approval record: no production

        record_approval("deploy_model", first, by="risk-officer", reason="TICKET-1")
        promoted = _deploy(spec, first)
        assert promoted["outcome"] == "promoted" and production_version("deploy_model") == first
        assert promoted["champion"] is None and promoted["redeploy"] is False  # a first deployment
        assert _served_version(spec) == first

        second = _train_and_evaluate(spec, seed=2)
        waiting = _deploy(spec, second)
        # Without approval only the canary steps below 100% run: the challenger never takes all traffic.
        assert waiting["outcome"] == "awaiting approval" and [s["step"] for s in waiting["stages"]] == ["50%"]
        assert [s["healthy"] for s in waiting["stages"]] == [True]
        assert production_version("deploy_model") == first and _served_version(spec) == first
        for strategy in ("all-at-once", "blue-green"):  # checked under mirrored traffic instead
            mirrored = _deploy(spec, second, strategy=strategy)
            assert mirrored["outcome"] == "awaiting approval", mirrored
            (stage,) = mirrored["stages"]
            assert stage["routing"]["shadow"]["version"] == second
            assert [a["version"] for a in stage["routing"]["arms"]] == [first]
            assert _served_version(spec) == first

        record_approval("deploy_model", second, by="risk-officer", reason="TICKET-2")
        released = _deploy(spec, second, actor="release-bot")
        assert released["outcome"] == "promoted" and released["champion"] == first and released["redeploy"] is False
        assert production_version("deploy_model") == second
        assert {k: _served(spec)[k] for k in ("model_version", "arm")} == {"model_version": second, "arm": "champion"}

        # As after `run.py serve`: the running bundle holds the production version only.
        from keel.deployment.bundle import write_bundle
        from keel.deployment.deploy import prediction_log_url
        from keel.registry import evaluation_outcome, load_version_model
        from keel.serving.routing import Arm, RoutingTable

        write_bundle(deployment_folder(spec), spec, {second: load_version_model("deploy_model", second)},
                     {second: float(evaluation_outcome("deploy_model", second)["threshold"])},
                     RoutingTable([Arm("champion", second, 1.0)], strategy="serve"), prediction_log_url(spec))
        assert _served_version(spec) == second

        assert rollback(spec, by="on-call") == 0
        assert production_version("deploy_model") == first and _served_version(spec) == first

        from keel.governance.audit import audit_store, read_records

        records = read_records(audit_store("deploy_model"))
        assert any(r["actor"] == "release-bot" and r["event"] == "deployment_step" for r in records)
        assert any(r["actor"] == "on-call" and r["event"] == "rollback" for r in records)
        assert any(r["actor"] == "on-call" and r["version"] == first and r["details"].get("stage") == "production"
                   for r in records)
    finally:
        stop_service(deployment_folder(spec))


def test_a_version_that_failed_its_gates_is_not_deployable(spec):
    from keel.lifecycle.pipeline_runs import run_pipeline
    from pipelines.deployment import deployment_pipeline

    roc_auc = next(gate for gate in spec.evaluation.gates if gate.metric == "roc_auc")
    strict = spec.model_copy(update={"problem": spec.problem.model_copy(update={"name": "undeployable"}),
                                     "evaluation": spec.evaluation.model_copy(update={"gates": [
                                         roc_auc.model_copy(update={"min": 0.999})]})})
    version = _train_and_evaluate(strict, seed=1)
    outcome = run_pipeline(deployment_pipeline, spec=strict, model_version=version)
    assert outcome.failed_step == "rollout_step" and "failed its gates" in outcome.error

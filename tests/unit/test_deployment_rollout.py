"""The rollout controller on small data, and what a version without its approval record may run."""

import json

import pandas as pd
import pytest

from keel.deployment.bundle import write_bundle
from keel.deployment.rollout import probe_count, replay_probe, run_rollout
from keel.deployment.strategies import challenger_share, rollout_stages, stages_before_approval
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer


def test_a_probe_larger_than_the_rows_cycles_through_them_with_unique_entities():
    rows = pd.DataFrame({"income": [float(i) for i in range(200)]})
    sent = []
    probe = replay_probe("http://service", rows, lambda url, record: sent.append(record) or (200, {}))
    assert probe("1", 2000) == {200: 2000}
    assert len({record["entity_id"] for record in sent}) == 2000
    assert [record["income"] for record in sent[:3]] == [0.0, 1.0, 2.0]
    assert sent[200]["income"] == 0.0 and sent[1999]["income"] == 199.0
    assert probe("2", 0) == {}


@pytest.fixture(scope="module")
def trained():
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec
    from keel.training.in_process import train_in_process
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "data.source.rows=2000", "training.candidate.trials=1", "training.candidate.params.n_estimators=20",
        "deployment.strategy=canary", "deployment.canary_steps=[0.05, 1.0]", "deployment.hold_seconds=0",
        "deployment.probe_requests=100", "deployment.health.min_requests=30",
        "deployment.health.min_scores_for_psi=10", "deployment.health.max_score_psi=100",
        "deployment.approval.auto_approve=false"])
    return spec, train_in_process(generate_credit_applications(spec.data.source), spec)


def test_a_5_percent_canary_on_a_200_row_test_split_gets_the_evidence_it_needs(tmp_path, trained):
    """Before probes cycled, 200 rows gave the 5% challenger ~10 requests: always rolled back."""
    spec, result = trained
    model = result.selected.pipeline
    write_bundle(tmp_path, spec, {1: model, 2: model}, {1: 0.3, 2: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)

    def post(url, record):  # the service in process: the same Scorer behind the HTTP front
        answer = scorer.predict(json.dumps(record).encode(), {})
        return answer.status, answer.body

    test_rows = result.test.head(200)
    assert len(test_rows) == 200
    stages = rollout_stages(spec.deployment, 2, 1)
    count = probe_count(stages[0], 2, spec.deployment)  # 30 challenger requests at 5%: about three times the rows
    assert 450 < count < 800
    probe = replay_probe("in-process", test_rows[spec.data.model_features], post)
    outcome = run_rollout(tmp_path, stages, spec.deployment, scorer.log, 2, 1, probe,
                          probe_labels=test_rows[spec.data.target.column].astype(int).tolist(),
                          values=spec.evaluation.value_matrix)
    first = outcome["stages"][0]
    assert outcome["outcome"] == "completed", first["breaches"]
    assert first["probe_statuses"] == {"200": count} and first["challenger"]["requests"] == 30
    # Labels follow the cycled rows, so both arms' business value is measured.
    assert set(first["value_per_application_by_arm"]) == {"champion", "challenger"}


def test_each_arm_gets_the_scores_its_psi_needs_and_a_psi_without_them_is_said_not_judged():
    """helper-64: a 5% canary's probes were counted from the share alone (100 / 0.05 = 2,000), so routing left
    the challenger 95 scores, under the 100 the PSI needs: it was never judged (4.57 against a 0.25 limit)
    and the stage said only "healthy". The ids each stage's probes carry are routed to count exactly."""
    from keel.deployment.health import judge_stage
    from keel.serving.routing import Arm, RoutingTable
    from keel.spec import load_spec
    from keel.spec.monitoring import PROBE_ENTITY_PREFIX
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml").deployment
    for stage, weight in (("1", 0.05), ("2", 0.25), ("3", 0.5)):
        table = RoutingTable([Arm("champion", 1, 1 - weight), Arm("challenger", 2, weight)])
        count = probe_count(table, 2, spec, stage)
        routed = [table.arm_for(f"{PROBE_ENTITY_PREFIX}{stage}-{i}").version for i in range(count)]
        assert routed.count(2) >= spec.health.min_scores_for_psi and routed.count(1) >= spec.health.min_scores_for_psi
        assert min(routed[:-1].count(2), routed[:-1].count(1)) < spec.health.min_scores_for_psi  # no probe more
    rows = [{"model_version": v, "arm": a, "shadow": False, "score": 0.1 * (v == 2), "latency_ms": 1.0}
            for v, a, n in ((1, "champion", 500), (2, "challenger", 95)) for _ in range(n)]
    verdict = judge_stage(rows, [], 2, 1, spec.health)
    assert verdict["healthy"] and verdict["breaches"] == []
    assert verdict["not_judged"] == [f"score PSI {verdict['score_psi']:.3f} not judged: 95 challenger and 500 "
                                     "champion scores (need 100 each)"]


@pytest.mark.parametrize("strategy,canary_steps,expected_steps", [
    ("canary", [0.05, 0.25, 0.5, 1.0], ["5%", "25%", "50%"]),
    ("canary", [1.0], ["mirror to challenger (awaiting approval)"]),
    ("all-at-once", [1.0], ["mirror to challenger (awaiting approval)"]),
    ("blue-green", [1.0], ["mirror to challenger (awaiting approval)"]),
    ("ab", [1.0], ["50% challenger"]),
    ("shadow", [1.0], ["mirror to challenger"]),
])
def test_without_approval_the_challenger_never_answers_all_traffic(trained, strategy, canary_steps, expected_steps):
    spec = trained[0].deployment.model_copy(update={"strategy": strategy, "canary_steps": canary_steps})
    stages = stages_before_approval(rollout_stages(spec, 2, 1), 2, 1)
    assert [table.step for table in stages] == expected_steps
    assert all(challenger_share(table, 2) < 1.0 for table in stages)
    mirrored = [table for table in stages if table.shadow is not None]
    assert all(table.shadow.version == 2 and [a.version for a in table.arms] == [1] for table in mirrored)


def _installed_in_a_live_service(spec, folder, write, check, on_event):
    write(folder)  # a live service with unchanged settings reloads the bundle
    return "http://service"


def test_deploy_runs_only_the_partial_stages_then_returns_to_the_champion(tmp_path, trained, monkeypatch):
    import keel.deployment.deploy as deploy_module

    spec, result = trained
    spec = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={
        "folder": str(tmp_path), "strategy": "all-at-once"})})
    ran = {}

    def fake_rollout(folder, stages, *args, **kwargs):
        ran["stages"] = stages
        return {"outcome": "completed", "stages": [], "serving": 2}

    monkeypatch.setattr(deploy_module, "install_bundle", _installed_in_a_live_service)
    monkeypatch.setattr(deploy_module, "run_rollout", fake_rollout)
    model = result.selected.pipeline
    evidence = deploy_module.deploy(spec, 2, 1, {1: model, 2: model}, {1: 0.3, 2: 0.3}, result.test, approval=None,
                                    background=result.validation)
    assert [table.shadow.version for table in ran["stages"]] == [2]  # mirrored, never answered
    assert evidence["outcome"] == "awaiting approval" and evidence["serving"] == 1
    routing = json.loads((deploy_module.deployment_folder(spec) / "routing.json").read_text())
    assert [arm["version"] for arm in routing["arms"]] == [1] and routing["step"] == "awaiting approval"

    approved = deploy_module.deploy(spec, 2, 1, {1: model, 2: model}, {1: 0.3, 2: 0.3}, result.test,
                                    approval={"by": "risk-officer", "reason": "T-1"}, background=result.validation)
    assert [challenger_share(table, 2) for table in ran["stages"]] == [1.0]  # approved: the declared strategy
    assert approved["outcome"] == "promoted" and approved["serving"] == 2


@pytest.mark.parametrize("answering_version,succeeds", [(1, True), (2, False), (None, False)])
def test_serve_only_loads_the_version_routes_to_it_and_checks_the_service_answers_with_it(
        tmp_path, trained, monkeypatch, answering_version, succeeds):
    """What `rollback` relies on: after `serve` the bundle held only v2; v1 must be loaded and answering."""
    import keel.deployment.deploy as deploy_module
    from keel.deployment.server import ServiceNotAnswering

    spec, result = trained
    spec = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"folder": str(tmp_path)})})
    model = result.selected.pipeline
    monkeypatch.setattr(deploy_module, "install_bundle", _installed_in_a_live_service)
    sent = []

    def post(url, record, headers=None):
        sent.append(record)
        if answering_version is None:
            return 503, {"errors": []}
        return 200, {"predictions": [{"model_version": answering_version}]}

    monkeypatch.setattr(deploy_module, "post_json", post)
    routed = []
    call = lambda: deploy_module.serve_only(spec, 1, {1: model, 2: model}, {1: 0.3, 2: 0.4},  # noqa: E731
                                            result.validation, "manual rollback from v2", on_routing=routed.append)
    if succeeds:
        assert call() == "http://service"
    else:
        with pytest.raises(ServiceNotAnswering, match="not v1"):
            call()
    scorer = Scorer(deploy_module.deployment_folder(spec))
    assert set(scorer.models) == {1, 2}  # the current version stays loaded while routing switches
    assert [(a.version, a.weight) for a in scorer.routing().arms] == [(1, 1.0)]
    assert [t.step for t in routed] == ["manual rollback from v2"] and len(sent) == 1


@pytest.mark.parametrize("outcome", ["completed", "rolled back"])
def test_a_first_version_takes_traffic_before_it_is_production_and_is_stopped_if_unhealthy(
        tmp_path, trained, monkeypatch, outcome):
    """The promotion is the commit point: the version is installed and probed while the rollout is in
    progress (killed then, the service routes nothing and the registry still says staging), and made
    production only once healthy; an unhealthy first version is never promoted and nothing serves."""
    import keel.deployment.deploy as deploy_module
    from keel.serving import rollout_state

    spec, result = trained
    spec = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"folder": str(tmp_path)})})
    calls = []

    def install(spec, folder, write, check, on_event):
        calls.append(("install", rollout_state.read_state(folder)["stage"]))
        write(folder)
        return "http://service"

    monkeypatch.setattr(deploy_module, "install_bundle", install)
    monkeypatch.setattr(deploy_module, "run_rollout", lambda *a, **k: {"outcome": outcome, "stages": [],
                                                                 "serving": 2 if outcome == "completed" else None})
    monkeypatch.setattr(deploy_module, "stop_service", lambda folder: calls.append(("stop", None)))
    model = result.selected.pipeline
    evidence = deploy_module.deploy(spec, 2, None, {2: model}, {2: 0.3}, result.test, approval={"by": "x"},
                                    background=result.validation,
                                    promote=lambda: calls.append(("promote", rollout_state.read_state(
                                        deploy_module.deployment_folder(spec))["stage"])))
    assert calls[0] == ("install", rollout_state.IN_PROGRESS)
    if outcome == "completed":
        assert calls[1:] == [("promote", rollout_state.PROMOTING)]
        assert evidence["outcome"] == "promoted" and evidence["serving"] == 2
    else:
        assert calls[1:] == [("stop", None)] and evidence["serving"] is None
    assert rollout_state.read_state(deploy_module.deployment_folder(spec))["stage"] == rollout_state.FINISHED

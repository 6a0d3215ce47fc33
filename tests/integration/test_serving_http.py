"""Real HTTP against a running keel BentoML service on 127.0.0.1 (no ZenML needed)."""

import itertools
import json
import threading
import time
import urllib.request
from collections import Counter

import pytest

from keel.deployment.bundle import write_bundle, write_routing
from keel.deployment.rollout import replay_probe, run_rollout
from keel.deployment.server import post_json, service_url, start_service, stop_service
from keel.deployment.strategies import rollout_stages
from keel.files import write_atomically
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import Arm, RoutingTable
from keel.training.in_process import train_in_process
from tests.support.faulty_models import Raising, Slow
from tests.support.servers import free_port

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "data.source.rows=4000", "training.candidate.trials=1", "training.candidate.params.n_estimators=40",
        "deployment.hold_seconds=0", "deployment.probe_requests=400", "deployment.health.min_requests=20"])
    trained = train_in_process(generate_credit_applications(spec.data.source), spec)
    other = train_in_process(generate_credit_applications(spec.data.source.model_copy(update={"seed": 9})), spec)
    model, challenger = trained.selected.pipeline, other.selected.pipeline
    columns = list(model.feature_names_in_)
    models = {1: model, 2: challenger, 3: Raising(columns), 4: Slow(model, seconds=0.2)}
    folder = tmp_path_factory.mktemp("deployment")
    log_url = f"sqlite:///{folder / 'predictions.db'}"
    write_bundle(folder, spec, models, {v: 0.3 for v in models}, RoutingTable([Arm("champion", 1, 1.0)]), log_url,
                 trained.validation[spec.data.model_features])
    port = free_port()
    start_service(folder, "127.0.0.1", port)
    url = service_url("127.0.0.1", port)
    yield {"spec": spec, "folder": folder, "url": url, "log": PredictionLog(log_url), "model": model,
           "background": trained.validation[spec.data.model_features],
           "rows": trained.test[spec.data.model_features], "labels": trained.test["default"].astype(int).tolist()}
    stop_service(folder)


def _record(service, index=0, entity=None):
    record = json.loads(service["rows"].iloc[[index]].to_json(orient="records"))[0]
    if entity is not None:
        record["entity_id"] = entity
    return record


def _raw_post(url, body: bytes, content_type="application/json"):
    request = urllib.request.Request(f"{url}/predict", data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _champion_only(service):
    write_routing(service["folder"], RoutingTable([Arm("champion", 1, 1.0)]))


def test_health_endpoints_and_metrics(service):
    for path in ("/healthz", "/livez", "/readyz"):
        with urllib.request.urlopen(service["url"] + path, timeout=5) as response:
            assert response.status == 200
    post_json(f"{service['url']}/predict", _record(service))
    with urllib.request.urlopen(service["url"] + "/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'keel_requests_total{arm="champion",model_version="1",outcome="ok"}' in text


def test_500_malformed_requests_get_4xx_and_the_service_keeps_serving(service):
    _champion_only(service)
    url, good = service["url"], _record(service)
    assert post_json(f"{url}/predict", good)[0] == 200
    bad_bodies = [b"", b"   ", b"{", b"null", b"[]", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"records": []}',
                  json.dumps({**good, "income": "1000"}).encode(), json.dumps({**good, "extra": 1}).encode(),
                  json.dumps({**good, "region": "atlantis"}).encode(),
                  json.dumps({k: v for k, v in good.items() if k != "income"}).encode(),
                  json.dumps({**good, "loan_term_months": 12.5}).encode(),
                  json.dumps({**good, "debt_to_income": -3}).encode(),
                  json.dumps({**good, "income": None}).encode(),
                  b'{"income": NaN}', b'{"income": Infinity}',
                  json.dumps({"records": [good] * 10_001}).encode(),
                  b"x" * 1_100_000,
                  b"[" * 200_000 + b"]" * 200_000]  # 400 kB of nesting: under the size limit, over the recursion limit
    statuses = Counter()
    for i in range(520):
        statuses[_raw_post(url, bad_bodies[i % len(bad_bodies)])] += 1
    assert sum(statuses.values()) == 520
    assert all(400 <= status < 500 for status in statuses), statuses
    assert {400, 413, 422} <= set(statuses)
    status, body = post_json(f"{url}/predict", good)
    assert status == 200 and body["predictions"][0]["model_version"] == 1
    status, body = post_json(f"{url}/predict", {**good, "income": "1000"})
    assert status == 422 and body["errors"][0]["field"] == "income"


def test_a_declared_length_over_the_limit_is_413_at_once_not_a_504(service):
    """helper-60: Content-Length 5,000,000 with 7 bytes sent waited 10 s for the rest and got 504."""
    import socket
    from urllib.parse import urlparse

    address = urlparse(service["url"])
    started = time.monotonic()
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 5000000\r\n\r\n{\"a\": 1}")
        answer = b""
        while b"body larger than" not in answer and time.monotonic() - started < 8:
            answer += connection.recv(65536) or b""
    assert answer.startswith(b"HTTP/1.1 413 ") and b"body larger than 1000000 bytes" in answer, answer[:300]
    assert time.monotonic() - started < 4  # the body stalled for STALLED_BODY_SECONDS, not BentoML's 10 s
    assert post_json(f"{service['url']}/predict", _record(service))[0] == 200  # and it keeps serving


def test_same_entity_always_gets_the_same_arm(service):
    write_routing(service["folder"], RoutingTable([Arm("champion", 1, 0.5), Arm("challenger", 2, 0.5)]))
    for entity in ("alice", "bob", "carol", "dave"):
        versions = {post_json(f"{service['url']}/predict", _record(service, i % 50, entity))[1]["predictions"][0]["model_version"]
                    for i in range(15)}
        assert len(versions) == 1, entity
    _champion_only(service)


@pytest.mark.parametrize("strategy", ["canary", "ab", "all-at-once", "blue-green", "shadow"])
def test_each_strategy_splits_as_declared(service, strategy):
    _champion_only(service)
    spec = service["spec"].deployment.model_copy(update={"strategy": strategy})
    stages = rollout_stages(spec, challenger=2, champion=1)
    probe = replay_probe(service["url"], service["rows"], post_json)
    labels = service["labels"]
    result = run_rollout(service["folder"], stages, spec, service["log"], 2, 1, probe, probe_labels=labels,
                         values=service["spec"].evaluation.value_matrix)
    assert result["outcome"] == "completed", result["stages"][-1]["breaches"]
    if strategy == "ab":  # the per-arm business metric is collected for both arms
        assert set(result["stages"][0]["value_per_application_by_arm"]) == {"champion", "challenger"}
    for stage, table in zip(result["stages"], stages):
        sent = stage["probe_statuses"]["200"]
        assert stage["probe_statuses"] == {"200": sent} and sent >= 400
        rows = [r for r in service["log"].read(since=_time(stage["started"]))
                if r["entity_id"].startswith(f"probe-{stage['stage']}-")]
        served = [r for r in rows if not r["shadow"]]
        share = sum(r["model_version"] == 2 for r in served) / len(served)
        expected = sum(a.weight for a in table.arms if a.version == 2)
        # At least 400 requests: a binomial share is within 0.075 of its weight with > 99% probability.
        assert abs(share - expected) <= 0.075, (strategy, stage["step"], share, expected)
        if strategy == "shadow":
            assert share == 0 and sum(r["shadow"] for r in rows) == len(served)


def test_shadow_answers_never_reach_the_caller(service):
    """While the challenger is mirrored, every HTTP answer comes from the champion."""
    write_routing(service["folder"], RoutingTable([Arm("champion", 1, 1.0)], shadow=Arm("challenger", 2, 0.0),
                                                  strategy="shadow"))
    try:
        answers = [post_json(f"{service['url']}/predict", _record(service, i % 50, f"mirrored-{i}")) for i in range(60)]
        batch = post_json(f"{service['url']}/predict", {"records": [_record(service, i, f"batch-{i}") for i in range(20)]})
        predictions = [body["predictions"][0] for _, body in answers] + batch[1]["predictions"]
        assert {status for status, _ in answers + [batch]} == {200}
        assert {(p["model_version"], p["arm"]) for p in predictions} == {(1, "champion")}
        shadow_rows = [r for r in service["log"].read() if r["request_id"] == batch[1]["request_id"] and r["shadow"]]
        assert len(shadow_rows) == 20 and {r["model_version"] for r in shadow_rows} == {2}  # it did score them
    finally:
        _champion_only(service)


def test_a_retried_request_id_gets_409_and_the_service_keeps_serving(service):
    _champion_only(service)
    url, headers = f"{service['url']}/predict", {"X-Request-ID": "http-retry-1"}
    status, body = post_json(url, _record(service), headers=headers)
    assert status == 200 and body["request_id"] == "http-retry-1"
    status, body = post_json(url, _record(service), headers=headers)
    assert status == 409 and body["errors"][0]["field"] == "X-Request-ID"
    status, body = post_json(url, _record(service), headers={"X-Request-ID": "r" * 65})
    assert status == 400 and body["errors"][0]["field"] == "X-Request-ID"
    assert post_json(url, _record(service))[0] == 200


def _time(iso):
    from datetime import datetime

    return datetime.fromisoformat(iso)


@pytest.mark.parametrize("faulty,breach", [(3, "error rate"), (4, "p95 latency")])
def test_a_faulty_challenger_is_rolled_back_with_no_failed_champion_responses(service, faulty, breach):
    _champion_only(service)
    spec = service["spec"].deployment.model_copy(update={"strategy": "canary", "canary_steps": [0.25, 1.0],
                                                         "probe_requests": 120})
    # 30 challenger scores suffice for a verdict here: 120 probes, not the 400 that the default 100
    # scores for the PSI would take (a quarter of them 0.2 s each on the slow challenger).
    spec = spec.model_copy(update={"health": spec.health.model_copy(update={"max_p95_latency_ms": 150,
                                                                            "min_scores_for_psi": 30})})
    probe = replay_probe(service["url"], service["rows"], post_json)
    result = run_rollout(service["folder"], rollout_stages(spec, faulty, 1), spec, service["log"], faulty, 1, probe)
    assert result["outcome"] == "rolled back" and result["rolled_back_at"] == 1
    stage = result["stages"][0]
    assert set(stage["probe_statuses"]) == {"200"}  # every caller was answered
    assert any(breach in b for b in stage["breaches"]), stage["breaches"]
    routing = json.loads((service["folder"] / "routing.json").read_text())
    assert [a["version"] for a in routing["arms"]] == [1] and routing["strategy"] == "rollback"
    status, body = post_json(f"{service['url']}/predict", _record(service, entity="after-rollback"))
    assert status == 200 and body["predictions"][0]["model_version"] == 1


def _post_until_killed(service, clients: int, enough: int, prefix: str) -> list:
    """`clients` threads post records (new connection each, so every worker gets some) until
    `enough` answers arrived, then the service is SIGKILLed mid-stream; the acknowledged request ids."""
    url, acknowledged, stop = f"{service['url']}/predict", [], threading.Event()

    def client(k: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            try:
                status, body = post_json(url, _record(service, (k * 7 + i) % 50, f"{prefix}-{k}-{i}"), timeout=5)
            except (OSError, ValueError):  # the server went away mid-request: not acknowledged
                return
            if status == 200:
                acknowledged.append(body["request_id"])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < enough and time.monotonic() < deadline:
        time.sleep(0.01)
    stop_service(service["folder"], kill=True)  # SIGKILL with requests in flight: no shutdown, no flushing
    stop.set()
    for thread in threads:
        thread.join(30)
    return acknowledged


def _restart(service, workers: int) -> None:
    config = json.loads((service["folder"] / "deployment.json").read_text())
    config["spec"]["deployment"]["workers"] = workers
    write_atomically(service["folder"] / "deployment.json", json.dumps(config))
    start_service(service["folder"], "127.0.0.1", int(service["url"].rsplit(":", 1)[1]))


def _logged_ids(service) -> set:
    return {row["request_id"] for row in PredictionLog(str(service["log"].engine.url)).read()}


def test_acknowledged_predictions_survive_a_killed_service(service):
    """SIGKILL the service while 8 clients' requests are being group-committed: every acknowledged
    request is in the log."""
    _champion_only(service)
    acknowledged = _post_until_killed(service, clients=8, enough=150, prefix="crash")
    assert len(acknowledged) >= 150 and set(acknowledged) <= _logged_ids(service)
    _restart(service, workers=1)  # for later tests
    assert post_json(f"{service['url']}/predict", _record(service))[0] == 200


def _metric_total(url: str, name: str, **labels) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefixes = (f"{name}{{{wanted}}}",) if labels else (f"{name} ", f"{name}{{}}")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefixes))


def test_two_workers_share_the_port_the_log_the_routing_and_the_metrics(service):
    """deployment.workers: 2 — two worker processes answer; an entity reaches the same arm in both;
    /metrics adds up both workers' counts; a SIGKILL loses no acknowledged prediction of either."""
    import psutil

    stop_service(service["folder"])
    _restart(service, workers=2)
    try:
        tree = psutil.Process(int((service["folder"] / "service.pid").read_text())).children(recursive=True)
        assert sum("_bentoml_impl.worker" in " ".join(p.cmdline()) for p in tree) == 2
        write_routing(service["folder"], RoutingTable([Arm("champion", 1, 0.5), Arm("challenger", 2, 0.5)]))
        for entity in ("alice", "bob", "carol", "dave"):  # a new connection each time: both workers answer
            arms = {post_json(f"{service['url']}/predict", _record(service, i % 50, entity))[1]["predictions"][0]["arm"]
                    for i in range(12)}
            assert len(arms) == 1, entity
        _champion_only(service)
        counted = _metric_total(service["url"], "keel_requests_total", arm="champion", model_version=1, outcome="ok")
        committed = [_metric_total(service["url"], f"keel_prediction_log_{name}_total")
                     for name in ("commits", "committed_requests")]
        for i in range(40):
            assert post_json(f"{service['url']}/predict", _record(service, i % 50, f"metrics-{i}"))[0] == 200
        assert _metric_total(service["url"], "keel_requests_total", arm="champion", model_version=1,
                             outcome="ok") == counted + 40
        # One client at a time: each request is committed alone, by whichever worker answered it.
        assert [_metric_total(service["url"], f"keel_prediction_log_{name}_total")
                for name in ("commits", "committed_requests")] == [committed[0] + 40, committed[1] + 40]
        acknowledged = _post_until_killed(service, clients=8, enough=150, prefix="crash2")
        assert len(acknowledged) >= 150 and set(acknowledged) <= _logged_ids(service)
    finally:
        stop_service(service["folder"])
        _restart(service, workers=1)


def test_another_deployments_service_on_the_machine_leaves_this_ones_metrics_alone(service, tmp_path):
    """Every `bentoml serve` empties its BentoML home's Prometheus folder: a second keel service
    started beside this one (another deployment folder) must not erase this one's counts, nor have
    its requests counted here."""
    _champion_only(service)
    for i in range(5):
        assert post_json(f"{service['url']}/predict", _record(service, i, f"own-{i}"))[0] == 200
    counted = _metric_total(service["url"], "keel_requests_total", arm="champion", model_version=1, outcome="ok")
    other = tmp_path / "other"
    write_bundle(other, service["spec"], {1: service["model"]}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{other / 'predictions.db'}", service["background"])
    other_url = service_url("127.0.0.1", free_port())
    start_service(other, "127.0.0.1", int(other_url.rsplit(":", 1)[1]))
    try:
        for i in range(3):
            assert post_json(f"{other_url}/predict", _record(service, i, f"other-{i}"))[0] == 200
        assert _metric_total(other_url, "keel_requests_total", arm="champion", model_version=1, outcome="ok") == 3
        assert _metric_total(service["url"], "keel_requests_total", arm="champion", model_version=1,
                             outcome="ok") == counted
        assert post_json(f"{service['url']}/predict", _record(service, 7, "own-7"))[0] == 200
        assert _metric_total(service["url"], "keel_requests_total", arm="champion", model_version=1,
                             outcome="ok") == counted + 1
    finally:
        stop_service(other)


def test_a_postgresql_log_keeps_every_acknowledged_prediction_of_a_killed_service(service):
    """The same guarantee with the log in PostgreSQL, two workers writing to it; `monitor` reads the
    predictions back from it."""
    from keel.monitoring.windows import read_predictions
    from tests.support.postgres import postgresql_server

    folder = service["folder"]
    original = (folder / "deployment.json").read_text()
    with postgresql_server() as postgres:
        stop_service(folder)
        write_atomically(folder / "deployment.json",
                         json.dumps({**json.loads(original), "prediction_log_url": postgres.url}))
        try:
            _restart(service, workers=2)
            _champion_only(service)
            acknowledged = _post_until_killed(service, clients=8, enough=150, prefix="pg-crash")
            logged = PredictionLog(postgres.url).read()
            assert len(acknowledged) >= 150 and set(acknowledged) <= {row["request_id"] for row in logged}
            monitored = read_predictions(postgres.url)
            assert set(monitored["entity_id"]) == {row["entity_id"] for row in logged if not row["shadow"]}
            assert set(monitored.columns) >= set(service["spec"].data.model_features)
        finally:
            stop_service(folder)
            write_atomically(folder / "deployment.json", original)
            _restart(service, workers=1)


def test_refer_reasons_review_and_explain_over_http(service, tmp_path, monkeypatch, capsys):
    """Issue 19 end to end on the running service: a declared refer band answers `refer` (the review
    row committed with the prediction), declines carry their principal reasons, `review decide` records
    a person's decision in the log and the audit trail, and explain's decision lines show both."""
    from keel.cli.explain import decision_lines
    from keel.cli.main import main
    from keel.governance.audit import read_records
    from keel.governance.lineage import logged_rows
    from keel.governance.store import FolderStore
    from keel.serving.reviews import review_of

    folder, url = service["folder"], str(service["log"].engine.url)
    original = (folder / "deployment.json").read_text()
    config = json.loads(original)
    config["spec"]["decisions"] = {"refer_band": [0.2, 0.4], "top_reasons": 3,
                                   "reasons": {"debt_to_income": "Debt-to-income ratio too high"}}
    write_atomically(folder / "deployment.json", json.dumps(config))  # the service reloads it, no restart
    _champion_only(service)
    try:
        records = [_record(service, i, f"contest-{i}") for i in range(80)]
        status, body = post_json(f"{service['url']}/predict", {"records": records}, headers={"X-Request-ID": "contest-1"})
        assert status == 200, body
        answers = body["predictions"]
        referred = [i for i, p in enumerate(answers) if p["decision"] == "refer"]
        declined = [i for i, p in enumerate(answers) if p["decision"] == 1]
        assert referred and declined and all(0.2 <= answers[i]["score"] < 0.4 for i in referred)
        assert all(answers[i]["reasons"] and len(answers[i]["reasons"]) <= 3 for i in declined)
        assert all("reasons" not in p for p in answers if p["decision"] == 0)
        monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
        spec_args = ["--set", f"deployment.prediction_log_url={url}"]
        assert main(["review", "list", *spec_args]) == 0
        assert f"contest-1:{referred[0]}" in capsys.readouterr().out
        assert main(["review", "decide", f"contest-1:{referred[0]}", "--decision", "favourable", "--reason",
                     "income verified by phone", "--by", "underwriter-7", *spec_args]) == 0
        assert main(["review", "decide", f"contest-1:{referred[0]}", "--decision", "unfavourable", "--reason",
                     "second thoughts", *spec_args]) == 1  # a decision is never overwritten
        [event] = [r for r in read_records(FolderStore(tmp_path / "audit" / service["spec"].problem.name))
                   if r["event"] == "review_decided"]
        assert event["details"]["request_id"] == "contest-1" and event["details"]["class"] == 0
        target = service["spec"].data.target
        [row] = logged_rows(url, "contest-1", referred[0], answered_only=True)
        lines = decision_lines(row, review_of(url, "contest-1", referred[0]), target)
        assert "favourable (class 0) by underwriter-7" in lines[1] and lines[1].endswith("income verified by phone")
        [row] = logged_rows(url, "contest-1", declined[0], answered_only=True)
        lines = decision_lines(row, review_of(url, "contest-1", declined[0]), target)
        assert lines[0] == "principal reasons given with the answer:"
        assert answers[declined[0]]["reasons"][0]["statement"] in lines[1]
    finally:
        write_atomically(folder / "deployment.json", original)

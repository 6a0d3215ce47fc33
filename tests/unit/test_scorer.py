"""The scoring core in process: contract, routing, shadow, fallback, log."""

import json

import numpy as np
import pytest

from keel.deployment.bundle import write_bundle, write_routing
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer
from keel.training.in_process import train_in_process


class Exploding:
    """A challenger that fails on every request."""

    def __init__(self, model):
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, frame):
        raise RuntimeError("challenger is broken")


@pytest.fixture(scope="module")
def trained():
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=3000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=30"])
    return spec, train_in_process(generate_credit_applications(spec.data.source), spec)


def _bundle(tmp_path, trained, routing, challenger=None):
    spec, result = trained
    models = {1: result.selected.pipeline, 2: challenger or result.selected.pipeline}
    write_bundle(tmp_path, spec, models, {1: 0.3, 2: 0.3}, routing,
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    return Scorer(tmp_path)


def _body(trained, n=1, entity="a"):
    spec, result = trained
    rows = json.loads(result.test[spec.data.model_features].head(n).to_json(orient="records"))
    for i, row in enumerate(rows):
        row["entity_id"] = f"{entity}{i}"
    return json.dumps(rows[0] if n == 1 else {"records": rows}).encode()


def test_one_record_is_scored_logged_and_answered(tmp_path, trained):
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    answer = scorer.predict(_body(trained), {})
    assert answer.status == 200
    [prediction] = answer.body["predictions"]
    assert prediction["model_version"] == 1 and 0 <= prediction["score"] <= 1
    assert prediction["decision"] == int(prediction["score"] >= 0.3)
    [logged] = scorer.log.read()
    assert logged["request_id"] == answer.body["request_id"] and logged["entity_id"] == "a0"


DEEPLY_NESTED = b"[" * 200_000 + b"]" * 200_000  # 400 kB: under the size limit, over the recursion limit


@pytest.mark.parametrize("body,status", [(b"", 400), (b"{not json", 400), (b"[]", 422), (b'{"income": 1}', 422),
                                         (b"x" * 2_000_000, 413), (b'"a string"', 422), (DEEPLY_NESTED, 400),
                                         (b'{"records": [' + b'{"a": ' * 900 + b"1" + b"}" * 900 + b"]}", 422)])
def test_bad_bodies_get_4xx_and_nothing_is_logged(tmp_path, trained, body, status):
    """... as a prediction: a 422 (the records' content) is logged as a refused request, for monitoring."""
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    answer = scorer.predict(body, {"x-request-id": "bad-1"})
    assert answer.status == status and answer.body["errors"]
    assert scorer.log.count() == 0
    refused = _refusals(scorer)
    assert [r["request_id"] for r in refused] == (["bad-1"] if status == 422 else [])
    if refused:
        assert json.loads(refused[0]["errors"])[0]["problem"] == answer.body["errors"][0]["problem"]


def _refusals(scorer) -> list:
    import sqlalchemy as sa

    from keel.serving.prediction_log import REFUSALS

    with scorer.log.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(REFUSALS).order_by(REFUSALS.c.id))]


def test_a_body_sent_as_another_media_type_is_a_415_and_json_types_are_scored(tmp_path, trained):
    """helper-60: JSON sent as text/plain or as a form was scored, though FastAPI (and keel's own OpenAPI
    document) takes JSON only; a client that mislabels its body is told so, and nothing is logged."""
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    for sent in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "json"):
        answer = scorer.predict(_body(trained), {"content-type": sent})
        assert answer.status == 415 and answer.body["errors"] == [
            {"field": "Content-Type", "problem": "the body must be JSON, sent as Content-Type: application/json",
             "found": sent}]
    assert scorer.log.count() == 0
    for sent in ("application/json", "Application/JSON; charset=utf-8", "application/vnd.keel+json", None):
        assert scorer.predict(_body(trained), {} if sent is None else {"content-type": sent}).status == 200
    assert scorer.explain(_body(trained), {"content-type": "text/plain"}).status == 415


def test_a_key_given_twice_in_one_record_is_a_422_naming_it_and_nothing_is_logged(tmp_path, trained):
    """helper-63: {"years_experience": 3, "years_experience": 30} was scored and logged as 30: the value
    the caller meant is unknown, so the record is refused, naming the key; in a batch too."""
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    record = json.loads(_body(trained))
    name = next(key for key in record if key != "entity_id")
    single = json.dumps(record)[1:-1]
    for body in ("{" + single + f', "{name}": 1' + "}", '{"records": [{' + single + f', "{name}": 1' + "}]}"):
        answer = scorer.predict(body.encode(), {})
        assert answer.status == 422 and answer.body["errors"][0]["field"] == name, answer.body
        assert "more than once" in answer.body["errors"][0]["problem"]
    assert scorer.log.count() == 0
    assert scorer.predict(json.dumps(record).encode(), {}).status == 200


def test_shadow_predictions_are_logged_never_returned(tmp_path, trained):
    table = RoutingTable([Arm("champion", 1, 1.0)], shadow=Arm("challenger", 2, 0.0), strategy="shadow")
    scorer = _bundle(tmp_path, trained, table)
    answer = scorer.predict(_body(trained, n=20), {})
    assert {p["model_version"] for p in answer.body["predictions"]} == {1}
    logged = scorer.log.read()
    assert sum(r["shadow"] for r in logged) == 20 and {r["model_version"] for r in logged if r["shadow"]} == {2}


def test_a_failing_challenger_is_answered_by_the_champion_and_recorded(tmp_path, trained):
    table = RoutingTable([Arm("champion", 1, 0.5), Arm("challenger", 2, 0.5)], strategy="canary")
    scorer = _bundle(tmp_path, trained, table, challenger=Exploding(trained[1].selected.pipeline))
    answer = scorer.predict(_body(trained, n=50), {})
    assert answer.status == 200
    assert {p["model_version"] for p in answer.body["predictions"]} == {1}
    errors = scorer.log.read_errors()
    assert errors and {e["model_version"] for e in errors} == {2} and "broken" in errors[0]["error"]


def test_routing_changes_are_picked_up_without_a_restart(tmp_path, trained):
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    assert {p["model_version"] for p in scorer.predict(_body(trained, n=10), {}).body["predictions"]} == {1}
    import os
    import time
    write_routing(tmp_path, RoutingTable([Arm("challenger", 2, 1.0)], strategy="blue-green"))
    os.utime(tmp_path / "routing.json", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert {p["model_version"] for p in scorer.predict(_body(trained, n=10), {}).body["predictions"]} == {2}


def test_api_key_is_required_when_configured(tmp_path, trained, monkeypatch):
    spec, result = trained
    monkeypatch.setenv("KEEL_TEST_KEY", "s3cret")
    write_bundle(tmp_path, spec, {1: result.selected.pipeline}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", api_key_env="KEEL_TEST_KEY")
    scorer = Scorer(tmp_path)
    assert scorer.predict(_body(trained), {}).status == 401
    assert scorer.predict(_body(trained), {"x-api-key": "wrong"}).status == 401
    assert scorer.predict(_body(trained), {"x-api-key": "s3cret"}).status == 200


def test_explain_returns_contributions_for_every_feature(tmp_path, trained):
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    answer = scorer.explain(_body(trained), {})
    assert answer.status == 200
    assert set(answer.body["contributions"]) == set(trained[0].data.model_features)
    assert scorer.explain(_body(trained, n=3), {}).status == 422


def test_a_deeply_nested_body_is_a_400_that_says_why(tmp_path, trained):
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    answer = scorer.predict(DEEPLY_NESTED, {})
    assert answer.status == 400 and "nested too deeply" in answer.body["errors"][0]["problem"]
    assert scorer.explain(DEEPLY_NESTED, {}).status == 400
    assert scorer.predict(_body(trained), {}).status == 200  # and the scorer keeps answering


def test_a_retried_request_id_is_a_409_and_the_first_answer_stays_logged(tmp_path, trained):
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    first = scorer.predict(_body(trained, n=3), {"x-request-id": "retry-1"})
    assert first.status == 200 and first.body["request_id"] == "retry-1"
    retried = scorer.predict(_body(trained, n=3), {"x-request-id": "retry-1"})
    assert retried.status == 409
    assert retried.body["errors"][0]["field"] == "X-Request-ID" and "already answered" in retried.body["errors"][0]["problem"]
    logged = scorer.log.read()
    assert len(logged) == 3 and {r["request_id"] for r in logged} == {"retry-1"}
    from keel.governance.lineage import find_prediction  # the caller's id still finds the answer

    assert [r["row"] for r in find_prediction(f"sqlite:///{tmp_path / 'log.db'}", "retry-1")] == [0, 1, 2]


def test_a_request_id_that_is_not_printable_ascii_is_refused_not_logged_garbled(tmp_path, trained):
    """helper-60: `X-Request-ID: é/../x y` (UTF-8 on the wire, read as latin-1) was answered and logged as
    'Ã©/../x y', so `lineage --prediction 'é/../x y'` found nothing."""
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    for sent in ("é/../x y".encode().decode("latin-1"), "tab\there", "line\nbreak"):
        answer = scorer.predict(_body(trained), {"x-request-id": sent})
        assert answer.status == 400 and answer.body["errors"][0]["field"] == "X-Request-ID"
        assert "printable ASCII" in answer.body["errors"][0]["problem"]
    assert scorer.predict(_body(trained), {"x-request-id": "a/../b c:1"}).status == 200
    from keel.governance.lineage import find_prediction

    assert [r["request_id"] for r in find_prediction(f"sqlite:///{tmp_path / 'log.db'}", "a/../b c:1")] == ["a/../b c:1"]
    assert find_prediction(f"sqlite:///{tmp_path / 'log.db'}", "é/../x y") == []


def test_ids_longer_than_the_log_can_store_are_refused_naming_the_field(tmp_path, trained):
    scorer = _bundle(tmp_path, trained, RoutingTable([Arm("champion", 1, 1.0)]))
    too_long = scorer.predict(_body(trained), {"x-request-id": "r" * 65})
    assert too_long.status == 400 and too_long.body["errors"][0]["field"] == "X-Request-ID"
    assert scorer.predict(_body(trained), {"x-request-id": "r" * 64}).status == 200
    record = json.loads(_body(trained))
    for entity in ("e" * 129, 10 ** 130):
        answer = scorer.predict(json.dumps({**record, "entity_id": entity}).encode(), {})
        assert answer.status == 422 and answer.body["errors"][0]["field"] == "entity_id"
    assert scorer.predict(json.dumps({**record, "entity_id": "e" * 128}).encode(), {}).status == 200
    assert scorer.log.count() == 2


def _spec_with(spec, **sections):
    """The spec with some sections replaced by plain dicts (validated again, as a bundle's spec is)."""
    from keel.spec.models import Spec

    data = spec.model_dump(mode="json")
    for dotted, value in sections.items():
        section, key = dotted.split("__")
        data[section][key] = value
    return Spec.model_validate(data)


def test_a_score_in_the_refer_band_is_referred_and_unfavourable_decisions_give_their_reasons(tmp_path, trained):
    """Issue 19: `refer` inside the band (score kept), a review row committed with the prediction;
    principal reasons for each unfavourable decision only (here predicting a default: a decline)."""
    import sqlalchemy as sa

    from keel.serving.reviews import REVIEWS, pending_reviews

    spec, result = trained
    spec = _spec_with(spec, decisions__refer_band=[0.25, 0.35],
                      decisions__reasons={"debt_to_income": "Debt-to-income ratio too high"}, decisions__top_reasons=2)
    write_bundle(tmp_path, spec, {1: result.selected.pipeline}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    answer = scorer.predict(_body((spec, result), n=300), {"x-request-id": "batch-1"})
    assert answer.status == 200
    predictions = answer.body["predictions"]
    referred = [p for p in predictions if p["decision"] == "refer"]
    declined = [p for p in predictions if p["decision"] == 1]
    approved = [p for p in predictions if p["decision"] == 0]
    assert referred and declined and approved
    assert all(0.25 <= p["score"] < 0.35 for p in referred)
    assert all(not 0.25 <= p["score"] < 0.35 for p in declined + approved)
    assert all("reasons" not in p for p in approved + referred)  # favourable decisions pay nothing
    for p in declined:
        assert 1 <= len(p["reasons"]) <= 2
        assert all(r["contribution"] > 0 and r["feature"] not in ("sex", "age_band") for r in p["reasons"])
    statements = {r["feature"]: r["statement"] for p in declined for r in p["reasons"]}
    assert statements.get("debt_to_income", "Debt-to-income ratio too high") == "Debt-to-income ratio too high"
    logged = {r["row"]: r for r in scorer.log.read()}
    for index, p in enumerate(predictions):
        if p["decision"] == "refer":  # logged for a person who declines it (helper-40), not answered
            assert 1 <= len(logged[index]["reasons"]) <= 2 and all(r["contribution"] > 0 for r in logged[index]["reasons"])
        else:
            assert logged[index]["reasons"] == p.get("reasons")
        assert logged[index]["decision"] == int(p["score"] >= 0.3)  # the log keeps the model's own decision
    reviews = pending_reviews(f"sqlite:///{tmp_path / 'log.db'}", limit=1000)
    assert sorted(r["row"] for r in reviews) == [i for i, p in enumerate(predictions) if p["decision"] == "refer"]
    assert {r["request_id"] for r in reviews} == {"batch-1"}
    # The same id again is refused, and no referral is doubled: both tables are one transaction.
    assert scorer.predict(_body((spec, result), n=300), {"x-request-id": "batch-1"}).status == 409
    with scorer.log.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(REVIEWS)).scalar_one() == len(referred)
    scorer.commits.close()


def test_sensitive_attributes_sent_for_monitoring_are_logged_and_never_change_the_score(tmp_path, trained):
    spec, result = trained
    spec = _spec_with(spec, monitoring__fairness={"groups_from": "request"})
    write_bundle(tmp_path, spec, {1: result.selected.pipeline}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    record = json.loads(_body((spec, result)))
    plain = scorer.predict(json.dumps(record).encode(), {}).body["predictions"][0]["score"]
    for sex in ("female", "male"):
        sent = scorer.predict(json.dumps({**record, "sex": sex, "age_band": "18-25"}).encode(), {})
        assert sent.status == 200 and sent.body["predictions"][0]["score"] == plain
    assert scorer.predict(json.dumps({**record, "sex": "other"}).encode(), {}).status == 422  # not a declared group
    logged = scorer.log.read()
    assert [r["inputs"].get("sex") for r in logged] == [None, "female", "male"]
    scorer.commits.close()


def test_an_older_log_without_the_reasons_column_is_read_and_written(tmp_path):
    import sqlalchemy as sa

    from keel.serving.prediction_log import PredictionLog

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # the table as the log wrote it before reasons were logged
        connection.execute(sa.text(
            "CREATE TABLE predictions (request_id VARCHAR(64) NOT NULL, row INTEGER NOT NULL, entity_id VARCHAR(128),"
            " time DATETIME NOT NULL, model_name VARCHAR(64) NOT NULL, model_version INTEGER NOT NULL,"
            " arm VARCHAR(32) NOT NULL, shadow BOOLEAN NOT NULL, inputs TEXT NOT NULL, score FLOAT NOT NULL,"
            " decision INTEGER NOT NULL, latency_ms FLOAT NOT NULL, PRIMARY KEY (request_id, row))"))
        connection.execute(sa.text(
            "INSERT INTO predictions VALUES ('old', 0, 'e', '2026-01-01 00:00:00', 'm', 1, 'champion', 0, '{}', 0.9, 1, 1.0)"))
    engine.dispose()
    from datetime import datetime, timezone

    log = PredictionLog(url)
    log.append([{"request_id": "new", "row": 0, "entity_id": "f", "time": datetime(2026, 1, 2, tzinfo=timezone.utc),
                 "model_name": "m", "model_version": 1, "arm": "champion", "shadow": False, "inputs": {},
                 "score": 0.8, "decision": 1, "latency_ms": 1.0,
                 "reasons": [{"feature": "x", "statement": "X too high", "contribution": 0.5}]}])
    old, new = log.read()
    assert old["reasons"] is None and new["reasons"][0]["statement"] == "X too high"


def test_a_feature_screened_as_a_proxy_is_never_a_reason(tmp_path, trained):
    import copy

    spec, result = trained
    model = copy.deepcopy(result.selected.pipeline)
    write_bundle(tmp_path, spec, {1: model}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    before = Scorer(tmp_path).predict(_body(trained, n=200), {}).body["predictions"]
    named = [r["feature"] for p in before if p["decision"] == 1 for r in p["reasons"]]
    commonest = max(set(named), key=named.count)
    model.reason_exclusions_ = [commonest]  # as keel.registry.load_version_model marks a flagged proxy
    write_bundle(tmp_path / "2", spec, {1: model}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log2.db'}", result.validation[spec.data.model_features])
    after = Scorer(tmp_path / "2").predict(_body(trained, n=200), {}).body["predictions"]
    assert [p["score"] for p in after] == [p["score"] for p in before]
    assert all(r["feature"] != commonest for p in after if p["decision"] == 1 for r in p["reasons"])
    assert all(p["reasons"] for p in after if p["decision"] == 1)


def test_a_category_added_after_the_champion_was_trained_is_refused_for_it_and_scored_by_the_challenger(
        tmp_path, trained):
    """A challenger trained under a spec that added `region: islands` waits for approval (all traffic to
    the champion): the champion would score `islands` as no region at all, so its entities get a 422;
    routed to the challenger, the same record is scored."""
    from keel.data.generator import generate_credit_applications

    spec, result = trained
    regions = spec.data.features["region"].categories + ["islands"]
    newer = _spec_with(spec, data__features={**spec.data.model_dump(mode="json")["features"],
                                             "region": {"type": "categorical", "categories": regions}})
    challenger = train_in_process(generate_credit_applications(spec.data.source), newer).selected.pipeline
    models = {1: result.selected.pipeline, 2: challenger}
    write_bundle(tmp_path, newer, models, {1: 0.3, 2: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    record = {**json.loads(_body(trained)), "region": "islands"}
    answer = scorer.predict(json.dumps(record).encode(), {})
    assert answer.status == 422 and scorer.log.count() == 0
    [error] = answer.body["errors"]
    assert (error["field"], error["found"]) == ("region", "islands") and "v1 serves this entity" in error["problem"]
    [refused] = _refusals(scorer)  # invisible to monitoring as a prediction: logged as refused
    assert [(e["field"], e["found"]) for e in json.loads(refused["errors"])] == [("region", "islands")]
    assert scorer.predict(json.dumps({**record, "region": "north"}).encode(), {}).status == 200
    import os
    import time
    write_routing(tmp_path, RoutingTable([Arm("challenger", 2, 1.0)], strategy="blue-green"))
    os.utime(tmp_path / "routing.json", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    answer = scorer.predict(json.dumps(record).encode(), {})
    assert answer.status == 200 and answer.body["predictions"][0]["model_version"] == 2
    # v1 in shadow: the record it cannot score is answered by v2 and not mirrored to v1; the others are.
    write_routing(tmp_path, RoutingTable([Arm("challenger", 2, 1.0)], shadow=Arm("champion", 1, 0.0),
                                         strategy="shadow"))
    os.utime(tmp_path / "routing.json", ns=(time.time_ns() + 2 * 10**9, time.time_ns() + 2 * 10**9))
    both = json.dumps({"records": [record, {**record, "region": "north"}]}).encode()
    answer = scorer.predict(both, {"x-request-id": "mirrored"})
    assert answer.status == 200 and [p["model_version"] for p in answer.body["predictions"]] == [2, 2]
    mirrored = [r for r in scorer.log.read() if r["request_id"] == "mirrored" and r["shadow"]]
    assert [(r["model_version"], r["row"]) for r in mirrored] == [(1, 3)]  # the second record, after the 2 served

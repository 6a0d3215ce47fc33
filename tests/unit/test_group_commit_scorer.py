"""The scorer's answers through the group commit, as the service awaits them: concurrent requests
all logged before their 200, a retried id refused with 409 even inside one group, and a log that
refuses its rows answered with 503 (nothing acknowledged), the scorer answering again once it
recovers."""

import asyncio
import json
import sqlite3

import pytest

from keel.deployment.bundle import write_bundle
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer
from keel.training.in_process import train_in_process


@pytest.fixture(scope="module")
def trained():
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=2000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=20"])
    return spec, train_in_process(generate_credit_applications(spec.data.source), spec)


@pytest.fixture
def scorer(tmp_path, trained):
    spec, result = trained
    write_bundle(tmp_path, spec, {1: result.selected.pipeline}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    yield scorer
    scorer.commits.close()


def _bodies(trained, n):
    spec, result = trained
    rows = json.loads(result.test[spec.data.model_features].head(n).to_json(orient="records"))
    return [json.dumps({**row, "entity_id": f"e{i}"}).encode() for i, row in enumerate(rows)]


async def _all(scorer, bodies, headers):
    return await asyncio.gather(*(scorer.predict_async(body, header) for body, header in zip(bodies, headers)))


def test_concurrent_requests_are_all_logged_before_they_are_answered(scorer, trained, tmp_path):
    bodies = _bodies(trained, 40)
    # A retry of r5 in the same burst. (r0 is not retried: the first request of a burst is alone on the
    # loop when it arrives and may join the queue after the others, keel.serving.group_commit.)
    headers = [{"x-request-id": f"r{i}"} for i in range(39)] + [{"x-request-id": "r5"}]
    answers = asyncio.run(_all(scorer, bodies, headers))
    assert [a.status for a in answers] == [200] * 39 + [409]
    with sqlite3.connect(tmp_path / "log.db") as connection:
        logged = {r for (r,) in connection.execute("SELECT request_id FROM predictions")}
    assert logged == {f"r{i}" for i in range(39)}
    assert answers[-1].body["errors"][0]["field"] == "X-Request-ID"
    # One worker writing its own SQLite log: the groups were committed on the loop, several requests each.
    assert scorer.commits.on_loop and scorer.commits._writer is None and scorer.commits.groups < 20


def test_a_log_shared_by_several_workers_is_committed_by_the_writer_thread(tmp_path, trained):
    """Another worker may hold the SQLite file's write lock: the loop must not wait for it."""
    spec, result = trained
    two = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"workers": 2})})
    write_bundle(tmp_path, two, {1: result.selected.pipeline}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                 f"sqlite:///{tmp_path / 'log.db'}", result.validation[spec.data.model_features])
    scorer = Scorer(tmp_path)
    try:
        bodies = _bodies(trained, 10)
        answers = asyncio.run(_all(scorer, bodies, [{"x-request-id": f"w{i}"} for i in range(10)]))
        assert [a.status for a in answers] == [200] * 10
        assert not scorer.commits.on_loop and scorer.commits._writer is not None
    finally:
        scorer.commits.close()


def test_a_log_that_refuses_the_rows_gets_503_and_nothing_is_acknowledged(scorer, trained, tmp_path):
    [body] = _bodies(trained, 1)
    with sqlite3.connect(tmp_path / "log.db") as connection:
        connection.execute("DROP TABLE predictions")
    answer = scorer.predict(body, {"x-request-id": "lost-1"})
    assert answer.status == 503 and answer.body["errors"][0]["found"] == "lost-1"
    assert "nothing was acknowledged" in answer.body["errors"][0]["problem"]
    assert asyncio.run(_all(scorer, [body], [{}]))[0].status == 503
    PredictionLog(f"sqlite:///{tmp_path / 'log.db'}")  # the table is back
    assert scorer.predict(body, {"x-request-id": "lost-1"}).status == 200  # the same id, now acknowledged

"""Principal reasons of concurrent requests are given beside the event loop: the same answers and log
rows as one request at a time, and a request that owes none is not held up by another's TreeSHAP."""

import asyncio
import json
import sqlite3
import time

import pytest

from keel.deployment.bundle import write_bundle
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


@pytest.fixture(scope="module")
def boosted(trained):
    """The fixture's candidate, LightGBM, whatever won the selection (trees to split in two halves)."""
    from keel.training.fit import fit_candidate

    spec, result = trained
    pipeline = fit_candidate(result.selected.pipeline.named_steps["features"], result.train, result.validation,
                             spec.data, spec.training)[0].pipeline
    assert hasattr(pipeline.named_steps["model"], "booster_")
    return pipeline


def _scorer(folder, trained, pipeline=None) -> Scorer:
    spec, result = trained
    write_bundle(folder, spec, {1: pipeline or result.selected.pipeline}, {1: 0.3},
                 RoutingTable([Arm("champion", 1, 1.0)]), f"sqlite:///{folder / 'log.db'}",
                 result.validation[spec.data.model_features])
    return Scorer(folder)


def _bodies(trained, n):
    spec, result = trained
    rows = json.loads(result.test[spec.data.model_features].head(n).to_json(orient="records"))
    return [json.dumps({**row, "entity_id": f"e{i}"}).encode() for i, row in enumerate(rows)]


def _logged(folder):
    with sqlite3.connect(folder / "log.db") as connection:
        return sorted(connection.execute("SELECT request_id, row, score, decision, reasons FROM predictions"))


def test_concurrent_requests_get_the_reasons_and_log_rows_of_requests_answered_alone(tmp_path, trained):
    bodies = _bodies(trained, 60)
    headers = [{"x-request-id": f"r{i}"} for i in range(len(bodies))]
    alone, together = _scorer(tmp_path / "alone", trained), _scorer(tmp_path / "together", trained)
    try:
        one_by_one = [alone.predict(body, header) for body, header in zip(bodies, headers)]

        async def all_at_once():
            return await asyncio.gather(*(together.predict_async(b, h) for b, h in zip(bodies, headers)))

        concurrent = asyncio.run(all_at_once())
    finally:
        alone.commits.close()
        together.commits.close()
    assert [a.status for a in concurrent] == [200] * len(bodies)
    assert [a.body for a in concurrent] == [a.body for a in one_by_one]
    declined = [p for a in concurrent for p in a.body["predictions"] if p.get("reasons")]
    assert len(declined) >= 5  # the comparison covers reasons, not only approvals
    assert together._reasons_pool is not None  # given on the reasons thread
    assert _logged(tmp_path / "together") == _logged(tmp_path / "alone")


class _SlowReasons:
    """A version's reason giver taking as long as a large model's TreeSHAP would."""

    def __init__(self, giver, seconds):
        self.giver, self.seconds = giver, seconds

    def for_records(self, records, beside=None):
        time.sleep(self.seconds)
        return self.giver.for_records(records, beside)


def test_a_request_owing_no_reasons_is_answered_while_another_request_s_reasons_are_given(tmp_path, trained):
    scorer = _scorer(tmp_path, trained)
    try:
        answers = {body: scorer.score(body, {}).body["predictions"][0] for body in _bodies(trained, 60)}
        approved = next(b for b, p in answers.items() if p["decision"] == 0)
        declined = next(b for b, p in answers.items() if p["decision"] == 1)
        # Slow from here on: the 60 requests above only found one of each decision.
        scorer.reason_givers = {1: _SlowReasons(scorer.reason_givers[1], 0.6)}
        finished = {}

        async def timed(name, body):
            answer = await scorer.predict_async(body, {})
            finished[name] = time.perf_counter()
            return answer

        async def both():
            return await asyncio.gather(timed("approved", approved), timed("declined", declined))

        started = time.perf_counter()
        answered = asyncio.run(both())
    finally:
        scorer.commits.close()
    assert [a.status for a in answered] == [200, 200]
    assert answered[1].body["predictions"][0]["reasons"]  # the declined request got its reasons
    assert finished["declined"] - started >= 0.6
    assert finished["approved"] - started < 0.3  # not behind the other request's reasons


def test_a_declined_request_alone_has_its_trees_explained_in_two_halves_with_the_same_answer(tmp_path, trained,
                                                                                             boosted):
    bodies = _bodies(trained, 40)
    headers = [{"x-request-id": f"r{i}"} for i in range(len(bodies))]
    whole, split = _scorer(tmp_path / "whole", trained, boosted), _scorer(tmp_path / "split", trained, boosted)
    given = []
    try:
        expected = [whole.predict(body, header) for body, header in zip(bodies, headers)]  # one call, no thread
        assert split.reason_givers[1].halves is not None
        beside = split._reasons_thread()
        real_submit = beside.submit
        beside.submit = lambda *args, **kwargs: given.append(args[0]) or real_submit(*args, **kwargs)

        async def one_at_a_time():
            return [await split.predict_async(body, header) for body, header in zip(bodies, headers)]

        answered = asyncio.run(one_at_a_time())
    finally:
        whole.commits.close()
        split.commits.close()
    assert [a.body for a in answered] == [a.body for a in expected]
    declined = [p for a in answered for p in a.body["predictions"] if p.get("reasons")]
    assert len(declined) >= 5
    # Each declined request alone gave the second half of the trees to the reasons thread, nothing else did.
    assert len(given) == len(declined)
    assert _logged(tmp_path / "split") == _logged(tmp_path / "whole")

"""Group commit of the prediction log: concurrent requests share one transaction, each is
acknowledged only once its rows are durable, a duplicate id is refused alone, a failing store fails
the whole group loudly. Real SQLite files throughout."""

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from keel.clock import utc_now
from keel.serving.group_commit import GroupCommitter, LogUnavailable
from keel.serving.prediction_log import DuplicateRequest, PredictionLog


def _rows(request_id: str, n: int = 2) -> list:
    return [{"request_id": request_id, "row": i, "entity_id": f"{request_id}-{i}", "time": utc_now(),
             "model_name": "m", "model_version": 1, "arm": "champion", "shadow": False,
             "inputs": {"x": i, "label": "élan"}, "score": 0.5, "decision": 1, "latency_ms": 0.1}
            for i in range(n)]


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "predictions.db"
    PredictionLog(f"sqlite:///{path}")  # creates the tables
    return path


def _logged_ids(path) -> set:
    with sqlite3.connect(path) as connection:  # another connection: what a crash would leave
        return {r for (r,) in connection.execute("SELECT request_id FROM predictions")}


async def _every_caller_fails_once_the_store_refuses(committer, log_file) -> None:
    import asyncio

    with sqlite3.connect(log_file) as connection:
        connection.execute("DROP TABLE predictions")
    for outcome in await asyncio.gather(*[committer.commit(_rows(f"x{i}")) for i in range(3)],
                                        return_exceptions=True):
        assert isinstance(outcome, LogUnavailable)


def test_each_acknowledged_request_is_already_in_the_log(log_file):
    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"))
    missing = []

    def request(i):
        committer.append(_rows(f"r{i}"))
        if f"r{i}" not in _logged_ids(log_file):
            missing.append(i)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(request, range(200)))
    committer.close()
    assert missing == []
    assert len(_logged_ids(log_file)) == 200 and committer.requests == 200


def test_requests_queued_during_a_commit_share_the_next_one(log_file):
    """While another writer holds the database, 30 requests queue; they are then committed in at
    most two transactions, not thirty, and `on_commit` hears each transaction's request count."""
    sizes = []
    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"), on_commit=sizes.append)
    blocker = sqlite3.connect(log_file, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the write lock: the committer waits (busy timeout)
    futures = [committer.submit(_rows(f"q{i}")) for i in range(30)]
    threading.Event().wait(0.3)
    assert not any(f.done() for f in futures)  # nothing acknowledged before it is durable
    blocker.execute("COMMIT")
    assert [f.result(timeout=30) for f in futures] == [2] * 30
    assert committer.groups <= 2 and len(sizes) == committer.groups and sum(sizes) == 30
    committer.close()
    blocker.close()


def test_a_duplicate_request_id_is_refused_alone(log_file):
    log = PredictionLog(f"sqlite:///{log_file}")
    log.append(_rows("seen-before"))
    outcomes = log.append_requests([_rows("a"), _rows("seen-before"), _rows("b"), _rows("a", 1)])
    assert [type(o).__name__ if o else None for o in outcomes] == [None, "DuplicateRequest", None,
                                                                   "DuplicateRequest"]
    assert _logged_ids(log_file) == {"seen-before", "a", "b"}
    assert sorted(r["row"] for r in log.read() if r["request_id"] == "a") == [0, 1]  # the first "a" kept
    committer = GroupCommitter(log)
    with pytest.raises(DuplicateRequest):
        committer.append(_rows("b"))
    assert committer.append(_rows("c")) == 2  # and the writer keeps committing
    committer.close()


def test_a_store_that_refuses_the_rows_fails_every_request_of_the_group(log_file):
    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"))
    with sqlite3.connect(log_file) as connection:
        connection.execute("DROP TABLE predictions")  # the store now refuses every insert
    futures = [committer.submit(_rows(f"lost{i}")) for i in range(5)]
    for future in futures:
        with pytest.raises(LogUnavailable, match="could not commit"):
            future.result(timeout=30)
    committer.close()


def test_close_commits_what_is_queued(log_file):
    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"))
    futures = [committer.submit(_rows(f"c{i}")) for i in range(50)]
    committer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(_logged_ids(log_file)) == 50


def test_requests_awaiting_on_an_event_loop_are_acknowledged_once_durable_and_grouped(log_file):
    """`commit` on an event loop: 30 requests queued while another writer holds the database are
    none of them answered before their group is durable, then all answered from few groups; a
    duplicate among them fails alone, a refusing store fails each caller, and a caller that gave up
    (cancelled) does not stop the others."""
    import asyncio

    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"))
    blocker = sqlite3.connect(log_file, isolation_level=None)

    async def run():
        blocker.execute("BEGIN IMMEDIATE")
        tasks = [asyncio.ensure_future(committer.commit(_rows(f"a{i}"))) for i in range(30)]
        duplicate = asyncio.ensure_future(committer.commit(_rows("a3")))
        given_up = asyncio.ensure_future(committer.commit(_rows("gone")))
        await asyncio.sleep(0.3)
        assert not any(t.done() for t in tasks) and _logged_ids(log_file) == set()
        given_up.cancel()
        blocker.execute("COMMIT")
        assert await asyncio.gather(*tasks) == [2] * 30
        with pytest.raises(DuplicateRequest):
            await duplicate
        assert {f"a{i}" for i in range(30)} | {"gone"} == _logged_ids(log_file)  # committed, unanswered
        assert committer.groups <= 2 and await committer.commit([]) == 0
        await _every_caller_fails_once_the_store_refuses(committer, log_file)

    asyncio.run(run())
    committer.close()
    blocker.close()


def test_a_lone_request_commits_on_its_loop_and_is_durable_when_answered(log_file):
    """`alone=True`: the rows are committed on the caller's own thread (no writer thread is started)
    and are in the log when `commit` returns; a duplicate or a refusing store is raised as for a group."""
    import asyncio

    sizes = []
    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"), on_commit=sizes.append)

    async def run():
        for i in range(3):
            assert await committer.commit(_rows(f"lone{i}"), alone=True) == 2
            assert f"lone{i}" in _logged_ids(log_file)
        with pytest.raises(DuplicateRequest):
            await committer.commit(_rows("lone1"), alone=True)
        with sqlite3.connect(log_file) as connection:
            connection.execute("DROP TABLE predictions")
        with pytest.raises(LogUnavailable):
            await committer.commit(_rows("lost"), alone=True)

    asyncio.run(run())
    assert committer._writer is None and committer.requests == 5 and sizes == [1] * 5
    committer.close()


def test_a_lone_request_joins_the_queue_while_the_writer_is_committing(log_file):
    """While the writer thread commits a group (here: waiting for another writer's lock), a request
    that is alone on its loop does not commit beside it: it joins the queue and the next group."""
    import asyncio

    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"))
    blocker = sqlite3.connect(log_file, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    held = committer.submit(_rows("held"))
    for _ in range(300):  # the writer has taken `held` and waits for the database
        if committer._committing.locked():
            break
        threading.Event().wait(0.01)

    async def run():
        lone = asyncio.ensure_future(committer.commit(_rows("lone"), alone=True))
        await asyncio.sleep(0.3)
        assert not lone.done() and not held.done()  # the writer holds the commit; the loop is free
        blocker.execute("COMMIT")
        assert await lone == 2

    asyncio.run(run())
    assert held.result(timeout=30) == 2 and _logged_ids(log_file) == {"held", "lone"}
    committer.close()
    blocker.close()


def test_on_its_loop_the_requests_of_one_turn_share_a_transaction_answered_once_durable(log_file):
    """`on_loop=True` (a log this process alone writes): the requests that reach their commit in one
    turn of the loop are committed together at the next (at most `max_group_rows` rows a transaction),
    each answered only once its rows are in the log; a duplicate id fails alone, a refusing store fails
    each caller, and no writer thread is started."""
    import asyncio

    sizes = []
    committer = GroupCommitter(PredictionLog(f"sqlite:///{log_file}"), on_commit=sizes.append, on_loop=True,
                               max_group_rows=20)

    async def run():
        answered_before_durable = []

        async def request(name):
            await committer.commit(_rows(name))
            if name not in _logged_ids(log_file):
                answered_before_durable.append(name)

        await asyncio.gather(*(request(f"t{i}") for i in range(30)))
        assert answered_before_durable == []
        outcomes = await asyncio.gather(committer.commit(_rows("d")), committer.commit(_rows("d")),
                                        return_exceptions=True)
        assert outcomes[0] == 2 and isinstance(outcomes[1], DuplicateRequest)
        await _every_caller_fails_once_the_store_refuses(committer, log_file)

    asyncio.run(run())
    assert sizes[:3] == [10, 10, 10]  # 30 requests of 2 rows: three transactions of 20 rows
    assert sizes[3:] == [2, 3] and committer._writer is None
    committer.close()

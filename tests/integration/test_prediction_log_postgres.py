"""The prediction log in a real PostgreSQL server (Debian's, started on 127.0.0.1): group commit with
every acknowledged request durable, a duplicate id refused alone, and monitoring reading the same
predictions from it as from SQLite. The killed-service test against it is in test_serving_http.py."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from keel.monitoring.windows import prediction_span, read_predictions
from keel.serving.group_commit import GroupCommitter
from keel.serving.prediction_log import DuplicateRequest, PredictionLog
from tests.support.postgres import postgresql_server
from tests.unit.test_group_commit import _rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres():
    with postgresql_server() as server:
        yield server


def _logged_ids(url: str) -> set:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:  # another client
        return {r for (r,) in connection.execute("SELECT request_id FROM predictions")}


def test_group_commit_acknowledges_only_durable_requests(postgres):
    committer = GroupCommitter(PredictionLog(postgres.url))
    missing = []

    def request(i):
        committer.append(_rows(f"pg{i}"))
        if f"pg{i}" not in _logged_ids(postgres.url):
            missing.append(i)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(request, range(120)))
    assert missing == [] and committer.groups < committer.requests == 120  # several requests per commit
    with pytest.raises(DuplicateRequest):
        committer.append(_rows("pg7"))
    assert committer.append(_rows("pg-after")) == 2
    committer.close()


def test_a_duplicate_in_a_group_is_refused_alone(postgres):
    log = PredictionLog(postgres.url)
    log.append(_rows("dup-before"))
    outcomes = log.append_requests([_rows("dup-a"), _rows("dup-before"), _rows("dup-a", 1), _rows("dup-b")])
    assert [o is None for o in outcomes] == [True, False, False, True]
    assert {"dup-a", "dup-b", "dup-before"} <= _logged_ids(postgres.url)


def test_monitoring_reads_the_same_predictions_from_postgresql_as_from_sqlite(postgres, tmp_path):
    rows = [_rows(f"same-{i}", 3) for i in range(10)]
    sqlite = f"sqlite:///{tmp_path / 'predictions.db'}"
    frames = []
    for url in (postgres.url, sqlite):
        log = PredictionLog(url)
        log.append_requests(rows)
        frame = read_predictions(url, exclude_entity_prefixes=["same-9"])
        frames.append(frame[frame["entity_id"].str.startswith("same-")].reset_index(drop=True))
        count, first, last = prediction_span(url)
        assert count >= 30 and first <= last and first.tzinfo is not None
    on_postgres, on_sqlite = frames
    assert len(on_postgres) == 27  # the excluded prefix left out
    assert on_postgres.astype(str).equals(on_sqlite.astype(str))


def _open_at_once(workers: int, url: str, **options) -> tuple:
    """(the logs opened, the errors raised) by `workers` threads opening the log at `url` at the same
    moment, as the service's workers do when they start together."""
    import threading

    opened, errors, start = [], [], threading.Barrier(workers)

    def open_log():
        start.wait()
        try:
            opened.append(PredictionLog(url, **options))
        except Exception as error:  # noqa: BLE001 — what a worker's start-up would die of
            errors.append(error)

    threads = [threading.Thread(target=open_log) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return opened, errors


def test_workers_opening_an_empty_database_at_once_all_get_the_log(postgres):
    """Two service workers start together: both may try to create the tables; neither fails."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="keel", dbname="postgres",
                         autocommit=True) as connection:
        connection.execute("CREATE DATABASE racing")
    url = postgres.url.rsplit("/", 1)[0] + "/racing"
    opened, errors = _open_at_once(6, url)
    assert errors == [] and len(opened) == 6
    assert opened[0].append(_rows("after-race")) == 2


def test_an_older_log_gets_the_reasons_column_and_referrals_commit_with_their_group(postgres):
    """A log written before reasons were logged is altered in place by the workers that open it (at once);
    a group commit writes the referrals of its requests in the same transaction (issue 19)."""
    import psycopg

    from keel.serving.reviews import pending_reviews

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="keel", dbname="postgres",
                         autocommit=True) as connection:
        connection.execute("CREATE DATABASE older")
    url = postgres.url.rsplit("/", 1)[0] + "/older"
    PredictionLog(url).append(_rows("before"))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute("ALTER TABLE predictions DROP COLUMN reasons")  # as the log was before issue 19
    opened, errors = _open_at_once(4, url, refer_band=(0.4, 0.6))
    assert errors == [] and len(opened) == 4
    committer = GroupCommitter(opened[0])
    declined = [dict(row, score=0.9, reasons=[{"feature": "x", "statement": "X too high", "contribution": 0.3}])
                for row in _rows("declined")]
    for rows in (_rows("referred"), declined, _rows("referred")):  # the second "referred" is a duplicate
        committer.submit(rows)
    committer.close()
    logged = {(r["request_id"], r["row"]): r for r in opened[1].read()}
    assert logged[("before", 0)]["reasons"] is None and logged[("declined", 1)]["reasons"][0]["feature"] == "x"
    assert sorted((r["request_id"], r["row"]) for r in pending_reviews(url)) == [("referred", 0), ("referred", 1)]

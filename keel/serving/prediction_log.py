"""The prediction log: every served prediction, appended to a durable store through SQLAlchemy.

SQLite by default (WAL journal, `synchronous=FULL`: a committed row survives a crash of the
process or the machine); PostgreSQL for production (`postgresql+psycopg://user@host/db`); any
SQLAlchemy URL works. A request is answered only after its rows are committed, so an acknowledged
prediction is never lost; the service commits concurrent requests together
(`keel.serving.group_commit`: one transaction, one fsync, per group)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import sqlalchemy as sa

# Column widths MySQL and PostgreSQL enforce; the payload contract refuses longer ids up front.
MAX_REQUEST_ID_LENGTH = 64
MAX_ENTITY_ID_LENGTH = 128

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions", METADATA,
    sa.Column("request_id", sa.String(MAX_REQUEST_ID_LENGTH), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True),
    sa.Column("entity_id", sa.String(MAX_ENTITY_ID_LENGTH), index=True),
    sa.Column("time", sa.DateTime(timezone=True), index=True, nullable=False),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("arm", sa.String(32), nullable=False),
    sa.Column("shadow", sa.Boolean, nullable=False, default=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("decision", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    # The principal reasons of an unfavourable decision (JSON list), NULL for every other row. Added
    # after the first logs were written: `_add_missing_columns` gives an older table the column.
    sa.Column("reasons", sa.Text),
)
# Columns added to an existing log's table when it lacks them (name -> SQL type), oldest first.
ADDED_COLUMNS = {"reasons": "TEXT"}


ERRORS = sa.Table(
    "prediction_errors", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(MAX_REQUEST_ID_LENGTH), index=True),
    sa.Column("time", sa.DateTime(timezone=True), index=True, nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("arm", sa.String(32), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
)

# Scoring requests refused for their records' content (422: a category the model does not know, a value
# out of range, a field missing or unknown): no prediction is logged for them, so monitoring would not
# see that part of the traffic at all. One row per request, its field errors as JSON.
REFUSALS = sa.Table(
    "prediction_refusals", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(MAX_REQUEST_ID_LENGTH), index=True),
    sa.Column("time", sa.DateTime(timezone=True), index=True, nullable=False),
    sa.Column("errors", sa.Text, nullable=False),
)
# What a refusal keeps of its request: the first field errors, each value cut to this many characters.
REFUSAL_ERRORS_KEPT = 20
REFUSAL_VALUE_CHARACTERS = 200


def refusal_row(request_id: Optional[str], at: datetime, errors: Sequence[dict]) -> dict:
    """The logged form of a refused request: its first REFUSAL_ERRORS_KEPT field errors, each value as
    short text (a refused body may hold anything, of any size)."""
    kept = [{"field": str(e.get("field")), "problem": str(e.get("problem")),
             "found": None if e.get("found") is None else str(e.get("found"))[:REFUSAL_VALUE_CHARACTERS]}
            for e in list(errors)[:REFUSAL_ERRORS_KEPT]]
    return {"request_id": request_id, "time": at, "errors": json.dumps(kept)}


# Several service workers write one SQLite file: a writer waits for another's commit this long.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def encoded(rows: Iterable[dict]) -> List[dict]:
    """The rows as stored (inputs and reasons as JSON text); rows already encoded are kept."""
    return [row if _is_encoded(row) else _encoded(row) for row in rows]


def _is_encoded(row: dict) -> bool:
    return isinstance(row["inputs"], str) and "reasons" in row and (row["reasons"] is None
                                                                     or isinstance(row["reasons"], str))


def _encoded(row: dict) -> dict:
    inputs, reasons = row["inputs"], row.get("reasons")
    # Every row has every column: one executemany compiles its statement from the first row's keys.
    return dict(row, inputs=inputs if isinstance(inputs, str) else json.dumps(inputs, sort_keys=True, default=str),
                reasons=reasons if reasons is None or isinstance(reasons, str) else json.dumps(reasons))


def _create_tables(engine, attempts: int = 5) -> None:
    """Create the tables unless they exist. Several service workers start at once: two may both find
    no table and both create it; the loser's error (PostgreSQL: a duplicate type or table; SQLite:
    the table exists) means the table is there now, which the next check sees."""
    for attempt in range(attempts):
        try:
            METADATA.create_all(engine)
            _add_missing_columns(engine)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _add_missing_columns(engine) -> None:
    """An older log keeps being written and read: its predictions table gets the columns added since
    (nullable, so its rows read as before, with NULL there). Another worker adding the same column at
    the same time makes this one fail; the retry in `_create_tables` then finds it."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(PREDICTIONS.name)}
    for name, kind in ADDED_COLUMNS.items():
        if name not in present:
            with engine.begin() as connection:
                connection.execute(sa.text(f"ALTER TABLE {PREDICTIONS.name} ADD COLUMN {name} {kind}"))


def readable_log(log_url: str) -> bool:
    """Whether there is a prediction log to read: a SQLite file that does not exist is not created by reading."""
    from sqlalchemy.engine import make_url

    url = make_url(log_url)
    return not (url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists())


class PreparedInsert:
    """One table's INSERT compiled once by SQLAlchemy for the log's dialect, with each column's bind
    processor (SQLite's datetime text, booleans as integers): the DB-API rows SQLAlchemy's own
    execution would send, built without its per-statement work."""

    def __init__(self, table: sa.Table, dialect):
        compiled = table.insert().compile(dialect=dialect)
        self.sql = compiled.string
        # qmark/format dialects (SQLite) take tuples in `positiontup` order; named ones (psycopg) dicts.
        self.names: List[str] = list(compiled.positiontup or compiled.binds)
        self.positional = bool(compiled.positiontup)
        processors: List[Optional[Callable]] = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names]
        # A missing key takes the column's scalar default (`shadow`), as SQLAlchemy's insert would.
        defaults = {column.name: column.default.arg for column in table.c
                    if column.default is not None and column.default.is_scalar}
        self.columns = [(name, process, defaults.get(name)) for name, process in zip(self.names, processors)]

    def parameters(self, rows: Sequence[dict]) -> list:
        values = [[_bound(row.get(name, default), process) for name, process, default in self.columns]
                  for row in rows]
        return [tuple(v) for v in values] if self.positional else [dict(zip(self.names, v)) for v in values]


def _bound(value, process: Optional[Callable]):
    return value if process is None or value is None else process(value)


class DirectWriter:
    """The log's hot path: one DB-API connection, held, that inserts and commits with statements compiled
    once (`PreparedInsert`); about 0.1 ms less per commit than SQLAlchemy's Core execution
    (benchmarks/RESULTS.md). The connection is opened by the first commit (so in the process that
    commits, never inherited by a fork); after a failed commit it is rolled back and kept, or dropped when
    even that fails, and the next commit opens another."""

    def __init__(self, engine, tables: Sequence[sa.Table]):
        self.engine = engine
        self.inserts = {table.name: PreparedInsert(table, engine.dialect) for table in tables}
        self.integrity_error = engine.dialect.dbapi.IntegrityError
        self._lock = threading.Lock()  # one transaction at a time on the one connection
        self._connection = None

    def insert(self, rows_by_table: Sequence[Tuple[str, List[dict]]]) -> None:
        """Insert every table's rows and commit, in one transaction; raises the DB-API IntegrityError
        (nothing committed) when a key is taken, or the driver's error when the store refuses."""
        with self._lock:
            connection = self._connection or self.engine.raw_connection()
            self._connection = None
            try:
                cursor = connection.cursor()
                for table, rows in rows_by_table:
                    if rows:
                        prepared = self.inserts[table]
                        cursor.executemany(prepared.sql, prepared.parameters(rows))
                cursor.close()
                connection.commit()
            except BaseException:
                # As SQLAlchemy does: the transaction is rolled back and the connection kept; one that
                # cannot even roll back (the server went away) is discarded, the next commit opens another.
                try:
                    connection.rollback()
                except BaseException:
                    connection.invalidate()
                else:
                    self._connection = connection
                raise
            self._connection = connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class DuplicateRequest(ValueError):
    """The log already holds predictions under this request id (a retried X-Request-ID)."""


class PredictionLog:
    """The log's writer and reader. With a `refer_band`, the predictions scored inside it are written to
    the review queue (keel.serving.reviews) in the same transaction as themselves."""

    def __init__(self, url: str, refer_band: Optional[Tuple[float, float]] = None,
                 unreferred_prefixes: Sequence[str] = ()):
        from keel.serving.reviews import REVIEWS, referral_rows  # its table joins METADATA: created with the others

        self.refer_band = refer_band
        self.unreferred_prefixes = tuple(unreferred_prefixes)  # entities never referred to a person (probes)
        self._referral_rows, self._reviews = referral_rows, REVIEWS.name
        self.engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        _create_tables(self.engine)
        self.writer = DirectWriter(self.engine, [PREDICTIONS, REVIEWS])

    def append(self, rows: Iterable[dict]) -> int:
        """Commit the rows (one transaction); returns how many. Raises if the store refuses them."""
        rows = encoded(rows)
        if not rows:
            return 0
        try:
            self._insert(rows)
        except self.writer.integrity_error as error:
            raise DuplicateRequest(f"request id {rows[0]['request_id']!r} is already in the log") from error
        return len(rows)

    def append_requests(self, requests: Sequence[List[dict]]) -> List[Optional[DuplicateRequest]]:
        """Commit the rows of several requests in one transaction (a group commit); per request,
        None (committed) or the DuplicateRequest that kept it out (its id was logged before, or twice
        in the group: the first is kept). Raises, committing nothing, if the store refuses them."""
        pending = list(range(len(requests)))
        outcomes: List[Optional[DuplicateRequest]] = [None] * len(requests)
        stored = [encoded(rows) for rows in requests]
        while pending:
            try:
                self._insert([row for i in pending for row in stored[i]])
                return outcomes
            except self.writer.integrity_error:
                # Rare (a retried X-Request-ID): find the requests already logged, commit the others.
                ids = [requests[i][0]["request_id"] for i in pending]
                with self.engine.connect() as connection:
                    taken = set(connection.execute(sa.select(PREDICTIONS.c.request_id).distinct()
                                                   .where(PREDICTIONS.c.request_id.in_(ids))).scalars())
                kept = []
                for i, request_id in zip(pending, ids):
                    if request_id in taken:
                        outcomes[i] = DuplicateRequest(f"request id {request_id!r} is already in the log")
                    else:
                        taken.add(request_id)
                        kept.append(i)
                if len(kept) == len(pending):  # not a duplicate id: another constraint refused the rows
                    raise
                pending = kept
        return outcomes

    def _insert(self, rows: List[dict]) -> None:
        """The predictions and, with a refer band, their referrals (keel.serving.reviews): committed
        together or not at all."""
        referrals = (self._referral_rows(rows, self.refer_band, self.unreferred_prefixes)
                     if self.refer_band is not None else [])
        self.writer.insert([(PREDICTIONS.name, rows), (self._reviews, referrals)])

    def close(self) -> None:
        """Close the held connection and the engine's pool (a service reloaded onto another log)."""
        self.writer.close()
        self.engine.dispose()

    def append_error(self, row: dict) -> None:
        """A model that failed on a request (the caller was answered by another arm, or got a 5xx)."""
        with self.engine.begin() as connection:
            connection.execute(ERRORS.insert(), [row])

    def append_refusal(self, row: dict) -> None:
        """A scoring request refused for its records' content (`refusal_row`)."""
        with self.engine.begin() as connection:
            connection.execute(REFUSALS.insert(), [row])

    def read_errors(self, since: Optional[datetime] = None) -> List[dict]:
        query = sa.select(ERRORS).order_by(ERRORS.c.id)
        if since is not None:
            query = query.where(ERRORS.c.time >= since)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def read(self, since: Optional[datetime] = None, include_shadow: bool = True) -> List[dict]:
        query = sa.select(PREDICTIONS).order_by(PREDICTIONS.c.time, PREDICTIONS.c.request_id, PREDICTIONS.c.row)
        if since is not None:
            query = query.where(PREDICTIONS.c.time >= since)
        if not include_shadow:
            query = query.where(PREDICTIONS.c.shadow.is_(False))
        with self.engine.connect() as connection:
            return [dict(row._mapping, inputs=json.loads(row.inputs),
                         reasons=None if row.reasons is None else json.loads(row.reasons))
                    for row in connection.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(PREDICTIONS)).scalar_one())



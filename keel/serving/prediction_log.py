"""The prediction log: every served prediction, appended to a durable store through SQLAlchemy.

SQLite by default (WAL journal, `synchronous=FULL`: a committed row survives a crash of the
process or the machine); any SQLAlchemy URL works. A request is answered only after its rows are
committed, so an acknowledged prediction is never lost."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable, List, Optional

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
)


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


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class DuplicateRequest(ValueError):
    """The log already holds predictions under this request id (a retried X-Request-ID)."""


class PredictionLog:
    def __init__(self, url: str):
        self.engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        METADATA.create_all(self.engine)

    def append(self, rows: Iterable[dict]) -> int:
        """Commit the rows (one transaction); returns how many. Raises if the store refuses them."""
        rows = [dict(row, inputs=json.dumps(row["inputs"], sort_keys=True, default=str)) for row in rows]
        if not rows:
            return 0
        try:
            with self.engine.begin() as connection:
                connection.execute(PREDICTIONS.insert(), rows)
        except sa.exc.IntegrityError as error:
            raise DuplicateRequest(f"request id {rows[0]['request_id']!r} is already in the log") from error
        return len(rows)

    def append_error(self, row: dict) -> None:
        """A model that failed on a request (the caller was answered by another arm, or got a 5xx)."""
        with self.engine.begin() as connection:
            connection.execute(ERRORS.insert(), [row])

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
            return [dict(row._mapping, inputs=json.loads(row.inputs)) for row in connection.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(PREDICTIONS)).scalar_one())



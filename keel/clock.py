"""keel's one notion of time: every moment it records or compares is timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A naive moment (SQLite returns them for UTC columns; users write them) is taken as UTC; an aware
    one is converted. whylogs and keel's comparisons want aware times."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def utc_from_epoch(seconds: float) -> datetime:
    """The UTC moment `seconds` after the epoch (a file's modification time, a heartbeat)."""
    return datetime.fromtimestamp(seconds, timezone.utc)

"""Production windows from the prediction log: read new predictions (read-only), profile them once
per UTC hour and model version, and merge hours into days and days into weeks from the stored
profiles, without rereading raw rows.

The store lives in `<deployment folder>/monitoring/`:
    hours/v<version>/<YYYY-MM-DDTHH>.bin   whylogs profiles of one hour's served predictions
    days/v<version>/<YYYY-MM-DD>.bin       merged hours of a complete day (written once)
    state.json                             the watermark: the newest prediction time profiled
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keel.clock import as_utc
from keel.files import write_atomically
from keel.monitoring.profiles import (Profile, ProfilePool, deserialize, empty_profile, merge_profiles, profile_bytes,
                                      serialize)

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
PREDICTION_COLUMNS = ("score", "decision")


def window_start(moment: datetime, window: str) -> datetime:
    """The UTC start of the hour, day or (ISO, Monday-first) week containing `moment`."""
    moment = as_utc(moment)
    if window == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day
    if window == "week":
        return day - timedelta(days=day.weekday())
    raise ValueError(f"unknown window {window!r}; expected one of {sorted(WINDOWS)}")


def _engine(url: str):
    import sqlalchemy as sa

    return sa.create_engine(url, future=True)


def _query(url: str, since: Optional[datetime], until: Optional[datetime], with_inputs: bool,
           exclude_entity_prefixes: Sequence[str]):
    """(engine, select of served predictions) or (None, None) when the log has no table yet."""
    import sqlalchemy as sa

    from keel.serving.prediction_log import PREDICTIONS as table

    engine = _engine(url)
    if not sa.inspect(engine).has_table(table.name):
        engine.dispose()
        return None, None
    # The time as the store gives it: SQLite's text is parsed below in one vectorised call, instead of
    # SQLAlchemy's per-row conversion (2 s per 1M rows); drivers that return datetimes return them.
    columns = [sa.type_coerce(table.c.time, sa.String).label("time"), table.c.entity_id, table.c.model_version,
               table.c.score, table.c.decision]
    if with_inputs:
        columns.append(table.c.inputs)
    query = sa.select(*columns).where(table.c.shadow.is_(False)).order_by(table.c.time)
    if since is not None:
        query = query.where(table.c.time > since)
    if until is not None:
        query = query.where(table.c.time <= until)
    for prefix in exclude_entity_prefixes:
        query = query.where(sa.not_(table.c.entity_id.startswith(prefix, autoescape=True)))
    return engine, query


def prediction_span(url: str, since: Optional[datetime] = None) -> Tuple[int, Optional[datetime], Optional[datetime]]:
    """(rows, first time, last time) of the log after `since`, shadow and probe rows included: read
    from the time index alone (a filtered count scans the whole table, ~1 s per 1M rows). Enough to
    decide whether a pass is large and where to cut it; each reader filters its own rows."""
    import sqlalchemy as sa

    from keel.serving.prediction_log import PREDICTIONS as table

    engine = _engine(url)
    try:
        if not sa.inspect(engine).has_table(table.name):
            return 0, None, None
        time = sa.type_coerce(table.c.time, sa.String)
        query = sa.select(sa.func.count(), sa.func.min(time), sa.func.max(time))
        if since is not None:
            query = query.where(table.c.time > since)
        with engine.connect() as connection:
            count, first, last = connection.execute(query).one()
    finally:
        engine.dispose()
    return int(count), _as_time(first), _as_time(last)


def _as_time(moment) -> Optional[datetime]:
    """A time as the store returns it (SQLite: text, since the query reads the column as text)."""
    return None if moment is None else as_utc(pd.Timestamp(moment).to_pydatetime())


def time_ranges(since: Optional[datetime], first: datetime, last: datetime, pieces: int) -> List[tuple]:
    """(after, up to and including) bounds that cut `since`..`last` into about `pieces` ranges of
    equal time, at whole hours (so an hour is mostly read by one worker)."""
    cuts = sorted({window_start(first + (last - first) * k / pieces, "hour") for k in range(1, pieces)})
    cuts = [cut for cut in cuts if first < cut < last]
    bounds = [since, *cuts, last]
    return list(zip(bounds[:-1], bounds[1:]))


def profile_log_range(url: str, since: Optional[datetime], until: datetime, exclude_entity_prefixes: Sequence[str],
                      columns: Sequence[str], batch_rows: int) -> Tuple[Dict[tuple, List[bytes]], Dict[tuple, int],
                                                                        Optional[datetime]]:
    """Read, parse and profile the served predictions in (`since`, `until`] by (model version, hour),
    in one process: a worker's share of a large pass (reading and parsing the log's JSON inputs
    costs as much as profiling them, so they are split across processes too)."""
    parts: Dict[tuple, List[bytes]] = {}
    counts: Dict[tuple, int] = {}
    newest = None
    for batch in iter_predictions(url, since, until, True, exclude_entity_prefixes, columns, batch_rows):
        for key, rows in _by_version_and_hour(batch):
            parts.setdefault(key, []).append(profile_bytes(monitored_columns(rows, columns), covers=key[1]))
            counts[key] = counts.get(key, 0) + len(rows)
        newest = batch["time"].max().to_pydatetime()
    return parts, counts, newest


def _by_version_and_hour(batch: pd.DataFrame) -> Iterator[Tuple[tuple, pd.DataFrame]]:
    hours = batch["time"].dt.floor("h")
    for (version, hour), rows in batch.groupby([batch["model_version"], hours], sort=True):
        yield (int(version), hour.to_pydatetime()), rows


def iter_predictions(url: str, since: Optional[datetime] = None, until: Optional[datetime] = None,
                     with_inputs: bool = True, exclude_entity_prefixes: Sequence[str] = (),
                     features: Optional[Sequence[str]] = None, batch_rows: int = 250_000) -> Iterator[pd.DataFrame]:
    """`read_predictions` in batches of `batch_rows`, oldest first (profiling starts on the first batch
    while the next one is read)."""
    engine, query = _query(url, since, until, with_inputs, exclude_entity_prefixes)
    if engine is None:
        return
    names = ["time", "entity_id", "model_version", "score", "decision"] + (["inputs"] if with_inputs else [])
    try:
        with engine.connect() as connection:
            # The DBAPI's plain tuples: no per-row Row objects (2 s per 1M rows); no column here needs
            # SQLAlchemy's result processing (the time comes as text or the driver's datetime).
            result = connection.execute(query)  # kept: it owns the cursor
            cursor = result.cursor
            while True:
                rows = cursor.fetchmany(batch_rows)
                if not rows:
                    break
                yield _frame(rows, names, with_inputs, features)
    finally:
        engine.dispose()


def _frame(rows: list, names: List[str], with_inputs: bool, features: Optional[Sequence[str]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=names)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    if with_inputs:
        inputs = _parse_inputs(frame.pop("inputs"))
        if features is not None:
            inputs = inputs.reindex(columns=list(features))
        frame = pd.concat([frame, inputs], axis=1)
    return frame


def read_predictions(url: str, since: Optional[datetime] = None, until: Optional[datetime] = None,
                     with_inputs: bool = True, exclude_entity_prefixes: Sequence[str] = (),
                     features: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Served (non-shadow) predictions with `since < time <= until`, oldest first: time (UTC),
    entity_id, model_version, score, decision and, with `with_inputs`, one column per input feature.

    Read-only: the log's schema is the serving layer's (`keel.serving.prediction_log`)."""
    batches = list(iter_predictions(url, since, until, with_inputs, exclude_entity_prefixes, features))
    if not batches:
        return _empty_predictions(features if with_inputs else ())
    return batches[0] if len(batches) == 1 else pd.concat(batches, ignore_index=True)


def _parse_inputs(texts: pd.Series) -> pd.DataFrame:
    """The JSON inputs of every row, parsed in one pass by Arrow's C++ reader (1M rows in ~1 s)."""
    import io

    import pyarrow.json as arrow_json

    payload = "\n".join(texts.tolist()).encode()
    table = arrow_json.read_json(io.BytesIO(payload))
    return table.to_pandas(strings_to_categorical=True)  # categories: what whylogs profiles fastest


def _empty_predictions(features: Optional[Iterable[str]]) -> pd.DataFrame:
    frame = pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "entity_id": pd.Series([], dtype=object),
                          "model_version": pd.Series([], dtype=int), "score": pd.Series([], dtype=float),
                          "decision": pd.Series([], dtype=int)})
    for name in features or ():
        frame[name] = pd.Series([], dtype=float)
    return frame


def _hour_key(start: datetime) -> str:
    return start.strftime("%Y-%m-%dT%H")


def _day_key(start: datetime) -> str:
    return start.strftime("%Y-%m-%d")


class WindowStore:
    """Hour profiles per model version, merged on demand into days and weeks."""

    def __init__(self, folder: Path, workers: int = 1, chunk_rows: int = 250_000, parallel_from_rows: int = 200_000):
        self.folder = Path(folder)
        self.workers, self.chunk_rows, self.parallel_from_rows = workers, chunk_rows, parallel_from_rows

    # --- state ----------------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.folder / "state.json"

    def watermark(self) -> Optional[datetime]:
        """The newest prediction time already profiled (None before the first run)."""
        try:
            return datetime.fromisoformat(json.loads(self._state_file.read_text())["watermark"])
        except (OSError, ValueError, KeyError):
            return None

    def _set_watermark(self, moment: datetime) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self._state_file, json.dumps({"watermark": as_utc(moment).isoformat()}))

    # --- hours ----------------------------------------------------------------------------------
    def _hour_file(self, version: int, start: datetime) -> Path:
        return self.folder / "hours" / f"v{version}" / f"{_hour_key(start)}.bin"

    def add_from_log(self, url: str, columns: Sequence[str], exclude_entity_prefixes: Sequence[str] = (),
                     batch_rows: int = 250_000, engine_pool=None) -> Dict[str, int]:
        """Profile the predictions served since the watermark straight from the log. A large pass
        (at least `parallel_from_rows`, more than one worker) is cut into time ranges that worker
        processes read, parse and profile on their own; a small one is read here, as one range.
        `engine_pool`: an engine's workers instead (`workers`, `call(function, *args)` -> future, a
        context manager; keel.engine.dask_monitoring.DaskPool), given time ranges whatever the size."""
        since = self.watermark()
        count, first, last = prediction_span(url, since)
        if first is None:
            return {}
        workers = engine_pool.workers if engine_pool is not None else (
            self.workers if count >= self.parallel_from_rows else 1)
        ranges = time_ranges(since, first, last, 2 * workers) if workers > 1 else [(since, last)]
        counts: Dict[tuple, int] = {}
        parts: Dict[tuple, list] = {}
        newest: List[datetime] = []
        with engine_pool if engine_pool is not None else ProfilePool(workers) as pool:
            shares = [pool.call(profile_log_range, url, after, until, tuple(exclude_entity_prefixes), list(columns),
                                batch_rows) for after, until in ranges]
            for share in shares:
                blobs, share_counts, share_newest = share.result()
                for key, found in blobs.items():
                    parts.setdefault(key, []).extend(deserialize(blob) for blob in found)
                    counts[key] = counts.get(key, 0) + share_counts[key]
                newest += [share_newest] if share_newest is not None else []
        self._merge_hours(parts)
        return self._advance(counts, max(newest, default=None))

    def _merge_hours(self, parts: Dict[tuple, List[Profile]]) -> None:
        """Merge new profiles into the stored hour profiles."""
        for (version, start), profiles in sorted(parts.items()):
            path = self._hour_file(version, start)
            stored = [deserialize(path.read_bytes())] if path.exists() else []
            _write(path, serialize(merge_profiles(stored + profiles)))

    def _advance(self, counts: Dict[tuple, int], newest: Optional[datetime]) -> Dict[str, int]:
        """Move the watermark to the newest profiled time; rows added per `v<version> <hour>`."""
        if newest is not None:
            self._set_watermark(newest)
        return {f"v{version} {_hour_key(start)}": rows for (version, start), rows in sorted(counts.items())}

    def hour_profiles(self, version: int, start: datetime, end: datetime) -> List[Profile]:
        profiles = []
        moment = window_start(start, "hour")
        while moment < end:
            path = self._hour_file(version, moment)
            if path.exists():
                profiles.append(deserialize(path.read_bytes()))
            moment += WINDOWS["hour"]
        return profiles

    # --- days and weeks -------------------------------------------------------------------------
    def day_profile(self, version: int, day: datetime) -> Optional[Profile]:
        """A day's profile: the stored one for a complete day, else its hours merged (and stored,
        once the watermark has passed the day's end, so the hours are never read again)."""
        day = window_start(day, "day")
        path = self.folder / "days" / f"v{version}" / f"{_day_key(day)}.bin"
        if path.exists():
            return deserialize(path.read_bytes())
        hours = self.hour_profiles(version, day, day + WINDOWS["day"])
        if not hours:
            return None
        merged = merge_profiles(hours)
        watermark = self.watermark()
        if watermark is not None and watermark >= day + WINDOWS["day"]:
            _write(path, serialize(merged))
        return merged

    def window_profile(self, version: int, window: str, start: datetime) -> Profile:
        """The profile of one hour, day or week (empty if nothing was served then)."""
        start = window_start(start, window)
        if window == "hour":
            parts = self.hour_profiles(version, start, start + WINDOWS["hour"])
        else:
            days = 1 if window == "day" else 7
            parts = [p for p in (self.day_profile(version, start + timedelta(days=d)) for d in range(days))
                     if p is not None]
        profile = merge_profiles(parts) if parts else empty_profile()
        profile.view.set_dataset_timestamp(start)  # the period covered, even if its first hours were quiet
        return profile


def monitored_columns(rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The columns profiled: the model's inputs, its score and decision (served or batch rows alike)."""
    frame = rows.reindex(columns=[*columns, *PREDICTION_COLUMNS])
    frame["decision"] = frame["decision"].astype(np.int64)
    return frame.reset_index(drop=True)


def _write(path: Path, blob: bytes) -> None:
    """A reader never sees half a profile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, blob)

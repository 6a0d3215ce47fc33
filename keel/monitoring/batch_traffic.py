"""Batch traffic in the monitoring windows: the rows `run.py score` scored, profiled by the prediction
log's own profiling code (`profile_bytes` over the monitored columns) while they are scored, kept apart
from the served (online) traffic so that `monitor --traffic online|batch|both` chooses what it judges,
and their (entity id, score, decision) kept for the delayed labels to join by id.

The store lives beside the online windows, in `<deployment folder>/monitoring/batches/`:
    <batch id>/hours/v<version>/<YYYY-MM-DDTHH>.bin   whylogs profiles of the rows scored in that hour
    <batch id>/predictions.parquet                    time, entity_id, model_version, score, decision
    <batch id>/batch.json                             what the batch holds (rows, hours, its input key)
A batch is gathered in `.<batch id>.<pid>.partial/` and published by one rename when its outputs are
published, so a killed batch leaves nothing the windows read; readers list published batches only.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keel.clock import as_utc, utc_now
from keel.files import publish_folder, write_atomically
from keel.monitoring.profiles import Profile, deserialize, merge_profiles, profile_bytes, serialize
from keel.monitoring.windows import monitored_columns, window_start

TRAFFIC_KINDS = ("online", "batch", "both")
BATCHES = "batches"
MARKER = "batch.json"
PREDICTIONS = "predictions.parquet"
PARTIAL = ".partial"
SEEN = "seen.json"  # the batches a monitoring pass has counted as new rows already


def includes(traffic: str, kind: str) -> bool:
    """Whether judging `traffic` (online, batch or both) takes `kind` (online or batch) into account."""
    if traffic not in TRAFFIC_KINDS:
        raise ValueError(f"unknown traffic {traffic!r}; expected one of {', '.join(TRAFFIC_KINDS)}")
    return traffic in (kind, "both")


def batch_entity_ids(batch_id: str, frame: pd.DataFrame, id_column: Optional[str]) -> pd.Series:
    """The entity id of each scored row, as text (the prediction log's ids are text): the spec's id
    column, else `<batch id>:<row>` (as the service names a record sent without an id)."""
    if id_column and id_column in frame.columns:
        ids = frame[id_column]
        return ids.where(ids.isna(), ids.astype(str)).reset_index(drop=True)
    return (batch_id + ":" + frame["row"].astype(str)).reset_index(drop=True)


def monitoring_rows(frame: pd.DataFrame, batch_id: str, id_column: Optional[str], model_version: int,
                    attributes: Sequence[str], now: datetime):
    """A scored chunk's monitoring rows as the batch's `predictions.parquet` keeps them (time, entity_id,
    model_version, score, decision, and the attributes sent for fairness as text), so that the delayed
    labels join them by id; an Arrow table."""
    import pyarrow as pa

    return pa.table({
        "time": pa.array([now] * len(frame), pa.timestamp("us", tz="UTC")),
        "entity_id": pa.array(batch_entity_ids(batch_id, frame, id_column), pa.string()),
        "model_version": pa.array(np.full(len(frame), int(model_version), dtype=np.int64)),
        "score": pa.array(frame["score"].to_numpy(dtype=float)),
        "decision": pa.array(frame["decision"].to_numpy(dtype=np.int64)),
        **{name: pa.array([None if v is None or v != v else str(v) for v in frame[name]]
                          if name in frame.columns else [None] * len(frame), pa.string())
           for name in attributes},
    })


def merge_hour(hours: Dict[datetime, Profile], hour: datetime, profile: Profile) -> None:
    """`profile` merged into the profile of its hour in `hours` (hour -> profile), or the first one there."""
    hours[hour] = merge_profiles([hours[hour], profile]) if hour in hours else profile


def profile_chunk(hours: Dict[datetime, Profile], frame: pd.DataFrame, features: Sequence[str],
                  hour: datetime) -> None:
    """A scored chunk's monitored columns (features, score, decision) profiled as of `hour` and merged
    into `hours`: a batch's profiles grow chunk by chunk, wherever the chunk was scored."""
    merge_hour(hours, hour, deserialize(profile_bytes(monitored_columns(frame, features), covers=hour)))


class BatchProfiler:
    """Gathers one batch's monitoring evidence as it is scored: pass it as score_batch's `on_chunk`
    (each chunk's scored rows: model features, id, score, decision). One profile per (model version,
    hour of scoring), merged chunk by chunk in memory (a profile is small whatever the rows), and the
    rows' ids, scores and decisions streamed to a Parquet file; nothing is visible until `publish`."""

    def __init__(self, monitoring_folder: Path, batch_id: str, model_version: int, features: Sequence[str],
                 id_column: Optional[str], key: dict, clock: Callable[[], datetime] = utc_now,
                 attributes: Sequence[str] = ()):
        self.folder = Path(monitoring_folder) / BATCHES
        # Sensitive attributes sent beside the features (monitoring.fairness.groups_from: request): kept
        # with each row's decision for production fairness, never profiled as features.
        self.attributes = list(attributes)
        self.batch_id, self.model_version = batch_id, int(model_version)
        self.features, self.id_column, self.key, self.clock = list(features), id_column, dict(key), clock
        self.staging = self.folder / f".{batch_id}.{os.getpid()}{PARTIAL}"
        self.hours: Dict[datetime, Profile] = {}
        self.rows = 0
        self.first: Optional[datetime] = None
        self.last: Optional[datetime] = None
        self._writer = None
        remove_abandoned(self.folder)
        self.staging.mkdir(parents=True, exist_ok=True)

    def __call__(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        now = as_utc(self.clock())
        profile_chunk(self.hours, frame, self.features, window_start(now, "hour"))
        self._append(frame, now)
        self.rows += len(frame)
        self.first = self.first or now
        self.last = now

    def add_profiled(self, hours: Dict[datetime, Profile], rows: int, first: Optional[datetime],
                     last: Optional[datetime]) -> None:
        """Profiles made elsewhere (the Dask engine's workers, whose rows' ids and scores they wrote into
        `staging` themselves), merged hour by hour into this batch's, as `__call__` merges its own."""
        for hour, profile in hours.items():
            merge_hour(self.hours, hour, profile)
        self.rows += rows
        self.first = min(filter(None, (self.first, first)), default=None)
        self.last = max(filter(None, (self.last, last)), default=None)

    def _append(self, frame: pd.DataFrame, now: datetime) -> None:
        import pyarrow.parquet as pq

        table = monitoring_rows(frame, self.batch_id, self.id_column, self.model_version, self.attributes, now)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.staging / PREDICTIONS, table.schema)
        self._writer.write_table(table)

    def publish(self, superseded: Iterable[str] = (), outputs: Optional[Dict[str, str]] = None) -> dict:
        """Make the batch visible to the windows and the labels (one rename), after its outputs were
        published. `superseded`: published batches of the same input, version and spec that never got
        a batch record (a job killed between the two), whose rows this batch scores again: removed, so
        no row is counted twice. `outputs`: the files the batch published (path -> fingerprint), kept
        in the marker so that a re-run after such a kill may replace them. Returns the batch's marker."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        hours: Dict[str, List[str]] = {}
        for hour, profile in sorted(self.hours.items()):
            path = self.staging / "hours" / f"v{self.model_version}" / f"{_hour_key(hour)}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, serialize(profile))
            hours.setdefault(f"v{self.model_version}", []).append(_hour_key(hour))
        marker = {"batch_id": self.batch_id, "model_version": self.model_version, "rows": self.rows,
                  "first": _iso(self.first), "last": _iso(self.last), "hours": hours, "key": self.key,
                  "outputs": dict(outputs or {}), "published_at": utc_now().isoformat()}
        write_atomically(self.staging / MARKER, json.dumps(marker, sort_keys=True))
        for batch_id in superseded:
            _remove(self.folder / batch_id, self.folder)
        final = self.folder / self.batch_id
        publish_folder(self.staging, final, aside=_aside(final, self.folder))
        return marker

    def abandon(self) -> None:
        """The batch failed: nothing of it reaches the windows."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        shutil.rmtree(self.staging, ignore_errors=True)


def _iso(moment: Optional[datetime]) -> Optional[str]:
    return None if moment is None else moment.isoformat()


def _hour_key(start: datetime) -> str:
    return start.strftime("%Y-%m-%dT%H")


def _aside(folder: Path, root: Path) -> Path:
    """Where a published batch goes out of sight before it is deleted: a partial folder of this
    process, which remove_abandoned deletes if the process dies first."""
    return root / f".{folder.name}.{os.getpid()}.removed{PARTIAL}"


def _remove(folder: Path, root: Path) -> None:
    """Take a published batch out of sight in one rename, then delete it."""
    if not folder.exists():
        return
    hidden = _aside(folder, root)
    os.replace(folder, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def remove_abandoned(folder: Path) -> List[str]:
    """Delete the partial folders of batches whose process is gone (killed jobs); a running job's stays.
    Returns the ids of those batches (their other leftovers may go too)."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if not (path.is_dir() and path.name.startswith(".") and path.name.endswith(PARTIAL)):
            continue
        pid = _pid_of(path.name)
        if pid is None or not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name[1:].rsplit(".", 2)[0])
    return removed


def _pid_of(name: str) -> Optional[int]:
    parts = name[1:-len(PARTIAL)].rsplit(".", 1)
    try:
        return int(parts[1]) if len(parts) == 2 else None
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# --- reading ---------------------------------------------------------------------------------------


def published_batches(monitoring_folder: Path) -> List[dict]:
    """The markers of every published batch, oldest first (a folder without its marker is skipped)."""
    folder = Path(monitoring_folder) / BATCHES
    if not folder.is_dir():
        return []
    markers = []
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            markers.append(json.loads((path / MARKER).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(markers, key=lambda marker: (marker.get("published_at") or "", marker["batch_id"]))


def unrecorded_same_input(monitoring_folder: Path, key: dict, recorded_ids: Iterable[str]) -> List[str]:
    """Published batches of the same input key whose batch never got its record (killed in between)."""
    recorded = set(recorded_ids)
    return [m["batch_id"] for m in published_batches(monitoring_folder)
            if m.get("key") == key and m["batch_id"] not in recorded]


def newest_batch_time(monitoring_folder: Path) -> Optional[datetime]:
    """When the newest published batch row was scored (None before any batch)."""
    times = [datetime.fromisoformat(m["last"]) for m in published_batches(monitoring_folder) if m.get("last")]
    return max(times, default=None)


def batch_window_profiles(monitoring_folder: Path, version: int, start: datetime, end: datetime) -> List[Profile]:
    """The hour profiles of `version`'s batch rows scored in [start, end), over every published batch."""
    folder = Path(monitoring_folder) / BATCHES
    start, end = as_utc(start), as_utc(end)
    profiles = []
    for marker in published_batches(monitoring_folder):
        for hour in marker.get("hours", {}).get(f"v{version}", []):
            moment = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=start.tzinfo)
            if start <= moment < end:
                profiles.append(deserialize((folder / marker["batch_id"] / "hours" / f"v{version}" / f"{hour}.bin")
                                            .read_bytes()))
    return profiles


def new_batch_rows(monitoring_folder: Path) -> Tuple[int, List[str]]:
    """(rows of the published batches no monitoring pass has counted yet, all published batch ids):
    pass the ids to `mark_counted` once the pass is recorded."""
    folder = Path(monitoring_folder) / BATCHES
    try:
        seen = set(json.loads((folder / SEEN).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        seen = set()
    markers = published_batches(monitoring_folder)
    return sum(int(m["rows"]) for m in markers if m["batch_id"] not in seen), [m["batch_id"] for m in markers]


def mark_counted(monitoring_folder: Path, batch_ids: Sequence[str]) -> None:
    folder = Path(monitoring_folder) / BATCHES
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / SEEN, json.dumps(sorted(set(batch_ids))))


def read_batch_predictions(monitoring_folder: Path, since: Optional[datetime] = None,
                           attributes: Sequence[str] = ()) -> pd.DataFrame:
    """The published batches' rows as the labels join them: time (UTC), entity_id (text), model_version,
    score, decision, and the sensitive `attributes` sent with them (None where a batch had none); with
    `since`, only rows scored after it. Oldest batch first."""
    import pyarrow.parquet as pq

    folder = Path(monitoring_folder) / BATCHES
    frames = []
    for marker in published_batches(monitoring_folder):
        if since is not None and marker.get("last") and datetime.fromisoformat(marker["last"]) <= as_utc(since):
            continue
        path = folder / marker["batch_id"] / PREDICTIONS
        if not path.exists():  # a batch with no scored row
            continue
        frame = pq.read_table(path).to_pandas()
        if since is not None:
            frame = frame[frame["time"] > pd.Timestamp(as_utc(since))]
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"),
                             "entity_id": pd.Series([], dtype=object), "model_version": pd.Series([], dtype=int),
                             "score": pd.Series([], dtype=float), "decision": pd.Series([], dtype=int),
                             **{name: pd.Series([], dtype=object) for name in attributes}})
    frame = pd.concat(frames, ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame.reindex(columns=["time", "entity_id", "model_version", "score", "decision", *attributes])

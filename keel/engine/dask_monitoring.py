"""The dask engine's monitoring work. Only profiles (whylogs' binary form, tens of KiB each) reach
the client; a worker holds one partition or one chunk at a time, so its memory depends on the
partition size, not on the number of rows.

- `monitor` on a dask stack: the served prediction log (SQL) is cut into time ranges (whole hours),
  one task per range on the workers (`DaskPool` handed to WindowStore.add_from_log), each reading,
  parsing and profiling its range in chunks (keel.monitoring.windows.profile_log_range, the local
  path's own code); the hour profiles are merged and stored here exactly as on the local engine.
  The workers must reach the log's database (a server URL, or an SQLite file on storage they share).
- Batch traffic needs no pass over raw rows at monitoring time: its rows are profiled while they
  are scored (on the workers, keel.engine.dask_scoring), and the monitor merges the stored hours.
- `profile_parquet`: predictions or batch outputs held as partitioned Parquet (a file, folder of
  parts or glob), one task per row group, merged (the benchmark's measurement). At most
  `IN_FLIGHT_PER_WORKER` tasks per worker are submitted at a time: a finished profile (about 400 KiB
  for 21 columns) waits on its worker until this process reads it, so submitting every row group at
  once let them pile up there when merging here fell behind.

A worker's memory stays flat over many row groups only with Arrow's system allocator
(ARROW_DEFAULT_MEMORY_POOL=system, read when the worker starts; keel.engine.cluster sets it on the
workers it starts): under Arrow's default mimalloc pool a worker kept 2-3 MiB per row group it
read (benchmarks/RESULTS.md, issue 17). Workers of an existing cluster need it in their environment."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence, Tuple

from keel.engine.dask_data import parquet_pieces
from keel.engine.spec import DaskEngine, EngineSpec
from keel.spec.data import FileSource


MERGE_EVERY = 16
IN_FLIGHT_PER_WORKER = 2  # one running, one queued: a worker never waits on this process's round trip


class DaskPool:
    """The engine's workers as WindowStore.add_from_log's pool: `call` submits a task (a future with
    `result()`), `workers` is how many there are (the log is cut into twice as many ranges)."""

    def __init__(self, client):
        from keel.engine.cluster import ordered_workers

        self.client = client
        self.workers = max(1, len(ordered_workers(client)))

    def __enter__(self) -> "DaskPool":
        return self

    def call(self, function, *args):
        return self.client.submit(function, *args, pure=False)

    def __exit__(self, *exc) -> None:
        pass  # the client belongs to keel.engine.cluster (shared by the process's steps)


def engine_pool(engine: Optional[EngineSpec]) -> Optional[DaskPool]:
    """The pool a monitoring pass profiles the log on: the dask engine's workers, or None (local)."""
    if not isinstance(engine, DaskEngine):
        return None
    from keel.engine.cluster import connect

    return DaskPool(connect(engine))


def _profile_piece(piece, schema, columns: Optional[Sequence[str]], covers: Optional[datetime]) -> Tuple[bytes, int]:
    from keel.monitoring.profiles import profile_bytes

    frame = piece.to_table(schema=schema, columns=list(columns) if columns else None).to_pandas()
    return profile_bytes(frame, covers), len(frame)


def profile_parquet(client, location: Path, columns: Optional[Sequence[str]] = None,
                    covers: Optional[datetime] = None):
    """(merged profile, rows, partitions) of the Parquet at `location` (file, directory, glob)."""
    from keel.engine.cluster import ordered_workers
    from keel.monitoring.profiles import deserialize, merge_profiles

    dataset, pieces = parquet_pieces(FileSource(kind="parquet", path=Path(location)))
    window = IN_FLIGHT_PER_WORKER * max(1, len(ordered_workers(client)))
    remaining = iter(pieces)

    def submit_next(in_flight: deque) -> None:
        piece = next(remaining, None)
        if piece is not None:
            in_flight.append(client.submit(_profile_piece, piece, dataset.schema, columns, covers, pure=False))

    in_flight: deque = deque()
    for _ in range(window):
        submit_next(in_flight)
    merged, pending, rows = None, [], 0
    while in_flight:  # read in partition order, so the merged profile does not depend on worker timing
        future = in_flight.popleft()
        blob, count = future.result()
        future.release()
        submit_next(in_flight)
        pending.append(deserialize(blob))
        rows += count
        if len(pending) == MERGE_EVERY:  # this process holds a few profiles, however many partitions
            merged = merge_profiles(([merged] if merged is not None else []) + pending)
            pending = []
    return merge_profiles(([merged] if merged is not None else []) + pending), rows, len(pieces)

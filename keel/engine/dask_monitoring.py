"""The dask engine's monitoring work: profiling a prediction log or batch output held as
partitioned Parquet, one whylogs profile per partition on the workers (keel's own fast profiling,
`keel.monitoring.profiles.profile_bytes`), merged here. Only the profiles (tens of KiB each) reach
the client: a worker holds one partition at a time, so its memory depends on the partition size,
not on the number of rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence, Tuple

from keel.engine.dask_data import parquet_pieces
from keel.spec.data import FileSource


def _profile_piece(piece, schema, columns: Optional[Sequence[str]], covers: Optional[datetime]) -> Tuple[bytes, int]:
    from keel.monitoring.profiles import profile_bytes

    frame = piece.to_table(schema=schema, columns=list(columns) if columns else None).to_pandas()
    return profile_bytes(frame, covers), len(frame)


def profile_parquet(client, location: Path, columns: Optional[Sequence[str]] = None,
                    covers: Optional[datetime] = None):
    """(merged profile, rows, partitions) of the Parquet at `location` (file, directory, glob)."""
    from dask import delayed

    from keel.monitoring.profiles import deserialize, merge_profiles

    dataset, pieces = parquet_pieces(FileSource(kind="parquet", path=Path(location)))
    futures = client.compute([delayed(_profile_piece)(piece, dataset.schema, columns, covers) for piece in pieces])
    profiles, rows = [], 0
    for future in futures:  # in order, each released once read
        blob, count = future.result()
        future.release()
        profiles.append(deserialize(blob))
        rows += count
    return merge_profiles(profiles), rows, len(pieces)

"""Content fingerprints: the same rows and columns give the same hash on any machine."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every cell (row order matters; the index does not)."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}:{dtype}\n".encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False, categorize=True)
    digest.update(row_hashes.to_numpy().tobytes())
    return digest.hexdigest()


def rows_difference(trained: pd.DataFrame, now: pd.DataFrame, id_column: str | None = None) -> str:
    """Why two frames' fingerprints differ, in rows: how many rows of `now` the trained rows do not hold
    and the reverse (by each row's content; up to three named by `id_column`, else by row number), and
    the columns only one of them has. Same rows both ways: only their order or types differ."""
    shared = [name for name in trained.columns if name in now.columns]
    parts = []
    for name, columns in (("columns added", [c for c in now.columns if c not in trained.columns]),
                          ("columns gone", [c for c in trained.columns if c not in now.columns])):
        if columns:
            parts.append(f"{name}: {', '.join(map(repr, columns))}")
    before = pd.util.hash_pandas_object(trained[shared], index=False, categorize=True).to_numpy()
    after = pd.util.hash_pandas_object(now[shared], index=False, categorize=True).to_numpy()
    for label, frame, own, other in (("not in the training data", now, after, before),
                                     ("of the training data no longer there", trained, before, after)):
        extra = np.flatnonzero(~np.isin(own, other))
        if len(extra):
            named = (frame[id_column].iloc[extra[:3]].astype(str).tolist() if id_column in frame.columns
                     else [f"row {i + 1}" for i in extra[:3]])
            parts.append(f"{len(extra)} row(s) {label} ({', '.join(named)}{', ...' if len(extra) > 3 else ''})")
    if not parts:
        return "the same rows, in another order or with other column types"
    return "; ".join(parts)

"""Content fingerprints: the same rows and columns give the same hash on any machine."""

from __future__ import annotations

import hashlib

import pandas as pd


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every cell (row order matters; the index does not)."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}:{dtype}\n".encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False, categorize=True)
    digest.update(row_hashes.to_numpy().tobytes())
    return digest.hexdigest()

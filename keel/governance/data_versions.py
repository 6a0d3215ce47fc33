"""Content-addressed data versions: each training run's validated rows as one Parquet file named by
its SHA-256 content fingerprint, under the active stack's artifact store. Identical data is stored
once; a model version's recorded fingerprint names its file."""

from __future__ import annotations

import io
import os
from typing import Dict, List

import pandas as pd

from keel import registration as keys
from keel.files import write_atomically

DATA_FOLDER = "keel-data"
ROOT_ENV = "KEEL_DATA_ROOT"  # overrides <artifact store>/keel-data


def data_root(model: str) -> str:
    from keel.governance.store import active_artifact_store_root

    root = os.environ.get(ROOT_ENV) or f"{active_artifact_store_root().rstrip('/')}/{DATA_FOLDER}"
    return f"{root.rstrip('/')}/{model}"


def data_version_uri(root: str, fingerprint: str) -> str:
    return f"{root.rstrip('/')}/{fingerprint}.parquet"


def store_data_version(frame: pd.DataFrame, fingerprint: str, root: str) -> tuple[str, bool]:
    """Write `frame` at its content address unless it is there already. Returns (uri, newly written)."""
    from zenml.io import fileio

    uri = data_version_uri(root, fingerprint)
    if fileio.exists(uri):
        return uri, False
    fileio.makedirs(root)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    try:
        if "://" in uri:
            _create_remote(uri, buffer.getvalue())
        else:
            write_atomically(uri, buffer.getvalue(), exclusive=True)
    except FileExistsError:  # another run stored the same content meanwhile: the same bytes' address
        return uri, False
    return uri, True


def _create_remote(uri: str, payload: bytes) -> None:
    """Write-then-rename through the artifact store's filesystem (s3://, gs://, ...): an object store
    has no folder to fsync nor hard links, so keel.files cannot serve it; the rename refuses a taken name."""
    from zenml.io import fileio

    pending = f"{uri}.pending-{os.getpid()}"
    with fileio.open(pending, "wb") as stream:
        stream.write(payload)
    try:
        fileio.rename(pending, uri, overwrite=False)
    except FileExistsError:
        fileio.remove(pending)
        raise


def load_data_version(uri: str) -> pd.DataFrame:
    from zenml.io import fileio

    with fileio.open(uri, "rb") as stream:
        return pd.read_parquet(io.BytesIO(stream.read()))


VERIFIED = "verified"


def verify_data_version(uri: str, fingerprint: str) -> str:
    """VERIFIED when the stored file's rows hash to `fingerprint` (the address it is stored at and the
    one its model versions recorded); otherwise what is wrong with it. Existence alone proves nothing:
    a file replaced or edited under the same name would still be "stored"."""
    from keel.data.fingerprint import fingerprint_frame

    try:
        found = fingerprint_frame(load_data_version(uri))
    except Exception as error:  # whatever the store or Parquet reader raised: not the data recorded
        return f"UNREADABLE ({type(error).__name__}: {str(error)[:200]})"
    return VERIFIED if found == fingerprint else f"CHANGED: its rows hash to {found}"


def list_data_versions(root: str, model_versions: List[dict]) -> List[dict]:
    """Each stored data version with its size, whether its rows still hash to its fingerprint
    (`content`), and the model versions whose metadata names it, plus fingerprints recorded by model
    versions but not stored (trained before versions were kept)."""
    from zenml.io import fileio

    stored: Dict[str, dict] = {}
    if fileio.exists(root):
        for name in sorted(str(n).rsplit("/", 1)[-1] for n in fileio.listdir(root)):
            if name.endswith(".parquet"):
                uri = f"{root.rstrip('/')}/{name}"
                stored[name[:-len(".parquet")]] = {"uri": uri, "bytes": fileio.size(uri)}
    by_fingerprint: Dict[str, List[int]] = {}
    for version in model_versions:
        fingerprint = version["metadata"].get(keys.DATA_FINGERPRINT)
        if fingerprint:
            by_fingerprint.setdefault(fingerprint, []).append(int(version["number"]))
    rows = []
    for fingerprint in sorted(set(stored) | set(by_fingerprint),
                              key=lambda f: min(by_fingerprint.get(f, [10**9]))):
        sources = {v["metadata"].get(keys.DATA_SOURCE) for v in model_versions
                   if v["metadata"].get(keys.DATA_FINGERPRINT) == fingerprint}
        rows.append({"fingerprint": fingerprint, "stored": fingerprint in stored,
                     "uri": stored.get(fingerprint, {}).get("uri"), "bytes": stored.get(fingerprint, {}).get("bytes"),
                     "content": verify_data_version(stored[fingerprint]["uri"], fingerprint)
                     if fingerprint in stored else None,
                     "model_versions": sorted(by_fingerprint.get(fingerprint, [])),
                     "sources": sorted(s for s in sources if s)})
    return rows

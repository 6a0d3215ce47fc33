"""A model version's lineage as keel shows it (registry metadata, training run, data version, commit),
drawn only from an audit trail whose hash chain verifies."""

from __future__ import annotations

from keel.governance.audit import TamperedTrail  # noqa: F401  (what verified_records raises)


def verified_records(model: str) -> list:
    """The model's audit records, only once the hash chain verifies; TamperedTrail otherwise."""
    from keel.governance.audit import verified_trail

    return verified_trail(model, "lineage drawn from it")[0]


def version_links(model: str, version: int, records: list) -> list:
    """(label, value) pairs of `version`'s lineage. LookupError when the active stack's registry does not
    hold `version` (InterruptedRegistration, one, when its registration never completed)."""
    from keel.governance.data_versions import data_root, data_version_uri, verify_data_version
    from keel.governance.lineage import version_lineage
    from keel.registration import DATA_FINGERPRINT
    from keel.registry import registered_metadata
    from zenml.io import fileio

    metadata = registered_metadata(model, version)
    fingerprint = metadata.get(DATA_FINGERPRINT)
    uri = data_version_uri(data_root(model), fingerprint) if fingerprint else None
    content = verify_data_version(uri, fingerprint) if uri and fileio.exists(uri) else None
    return version_lineage(model, version, metadata, records, uri, content)

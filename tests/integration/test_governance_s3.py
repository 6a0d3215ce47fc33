"""The audit trail and data versions on a stack whose artifact store is an S3 bucket (moto's S3
server on 127.0.0.1): records are objects in the bucket, create-only, and tampering with one is found."""

import json
import uuid

import pandas as pd
import pytest

from tests.support.servers import moto_s3_server

pytestmark = pytest.mark.integration

BUCKET = "keel-governance"


@pytest.fixture
def s3_stack(tmp_path):
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    previous = client.active_stack_model.id
    suffix = uuid.uuid4().hex[:8]
    with moto_s3_server(tmp_path / "moto") as s3:
        s3.create_bucket(BUCKET)
        store = client.create_stack_component(
            name=f"governance-s3-{suffix}", flavor="s3", component_type=StackComponentType.ARTIFACT_STORE,
            configuration={"path": f"s3://{BUCKET}/artifacts", "key": s3.access_key_id, "secret": s3.secret_access_key,
                           "client_kwargs": {"endpoint_url": s3.endpoint_url, "region_name": s3.region}})
        orchestrator = client.active_stack_model.components[StackComponentType.ORCHESTRATOR][0]
        stack = client.create_stack(name=f"governance-s3-{suffix}", components={
            StackComponentType.ARTIFACT_STORE: store.id, StackComponentType.ORCHESTRATOR: orchestrator.id})
        client.activate_stack(stack.id)
        try:
            yield s3
        finally:
            client.activate_stack(previous)


def test_audit_records_and_data_versions_live_in_the_bucket(s3_stack):
    from keel.data.fingerprint import fingerprint_frame
    from keel.governance.audit import audit_location, audit_store, record_event, record_name, verify
    from keel.governance.data_versions import data_root, load_data_version, store_data_version
    from keel.governance.store import FileioStore, RecordExists

    assert audit_location("bucket_model") == f"s3://{BUCKET}/artifacts/keel-audit/bucket_model"
    store = audit_store("bucket_model")
    assert isinstance(store, FileioStore)
    for version in (1, 2, 3):
        record_event("evaluated", "bucket_model", version, details={"decision": "promote", "roc_auc": 0.81})
    assert verify(store).ok and verify(store).records == 3
    keys = s3_stack.keys(BUCKET)
    assert [k for k in keys if "keel-audit" in k] == [f"artifacts/keel-audit/bucket_model/{record_name(n)}" for n in (1, 2, 3)]
    assert json.loads(store.read(record_name(1)))["actor"].startswith("zenml:")
    with pytest.raises(RecordExists):
        store.create(record_name(2), b"{}")
    # A writer that passed the existence check just before another one created the record loses at
    # the write itself: S3's conditional put (If-None-Match) refuses to replace the object.
    from zenml.io import fileio

    before = store.read(record_name(3))
    with pytest.raises(OSError, match="(?i)pre-?condition"):
        with fileio.open(f"{store.location}/{record_name(3)}", "xb") as stream:
            stream.write(b"{}")
    assert store.read(record_name(3)) == before
    # Even a writer working from a stale listing (no cache refresh) cannot replace another's record.
    stale = FileioStore(store.location)
    assert stale.names() == [record_name(n) for n in (1, 2, 3)]
    s3_stack.client().put_object(Bucket=BUCKET, Key=f"artifacts/keel-audit/bucket_model/{record_name(4)}", Body=b"theirs")
    with pytest.raises(RecordExists):
        stale.create(record_name(4), b"ours")
    assert store.read(record_name(4)) == b"theirs"
    s3_stack.client().delete_object(Bucket=BUCKET, Key=f"artifacts/keel-audit/bucket_model/{record_name(4)}")

    # Someone edits one byte of record 2 in the bucket: verify names it.
    client = s3_stack.client()
    key = f"artifacts/keel-audit/bucket_model/{record_name(2)}"
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b"0.81", b"0.91"))
    result = verify(audit_store("bucket_model"))
    assert not result.ok and result.bad_record == record_name(2)

    frame = pd.DataFrame({"income": [1.0, 2.5], "region": ["north", "south"]})
    uri, written = store_data_version(frame, fingerprint_frame(frame), data_root("bucket_model"))
    assert written and uri.startswith(f"s3://{BUCKET}/artifacts/keel-data/bucket_model/")
    assert fingerprint_frame(load_data_version(uri)) == fingerprint_frame(frame)

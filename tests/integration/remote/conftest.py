"""The remote stack's services, for real, on 127.0.0.1: MariaDB (Debian's mariadb-server, no systemd),
a ZenML server on it (uvicorn, fixed JWT secret), moto's S3 server with the artifact bucket, a
service-account API key for the client and the bucket's credentials as a ZenML secret."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import new_zenml_store
from tests.support.servers import (client_environment, http_ok, mariadb_server, moto_s3_server, port_open,
                                   zenml_server)

BUCKET = "keel-remote-artifacts"


@pytest.fixture(scope="module")
def remote_services(tmp_path_factory):
    work = tmp_path_factory.mktemp("remote-stack")
    with mariadb_server(work / "mariadb") as database, moto_s3_server(work / "moto") as s3, \
            zenml_server(work / "zenml-server", store_url=database.zenml_store_url) as server:
        s3.create_bucket(BUCKET)
        api_key = server.create_service_account_api_key("keel-ci")
        server.api("POST", "/secrets", {"name": "keel_s3", "private": False, "values": {
            "aws_access_key_id": s3.access_key_id, "aws_secret_access_key": s3.secret_access_key}})
        # The client's own local store exists before its first command, as after a first `zenml` call
        # (a copy of the session's template store: ZenML's flavor sync is not paid again here).
        env = client_environment(Path(new_zenml_store(work / "client-zenml")), KEEL_ZENML_SERVER_URL=server.url,
                                 KEEL_ZENML_API_KEY=api_key, KEEL_S3_ENDPOINT_URL=s3.endpoint_url, KEEL_S3_BUCKET=BUCKET,
                                 KEEL_LOCAL_ARTIFACTS=str(work / "local-artifacts"))
        yield SimpleNamespace(database=database, s3=s3, server=server, env=env, work=work, bucket=BUCKET)
    # Everything stopped: nothing answers on the ports any more.
    assert not port_open(database.port), "MariaDB still listens"
    assert not http_ok(f"{server.url}/health"), "the ZenML server still answers"
    assert not http_ok(f"{s3.endpoint_url}/moto-api/"), "moto still answers"

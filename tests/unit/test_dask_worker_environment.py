"""The environment keel's Dask workers need (Arrow's system allocator: a worker's memory otherwise
grows with every Parquet row group it reads) reaches the workers of the Kubernetes DaskCluster too,
not only those of the local cluster keel starts."""

import yaml

from keel.engine.cluster import WORKER_ENVIRONMENT
from keel.stacks.load import STACKS_DIR


def test_the_daskcluster_workers_get_keels_worker_environment():
    manifest = yaml.safe_load((STACKS_DIR / "kubernetes" / "daskcluster.yaml").read_text())
    containers = manifest["spec"]["worker"]["spec"]["containers"]
    assert containers
    for container in containers:
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        assert {name: env.get(name) for name in WORKER_ENVIRONMENT} == WORKER_ENVIRONMENT, container["name"]

"""The Kubernetes side of the dask engine, offline: the DaskCluster manifest that
stacks/dask-kubernetes.yaml points at validates against the dask-kubernetes operator's CRD schema
(a copy in tests/support/kubernetes, source and licence in its header), and the check catches what
the operator's API would refuse."""

import copy

import yaml

from keel.stacks import load_stack_file
from keel.stacks.load import STACKS_DIR
from tests.support.kubernetes.crd_check import crd_problems

MANIFEST = STACKS_DIR / "kubernetes" / "daskcluster.yaml"


def _manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_daskcluster_manifest_validates_against_the_operator_crd():
    assert crd_problems(_manifest()) == []


def test_the_stack_points_at_the_scheduler_service_the_operator_makes():
    manifest = _manifest()
    engine = load_stack_file(STACKS_DIR / "dask-kubernetes.yaml", environ={}).engine
    service = f"{manifest['metadata']['name']}-scheduler.{manifest['metadata']['namespace']}.svc.cluster.local"
    port = next(p["port"] for p in manifest["spec"]["scheduler"]["service"]["ports"] if p["name"] == "tcp-comm")
    assert engine.scheduler_address == f"tcp://{service}:{port}"


def test_the_check_refuses_what_the_api_would():
    misspelt = copy.deepcopy(_manifest())
    misspelt["spec"]["worker"]["replica"] = misspelt["spec"]["worker"].pop("replicas")
    assert any("replica" in p for p in crd_problems(misspelt))
    wrong_type = copy.deepcopy(_manifest())
    wrong_type["spec"]["worker"]["replicas"] = "two"
    assert any("replicas" in p and "integer" in p for p in crd_problems(wrong_type))
    no_containers = copy.deepcopy(_manifest())
    del no_containers["spec"]["scheduler"]["spec"]["containers"]
    assert any("containers" in p for p in crd_problems(no_containers))
    wrong_group = dict(_manifest(), apiVersion="kubernetes.dask.org/v2")
    assert any("apiVersion" in p for p in crd_problems(wrong_group))

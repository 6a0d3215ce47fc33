"""The Bento of v<N> is built from a copy of the deployment folder that holds and routes to v<N> alone."""

import json

import pytest

from keel.deployment.bundle import write_bundle
from keel.deployment.package import bundled_versions, copy_version_only
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer


@pytest.fixture
def rolled_back_folder(tmp_path):
    """As after a health rollback: v2 is bundled beside the champion v1, and v1 takes all traffic."""
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    folder = tmp_path / "live"
    write_bundle(folder, spec, {1: "champion model", 2: "challenger model"}, {1: 0.3, 2: 0.6},
                 RoutingTable([Arm("champion", 1, 1.0)], strategy="rollback"), None)
    return folder


def test_the_copy_holds_and_serves_only_the_version(rolled_back_folder, tmp_path):
    assert bundled_versions(rolled_back_folder) == {1, 2}
    copy = copy_version_only(rolled_back_folder, tmp_path / "bento", 2)
    scorer = Scorer(copy)
    assert scorer.models == {2: "challenger model"} and scorer.thresholds == {2: 0.6}
    assert [(arm.version, arm.weight) for arm in scorer.routing().arms] == [(2, 1.0)] and scorer.ready()
    assert not (copy / "models" / "v1.pkl").exists()
    live = json.loads((rolled_back_folder / "routing.json").read_text())
    assert [arm["version"] for arm in live["arms"]] == [1]  # the live folder is left as it was


def test_a_version_not_in_the_folder_is_named(rolled_back_folder, tmp_path):
    assert bundled_versions(tmp_path / "nothing-deployed") == set()
    with pytest.raises(LookupError, match="v7 is not in the deployment folder"):
        copy_version_only(rolled_back_folder, tmp_path / "bento", 7)

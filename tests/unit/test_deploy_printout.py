"""`deploy` says what a version was rolled out against: the champion, nothing because it was the first,
or nothing because it was already the production version (a redeploy said "against no champion")."""

import pytest

from keel.cli.deploy import print_deployment
from keel.lifecycle.deployment import DeploymentResult


def _printed(default_spec, capsys, **evidence):
    result = {"strategy": "all-at-once", "stages": [], "outcome": "promoted", "serving": 3,
              "url": "http://127.0.0.1:3000", "challenger": 3, **evidence}
    assert print_deployment(default_spec, DeploymentResult(3, run_name="deployment-1", evidence=result)) == 0
    return next(line for line in capsys.readouterr().out.splitlines() if line.startswith("rollout of v3"))


@pytest.mark.parametrize("evidence, said", [
    ({"champion": 2, "redeploy": False}, "rollout of v3 (all-at-once) against v2: promoted"),
    ({"champion": None, "redeploy": True},
     "rollout of v3 (all-at-once) again as the production version (no other version to compare with): promoted"),
    ({"champion": None, "redeploy": False},
     "rollout of v3 (all-at-once) against no champion (no production version before it): promoted"),
    ({"champion": None}, "rollout of v3 (all-at-once) against no champion (no production version before it): promoted"),
])
def test_the_rollout_line_names_what_the_version_was_rolled_out_against(default_spec, capsys, evidence, said):
    assert _printed(default_spec, capsys, **evidence) == said

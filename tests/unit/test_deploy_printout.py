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


def test_a_rolled_back_rollout_says_at_which_stage_and_why():
    """The main job's timeline said only "not rolled out (rolled back)" for a retrain whose 5% canary breached
    the score PSI (0.865 > 0.5): the stage and its breaches are what an operator looks at next."""
    stages = [{"stage": 1, "step": "5%", "breaches": ["score PSI 0.865 > 0.5"]}]
    back = DeploymentResult(4, evidence={"outcome": "rolled back", "stages": stages})
    assert back.rolled_back_because == "stage 1 (5%): score PSI 0.865 > 0.5"
    taken_over = DeploymentResult(4, evidence={"outcome": "rolled back", "stages": [], "reason": "the service took over"})
    assert taken_over.rolled_back_because == "the service took over"
    assert DeploymentResult(4, evidence={"outcome": "promoted", "stages": stages}).rolled_back_because is None

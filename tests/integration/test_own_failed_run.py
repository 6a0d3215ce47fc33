"""keel.lifecycle.pipeline_runs: a failed run is read from the run this process started, never from the
pipeline's latest run, which another writer may have started meanwhile."""

import re

import pytest

pytestmark = pytest.mark.integration


def test_a_failure_reports_its_own_run_when_another_writer_ran_the_same_pipeline_meanwhile():
    from zenml.client import Client

    from keel.lifecycle.pipeline_runs import failed_step_message, run_pipeline
    from tests.support.two_writers import two_writers_pipeline

    outcome = run_pipeline(two_writers_pipeline, fail=True)

    other = re.search(r"the other writer's run (\S+) succeeded", outcome.error)
    assert other, outcome.error
    latest = Client().get_pipeline("two_writers_pipeline").last_run
    assert latest.name == other.group(1) and str(latest.status) == "completed"  # "latest" is not ours
    assert outcome.run.name != latest.name and str(outcome.run.status) == "failed"
    assert outcome.failed_step == "judge_step"
    assert outcome.error.startswith("this run's own failure")
    assert failed_step_message(outcome).startswith(
        f"keel: the pipeline failed at step judge_step of run {outcome.run.name}:\nthis run's own failure")
    assert re.fullmatch(r"two_writers_pipeline-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d_\d{6}-[0-9a-f]{6}", outcome.run.name)

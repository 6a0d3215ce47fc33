"""A cached step is reused only while keel's source is unchanged: ZenML's cache key covers a step's own
function, not the keel code it calls (keel.provenance.source_stamp, run_pipeline's cache policy)."""

import pytest
from zenml import pipeline, step

import keel.provenance
from keel.provenance import source_hash, source_stamp

pytestmark = pytest.mark.integration


@step
def doubled_step(value: int) -> int:
    return 2 * value


@pipeline
def cached_pipeline(value: int) -> None:
    doubled_step(value=value)


def _status(outcome) -> str:
    assert outcome.error is None, outcome.error
    return str(outcome.run.steps["doubled_step"].status)


def test_a_step_cached_under_other_keel_code_is_run_again(monkeypatch):
    from keel.lifecycle.pipeline_runs import run_pipeline

    assert source_stamp() == source_hash()[0]
    assert _status(run_pipeline(cached_pipeline, value=3)) == "completed"
    assert _status(run_pipeline(cached_pipeline, value=3)) == "cached"  # same code, same input
    monkeypatch.setattr(keel.provenance, "source_stamp", lambda: "keel as changed since")
    changed = run_pipeline(cached_pipeline, value=3)
    assert _status(changed) == "completed" and changed.run.steps["doubled_step"].output.load() == 6
    assert _status(run_pipeline(cached_pipeline, value=3)) == "cached"  # cached again under the new code

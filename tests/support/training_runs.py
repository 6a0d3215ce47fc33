"""A training run in the test's process, on the test module's own ZenML store."""

from keel.provenance import collect_provenance
from keel.spec import spec_hash


def train_in_process(spec) -> int:
    """Run the training pipeline for `spec`; the version it registered (the run must succeed)."""
    from keel.data.sources import source_stamp
    from keel.lifecycle.pipeline_runs import run_pipeline
    from pipelines.training import training_pipeline

    outcome = run_pipeline(training_pipeline, spec=spec, spec_hash=spec_hash(spec),
                           source_stamp=source_stamp(spec.data), provenance=collect_provenance())
    assert outcome.error is None, outcome.error
    return outcome.run.steps["register_model_step"].output.load()

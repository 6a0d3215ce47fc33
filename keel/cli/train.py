"""`run.py train`: run the training pipeline, then print what was made and where to see it."""

from __future__ import annotations

import time
from pathlib import Path

from keel.cli.console import fail, format_table, say
from keel.spec.models import METRICS, Spec
from keel.training.metrics import (DEFAULT_THRESHOLD, THRESHOLD_METRICS, metric_label, metrics_threshold_text,
                                   recorded_metrics_threshold)


def training_metrics_table(metadata: dict) -> str:
    """The recorded validation and test metrics, each decision metric labelled with the threshold it was
    computed at (evaluation judges at another one: the decision threshold chosen on validation)."""
    threshold = recorded_metrics_threshold(metadata)
    shown = DEFAULT_THRESHOLD if threshold is None else threshold
    rows = [(metric_label(name, shown), metadata["validation_metrics"][name], metadata["test_metrics"][name])
            for name in METRICS]
    return "\n".join([
        f"training metrics: {', '.join(sorted(THRESHOLD_METRICS))} at threshold {metrics_threshold_text(metadata)}; "
        "`run.py evaluate` judges at the decision threshold it chooses on validation",
        format_table(["metric", "validation", "test"], rows)])


def train(spec: Spec, config: Path, no_cache: bool = False) -> int:
    from keel.data.sources import describe_source, source_stamp
    from keel.provenance import collect_provenance, describe_code
    from keel.spec import spec_hash

    started = time.perf_counter()
    say(f"keel: spec {config} is valid (problem '{spec.problem.name}', data {describe_source(spec.data)})")
    say("keel: starting the training pipeline (loading ZenML takes a few seconds) ...")
    from keel.cli.pipeline_runs import failed_step_message, run_pipeline
    from pipelines.training import training_pipeline

    outcome = run_pipeline(training_pipeline, no_cache=no_cache, spec=spec, spec_hash=spec_hash(spec),
                           source_stamp=source_stamp(spec.data), provenance=collect_provenance())
    if outcome.error is not None:
        return fail(failed_step_message(outcome), 1)
    version = outcome.run.steps["register_model_step"].output.load()
    from keel.registry import get_model_version_metadata

    metadata = get_model_version_metadata(spec.problem.name, version)
    say()
    say(f"run:            {outcome.run.name}")
    say(f"model version:  {spec.problem.name} v{version} ({metadata['model_family']}, "
        f"sha256 {metadata['model_sha256'][:12]}...)")
    rows = metadata['rows']
    say(f"data:           {rows['train']} train / {rows['validation']} validation / {rows['test']} test rows, "
        f"fingerprint {metadata['data_fingerprint'][:12]}...")
    say(f"code:           {describe_code(metadata, short=True)}")
    from keel.data.readiness import readiness_summary

    readiness = outcome.run.steps["readiness_step"].outputs["readiness_report"][0].load()
    say(readiness_summary(readiness))
    say()
    say(training_metrics_table(metadata))
    say()
    say(f"finished in {time.perf_counter() - started:.0f} s. Browse runs, artifacts and reports in the "
        f"ZenML dashboard: `python run.py dashboard`.")
    say("query runs: python run.py runs --where 'roc_auc>0.8'")
    return 0

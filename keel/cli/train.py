"""`run.py train`: run the training pipeline, then print what was made and where to see it."""

from __future__ import annotations

import time
from pathlib import Path

from keel import registration as keys
from keel.cli.console import fail, format_table, say
from keel.spec.models import Spec
from keel.spec.problem import METRICS
from keel.training.metrics import (DEFAULT_THRESHOLD, THRESHOLD_METRICS, metric_label, metrics_threshold_text,
                                   recorded_metrics_threshold)


def training_metrics_table(metadata: dict) -> str:
    """The recorded validation and test metrics, each decision metric labelled with the threshold it was
    computed at (evaluation judges at another one: the decision threshold chosen on validation)."""
    threshold = recorded_metrics_threshold(metadata)
    shown = DEFAULT_THRESHOLD if threshold is None else threshold
    rows = [(metric_label(name, shown), metadata[keys.VALIDATION_METRICS][name], metadata[keys.TEST_METRICS][name])
            for name in METRICS]
    return "\n".join([
        f"training metrics: {', '.join(sorted(THRESHOLD_METRICS))} at threshold {metrics_threshold_text(metadata)}; "
        "`run.py evaluate` judges at the decision threshold it chooses on validation",
        format_table(["metric", "validation", "test"], rows)])


def train(spec: Spec, config: Path, no_cache: bool = False) -> int:
    from keel.lifecycle.training import train_version

    started = time.perf_counter()
    announce_training(spec, config)
    from keel.cli.authorize import authorize

    if (authorization := authorize(spec, "train")).refused:
        return authorization.exit_code
    return print_training(spec, train_version(spec, no_cache=no_cache), started)


def announce_training(spec: Spec, config: Path) -> None:
    from keel.data.sources import describe_source

    say(f"keel: spec {config} is valid (problem '{spec.problem.name}', data {describe_source(spec.data)})")
    say("keel: starting the training pipeline (loading ZenML takes a few seconds) ...")


def print_training(spec: Spec, result, started: float) -> int:
    """Print what a training run made (a keel.lifecycle.training.TrainingResult); its exit code."""
    from keel.data.readiness import readiness_summary
    from keel.provenance import describe_code

    if result.error is not None:
        return fail(result.error, result.exit_code)
    version, metadata = result.version, result.metadata
    say()
    say(f"run:            {result.run_name}")
    say(f"model version:  {spec.problem.name} v{version} ({metadata[keys.MODEL_FAMILY]}, "
        f"sha256 {metadata[keys.MODEL_SHA256][:12]}...)")
    rows = metadata[keys.ROWS]
    say(f"data:           {rows['train']} train / {rows['validation']} validation / {rows['test']} test rows, "
        f"fingerprint {metadata[keys.DATA_FINGERPRINT][:12]}...")
    say(f"code:           {describe_code(metadata, short=True)}")
    say(readiness_summary(result.readiness))
    say()
    say(training_metrics_table(metadata))
    say()
    say(f"finished in {time.perf_counter() - started:.0f} s. Browse runs, artifacts and reports in the "
        f"ZenML dashboard: `python run.py dashboard`.")
    say("query runs: python run.py runs --where 'roc_auc>0.8'")
    return 0

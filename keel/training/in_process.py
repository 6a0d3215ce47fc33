"""The training phase in one process, without ZenML: the same functions the pipeline's steps call,
in the same order. Used by `run.py check` (fast model tests in a pull request) and as the baseline
of the training benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from keel.data.fingerprint import fingerprint_frame
from keel.data.readiness import assess_readiness
from keel.data.schema import ValidationReport, validate_frame
from keel.data.split import split_frame
from keel.features.preprocessing import fit_preprocessor
from keel.spec.models import Spec
from keel.training.fit import FittedModel, choose_summary, fit_baseline, fit_candidate


@dataclass
class TrainedInProcess:
    validation_report: ValidationReport
    fingerprint: str = ""
    readiness: dict | None = None
    selected: FittedModel | None = None
    train: pd.DataFrame | None = None
    validation: pd.DataFrame | None = None
    test: pd.DataFrame | None = None


def train_in_process(raw: pd.DataFrame, spec: Spec) -> TrainedInProcess:
    """Validate, split, fit features, train baseline and candidate, select; stop early on bad data."""
    data = spec.data
    frame, report = validate_frame(raw, data)
    if not report.passed:
        return TrainedInProcess(report)
    train, validation, test = split_frame(frame, spec.split, data.target.column, data.time_column)
    features = fit_preprocessor(train, data)
    baseline = fit_baseline(features, train, validation, data, spec.training)
    candidate, _ = fit_candidate(features, train, validation, data, spec.training)
    models = {m.name: m for m in (baseline, candidate)}
    chosen = choose_summary([{"name": m.name, "params": m.params, "validation_metrics": m.validation_metrics}
                             for m in models.values()], spec.training.primary_metric)
    return TrainedInProcess(report, fingerprint_frame(frame), assess_readiness(frame, spec, baseline.validation_metrics),
                            models[chosen["chosen"]], train, validation, test)

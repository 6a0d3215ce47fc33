from zenml import pipeline

from keel.spec.models import Spec
from steps.data.fit_features import fit_features_step
from steps.data.ingest import ingest_step
from steps.data.readiness import readiness_step
from steps.data.split import split_step
from steps.data.validate import validate_step
from steps.governance.store_data_version import store_data_version_step
from steps.training.register_model import register_model_step
from steps.training.search_candidate import search_candidate_step
from steps.training.select_model import select_model_step
from steps.training.train_baseline import train_baseline_step


@pipeline
def training_pipeline(spec: Spec, spec_hash: str, source_stamp: str, provenance: dict) -> None:
    """Ingest -> validate -> split -> fit features -> baseline and searched LightGBM -> select -> register."""
    raw = ingest_step(spec.data, source_stamp)
    frame, fingerprint, validation_report, _ = validate_step(raw, spec.data, spec.problem.name)
    store_data_version_step(frame, fingerprint, spec.problem.name)
    train, validation, test = split_step(frame, spec.split, spec.data)
    features = fit_features_step(train, spec.data)
    baseline, baseline_summary = train_baseline_step(features, train, validation, spec.data, spec.training)
    candidate, candidate_summary, _ = search_candidate_step(features, train, validation, spec.data,
                                                            spec.training)
    readiness, _ = readiness_step(frame, baseline_summary, spec)
    model, selection = select_model_step(baseline, baseline_summary, candidate, candidate_summary,
                                         spec.training)
    register_model_step(model, selection, train, validation, test, fingerprint, validation_report,
                        readiness, spec, spec_hash, provenance, after="store_data_version_step")

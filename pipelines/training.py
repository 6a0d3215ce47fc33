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
    raw = ingest_step(data=spec.data, source_stamp=source_stamp)
    frame, fingerprint, validation_report, _ = validate_step(raw_data=raw, data=spec.data,
                                                             model_name=spec.problem.name)
    store_data_version_step(validated_data=frame, data_fingerprint=fingerprint, model_name=spec.problem.name)
    train, validation, test = split_step(validated_data=frame, split=spec.split, data=spec.data)
    features = fit_features_step(train=train, data=spec.data)
    baseline, baseline_summary = train_baseline_step(feature_pipeline=features, train=train, validation=validation,
                                                     data=spec.data, training=spec.training)
    candidate, candidate_summary, _ = search_candidate_step(feature_pipeline=features, train=train,
                                                            validation=validation, data=spec.data,
                                                            training=spec.training)
    readiness, _ = readiness_step(validated_data=frame, baseline_summary=baseline_summary, spec=spec)
    model, selection = select_model_step(baseline_model=baseline, baseline_summary=baseline_summary,
                                         candidate_model=candidate, candidate_summary=candidate_summary,
                                         training=spec.training)
    register_model_step(model=model, selection=selection, train=train, validation=validation, test=test,
                        data_fingerprint=fingerprint, validation_report=validation_report,
                        readiness_report=readiness, spec=spec, spec_hash=spec_hash, provenance=provenance,
                        after="store_data_version_step")

from typing import Optional

from zenml import pipeline

from keel.engine.spec import READINESS_ROWS as DASK_READINESS_ROWS
from keel.spec.models import Spec
from steps.data.dask_prepare import dask_prepare_step
from steps.data.fit_features import fit_features_step
from steps.data.ingest import ingest_step
from steps.data.readiness import readiness_step
from steps.data.split import split_step
from steps.data.validate import validate_step
from steps.governance.store_data_version import store_data_version_step
from steps.training.dask_refit import dask_select_and_refit_step
from steps.training.register_model import register_model_step
from steps.training.search_candidate import search_candidate_step
from steps.training.select_model import select_model_step
from steps.training.train_baseline import train_baseline_step


@pipeline
def training_pipeline(spec: Spec, spec_hash: str, source_stamp: str, provenance: dict,
                      engine: Optional[dict] = None) -> None:
    """Ingest -> validate -> split -> fit features -> baseline and searched LightGBM -> select -> register.

    `engine` (the stack's, keel.engine.spec): none or local runs in pandas; dask runs the data work
    on the cluster (see _on_dask)."""
    if engine and engine.get("kind") == "dask":
        _on_dask(spec=spec, spec_hash=spec_hash, source_stamp=source_stamp, provenance=provenance, engine=engine)
        return
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


def _on_dask(*, spec: Spec, spec_hash: str, source_stamp: str, provenance: dict, engine: dict) -> None:
    """Validate, fingerprint and split on the cluster -> features, baseline, search and readiness on
    seeded samples in memory -> select and refit the chosen LightGBM on the whole training split on
    the cluster -> register (with the layout). No data version is stored: the data stays in its
    partitions, named by its fingerprint."""
    train, validation, test, fingerprint, validation_report, _, prepared = dask_prepare_step(
        data=spec.data, split=spec.split, engine=engine, source_stamp=source_stamp,
        model_name=spec.problem.name, id="validate_step")
    features = fit_features_step(train=train, data=spec.data)
    baseline, baseline_summary = train_baseline_step(feature_pipeline=features, train=train, validation=validation,
                                                     data=spec.data, training=spec.training)
    candidate, candidate_summary, _ = search_candidate_step(feature_pipeline=features, train=train,
                                                            validation=validation, data=spec.data,
                                                            training=spec.training)
    readiness, _ = readiness_step(validated_data=train, baseline_summary=baseline_summary, spec=spec,
                                  rows_judged=DASK_READINESS_ROWS)
    model, selection, record = dask_select_and_refit_step(
        baseline_model=baseline, baseline_summary=baseline_summary, candidate_model=candidate,
        candidate_summary=candidate_summary, data=spec.data, split=spec.split, training=spec.training,
        engine=engine, engine_record=prepared)
    register_model_step(model=model, selection=selection, train=train, validation=validation, test=test,
                        data_fingerprint=fingerprint, validation_report=validation_report,
                        readiness_report=readiness, spec=spec, spec_hash=spec_hash, provenance=provenance,
                        engine_record=record)

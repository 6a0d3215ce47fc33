"""A small LightGBM pipeline of the credit demo, fit by keel's own training code: what a registered
version holds, without a ZenML run."""

from tests.conftest import ROOT


def fit_demo_pipeline(rows: int, n_estimators: int):
    """The demo spec on `rows` generated rows, one trial of `n_estimators` trees; not a registered version,
    so no screening record withholds proxies (marked with none)."""
    from keel.data.schema import validate_frame
    from keel.data.sources import load_frame
    from keel.data.split import split_frame
    from keel.features.preprocessing import fit_preprocessor
    from keel.serving.reasons import mark_proxies
    from keel.spec import load_spec
    from keel.training.fit import fit_candidate

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [f"data.source.rows={rows}", "training.candidate.trials=1",
                                                            f"training.candidate.params.n_estimators={n_estimators}"])
    frame, _ = validate_frame(load_frame(spec.data), spec.data)
    train, validation, _ = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    fitted, _ = fit_candidate(fit_preprocessor(train, spec.data), train, validation, spec.data, spec.training)
    mark_proxies(fitted.pipeline, None)
    return fitted.pipeline

"""The training phase as a plain Python script: the same keel functions the pipeline's steps call,
in the same order, with no ZenML. The baseline against which ZenML's overhead is measured."""

import sys
import time

import keel  # noqa: F401
from keel.data.fingerprint import fingerprint_frame
from keel.data.readiness import assess_readiness
from keel.data.schema import validate_frame
from keel.data.sources import load_frame
from keel.data.split import split_frame
from keel.features.preprocessing import fit_preprocessor
from keel.spec import load_spec
from keel.training.fit import choose_summary, fit_baseline, fit_candidate, model_hash, predict_scores
from keel.training.metrics import score


def train_plain(spec) -> dict:
    data = spec.data
    frame, report = validate_frame(load_frame(data), data)
    assert report.passed, report.summary()
    fingerprint = fingerprint_frame(frame)
    train, validation, test = split_frame(frame, spec.split, data.target.column, data.time_column)
    features = fit_preprocessor(train, data)
    baseline = fit_baseline(features, train, validation, data, spec.training)
    candidate, _ = fit_candidate(features, train, validation, data, spec.training)
    assess_readiness(frame, spec, baseline.validation_metrics)
    summaries = [{"name": m.name, "params": m.params, "validation_metrics": m.validation_metrics}
                 for m in (baseline, candidate)]
    chosen = choose_summary(summaries, spec.training.primary_metric)
    model = baseline if chosen["chosen"] == baseline.name else candidate
    test_metrics = score(test[data.target.column], predict_scores(model.pipeline, test))
    return {"fingerprint": fingerprint, "model_sha256": model_hash(model.pipeline), "test": test_metrics}


if __name__ == "__main__":
    started = time.perf_counter()
    result = train_plain(load_spec(sys.argv[1], sys.argv[2:]))
    print(f"plain training finished in {time.perf_counter() - started:.1f} s: {result['model_sha256'][:12]}")

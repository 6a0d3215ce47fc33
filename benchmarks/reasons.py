"""Principal reasons (issue 19): what giving reasons costs per request, against scoring alone.

Both models of the default spec are fitted here with keel's own functions on generated credit data
(no ZenML): the LightGBM candidate (reasons from `pred_contrib`, exact TreeSHAP) and the logistic
baseline (linear terms). For one-record requests, as most arrive, the same process times:

- score:          the fast path (encode the record, predict) — what the service does today;
- score+reasons:  the same, plus per-feature contributions and the top-k reasons toward the decision.

Each is timed over the same records, interleaved, repeated; medians and p99 per request.

Usage:
    .venv/bin/python benchmarks/reasons.py [--requests 2000] [--repeats 3]
Writes benchmarks/results/reasons.json; RESULTS.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "reasons.json"


def _models(rows: int):
    from keel.data.generator import generate_credit_applications
    from keel.data.schema import validate_frame
    from keel.data.split import split_frame
    from keel.features.preprocessing import fit_preprocessor
    from keel.spec import load_spec
    from keel.training.fit import fit_baseline, fit_candidate

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [f"data.source.rows={rows}", "training.candidate.trials=1"])
    frame, _ = validate_frame(generate_credit_applications(spec.data.source), spec.data)
    train, validation, test = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    features = fit_preprocessor(train, spec.data)
    baseline = fit_baseline(features, train, validation, spec.data, spec.training)
    candidate, _ = fit_candidate(features, train, validation, spec.data, spec.training)
    return spec, test, {"lightgbm": candidate.pipeline, "logistic_regression": baseline.pipeline}


def _records(test, spec, count: int):
    import numpy as np

    columns = spec.data.model_features
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in test[columns].head(count).to_dict(orient="records")]


def _time_one(records, call) -> list:
    samples = []
    for record in records:
        started = time.perf_counter_ns()
        call([record])
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from keel.serving.fast_path import compile_row_scorer
    from keel.serving.reasons import column_contributions, encoded_owners, feature_contributions, principal_reasons

    spec, test, models = _models(20_000)
    records = _records(test, spec, args.requests)
    features = spec.data.model_features
    result = {"command": f".venv/bin/python benchmarks/reasons.py --requests {args.requests} --repeats {args.repeats}",
              "load_average_before": os.getloadavg(), "models": {}}
    for name, pipeline in models.items():
        scorer = compile_row_scorer(pipeline, test[features])
        estimator, owners = pipeline.named_steps["model"], encoded_owners(scorer)

        def score(batch):
            return scorer.scores(batch)

        def score_with_reasons(batch):
            matrix = scorer.encode(batch)
            scores = scorer.predict_positive(matrix)
            per_feature = feature_contributions(column_contributions(estimator, matrix), owners, features)
            return scores, [principal_reasons(row, features, True, spec.decisions.reasons, (), 4) for row in per_feature]

        plain, reasons = [], []
        for _ in range(args.repeats):
            plain.append(_time_one(records, score))
            reasons.append(_time_one(records, score_with_reasons))

        def summary(runs):
            medians = [statistics.median(r) for r in runs]
            p99s = [sorted(r)[int(0.99 * len(r))] for r in runs]
            return {"median_ms": round(statistics.median(medians), 4), "p99_ms": round(statistics.median(p99s), 4),
                    "medians_per_repeat": [round(m, 4) for m in medians]}

        result["models"][name] = {"score": summary(plain), "score_and_reasons": summary(reasons)}
        entry = result["models"][name]
        entry["ratio_median"] = round(entry["score_and_reasons"]["median_ms"] / entry["score"]["median_ms"], 2)
        entry["added_median_ms"] = round(entry["score_and_reasons"]["median_ms"] - entry["score"]["median_ms"], 4)
    result["load_average_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["models"], indent=2))


if __name__ == "__main__":
    main()

"""Print benchmarks/results/serving.json as the Markdown table in RESULTS.md."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
LABELS = {
    "plain_fastapi": "plain FastAPI + uvicorn, full pipeline (baseline)",
    "plain_fastapi_fast_path": "plain FastAPI + uvicorn, keel's fast path",
    "keel_bentoml_log": "keel BentoML: validation + routing + metrics + prediction log",
    "keel_bentoml_no_log": "keel BentoML: validation + routing + metrics, no log",
    "keel_bentoml_canary_log": "keel BentoML: canary routing 95/5 + prediction log",
    "keel_bentoml_log_pipeline_path": "keel BentoML + log, fast path off (pipeline per request)",
}


def _ratios(results: dict, baseline: str) -> str:
    base, keel = results[baseline], results["keel_bentoml_log"]
    return (f"p50 at c=1 {keel['c1']['p50_ms'] / base['c1']['p50_ms']:.2f}x, "
            f"throughput at c=32 {keel['c32']['rps'] / base['c32']['rps']:.2f}x")


def main() -> None:
    results = json.loads(RESULTS.read_text())
    print("| variant | c=1 p50 / p99 / max (ms) | c=1 req/s | c=8 req/s, p99 (ms) | c=32 req/s, p99 (ms) "
          "| 100-row batch p50 (ms) |")
    print("|---|---|---|---|---|---|")
    for key in ("raw_in_process", "fast_path_in_process"):
        r = results[key]
        print(f"| {key.replace('_', ' ')} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} / – | {r['rps_c1']:.0f} | – | – | – |")
    for key, label in LABELS.items():
        r = results[key]
        print(f"| {label} | {r['c1']['p50_ms']:.2f} / {r['c1']['p99_ms']:.2f} / {r['c1'].get('max_ms', float('nan')):.1f} "
              f"| {r['c1']['rps']:.0f} | {r['c8']['rps']:.0f}, {r['c8']['p99_ms']:.1f} "
              f"| {r['c32']['rps']:.0f}, {r['c32']['p99_ms']:.1f} | {r['batch100_c1']['p50_ms']:.2f} |")
    errors = sum(results[k][c]["errors"] for k in LABELS for c in ("c1", "c8", "c32", "batch100_c1"))
    print()
    print(f"keel (validation + routing + metrics + log) against plain FastAPI with the full pipeline: "
          f"{_ratios(results, 'plain_fastapi')}, p99 at c=1 {results['keel_bentoml_log']['c1']['p99_ms']:.1f} ms; "
          f"against plain FastAPI with the same fast path: {_ratios(results, 'plain_fastapi_fast_path')}; "
          f"errors: {errors}")


if __name__ == "__main__":
    main()

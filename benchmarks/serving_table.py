"""Print benchmarks/results/serving.json (or the results file given) as the Markdown table in RESULTS.md."""

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
LABELS = {
    "plain_fastapi": "plain FastAPI + uvicorn, full pipeline",
    "plain_fastapi_fast_path": "plain FastAPI + uvicorn, keel's fast path (baseline)",
    "plain_fastapi_fast_path_2_workers": "plain FastAPI + uvicorn, keel's fast path, 2 workers",
    "before_keel_bentoml_log": "before: keel BentoML + SQLite log, a commit per request",
    "before_keel_bentoml_no_log": "before: keel BentoML, no log",
    "keel_bentoml_log": "keel BentoML: validation + routing + metrics + SQLite log (group commit)",
    "keel_bentoml_no_log": "keel BentoML: validation + routing + metrics, no log",
    "keel_bentoml_log_2_workers": "keel BentoML + SQLite log, 2 workers",
    "keel_bentoml_no_log_2_workers": "keel BentoML, no log, 2 workers",
    "keel_bentoml_postgres_log": "keel BentoML + PostgreSQL log",
    "keel_bentoml_postgres_log_2_workers": "keel BentoML + PostgreSQL log, 2 workers",
    "keel_bentoml_canary_log": "keel BentoML: canary routing 95/5 + SQLite log",
    "keel_bentoml_log_pipeline_path": "keel BentoML + SQLite log, fast path off (pipeline per request)",
}


def _ratio(results: dict, variant: str, baseline: str) -> str:
    if variant not in results or baseline not in results:
        return "–"
    keel, base = results[variant], results[baseline]
    return (f"p50 at c=1 {keel['c1']['p50_ms'] / base['c1']['p50_ms']:.2f}x, "
            f"throughput at c=32 {keel['c32']['rps'] / base['c32']['rps']:.2f}x")


def main() -> None:
    results = json.loads((Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS).read_text())
    print("| variant | c=1 p50 / p99 / max (ms) | c=1 req/s | c=8 req/s, p99 (ms) | c=32 req/s, p99 (ms) "
          "| 100-row batch p50 (ms) | load average (1 min) before, after |")
    print("|---|---|---|---|---|---|---|")
    for key in ("raw_in_process", "fast_path_in_process"):
        if key in results:
            r = results[key]
            print(f"| {key.replace('_', ' ')} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} / – | {r['rps_c1']:.0f} "
                  "| – | – | – | – |")
    for key, label in LABELS.items():
        if key not in results:
            continue
        r = results[key]
        load = r.get("load_average_1min", ["–", "–"])
        print(f"| {label} | {r['c1']['p50_ms']:.2f} / {r['c1']['p99_ms']:.2f} / {r['c1'].get('max_ms', float('nan')):.1f} "
              f"| {r['c1']['rps']:.0f} | {r['c8']['rps']:.0f}, {r['c8']['p99_ms']:.1f} "
              f"| {r['c32']['rps']:.0f}, {r['c32']['p99_ms']:.1f} | {r['batch100_c1']['p50_ms']:.2f} "
              f"| {load[0]}, {load[1]} |")
    errors = sum(results[k][c]["errors"] for k in LABELS if k in results for c in ("c1", "c8", "c32", "batch100_c1"))
    print()
    print(f"Load average (1, 5, 15 min) at the start {results.get('load_average_at_start')}, at the end "
          f"{results.get('load_average_at_end')}; errors: {errors}.")
    print()
    base = "plain_fastapi_fast_path"
    for variant in ("keel_bentoml_log", "before_keel_bentoml_log", "keel_bentoml_log_2_workers",
                    "keel_bentoml_postgres_log", "keel_bentoml_postgres_log_2_workers"):
        if variant in results:
            print(f"- {LABELS[variant]} against {LABELS[base]}: {_ratio(results, variant, base)}")
    for with_log, without in (("keel_bentoml_log", "keel_bentoml_no_log"),
                              ("before_keel_bentoml_log", "before_keel_bentoml_no_log"),
                              ("keel_bentoml_log_2_workers", "keel_bentoml_no_log_2_workers"),
                              ("keel_bentoml_postgres_log_2_workers", "keel_bentoml_no_log_2_workers")):
        if with_log in results and without in results:
            print(f"- {LABELS[with_log]}: throughput at c=32 "
                  f"{results[with_log]['c32']['rps'] / results[without]['c32']['rps']:.2f}x of the same without the log")


if __name__ == "__main__":
    main()

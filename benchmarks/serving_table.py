"""Print benchmarks/results/serving.json (or the results file given) as the Markdown table in RESULTS.md.
Several results files (runs of the same variants): every figure is the median over the runs, the
load averages are listed per run, and a ratio between two variants is each run's ratio (the variants
of one run met the same machine), with their median first. Runs made with `--alternate` add the c=1
figures measured one request to each variant in turn."""

import json
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
LABELS = {
    "plain_fastapi": "plain FastAPI + uvicorn, full pipeline",
    "plain_fastapi_fast_path": "plain FastAPI + uvicorn, keel's fast path (baseline)",
    "plain_fastapi_fast_path_durable_log": "plain FastAPI + uvicorn, keel's fast path, SQLite log (a commit per request)",
    "plain_fastapi_fast_path_durable_log_reasons": "plain FastAPI + uvicorn, keel's fast path, SQLite log, principal reasons of declined rows",
    "plain_fastapi_fast_path_2_workers": "plain FastAPI + uvicorn, keel's fast path, 2 workers",
    "before_keel_bentoml_log": "before (the --before commit's code): keel BentoML + SQLite log",
    "before_keel_bentoml_no_log": "before (the --before commit's code): keel BentoML, no log",
    "keel_bentoml_log": "keel BentoML: validation + routing + metrics + SQLite log (group commit)",
    "keel_bentoml_no_log": "keel BentoML: validation + routing + metrics, no log",
    "keel_bentoml_log_no_reasons": "keel BentoML + SQLite log, every row approved (no principal reasons owed)",
    "keel_bentoml_no_log_no_reasons": "keel BentoML, no log, every row approved (no principal reasons owed)",
    "keel_bentoml_log_2_workers": "keel BentoML + SQLite log, 2 workers",
    "keel_bentoml_no_log_2_workers": "keel BentoML, no log, 2 workers",
    "keel_bentoml_postgres_log": "keel BentoML + PostgreSQL log",
    "keel_bentoml_postgres_log_2_workers": "keel BentoML + PostgreSQL log, 2 workers",
    "keel_bentoml_canary_log": "keel BentoML: canary routing 95/5 + SQLite log",
    "keel_bentoml_log_pipeline_path": "keel BentoML + SQLite log, fast path off (pipeline per request)",
}


def _ratio(runs: list, variant: str, baseline: str) -> str:
    """p50 at c=1 and throughput at c=32 of `variant` over `baseline`: each run's ratio (variants of one
    run met the same machine), their median first."""
    if not all(variant in r and baseline in r for r in runs):
        return "–"
    p50 = [r[variant]["c1"]["p50_ms"] / r[baseline]["c1"]["p50_ms"] for r in runs]
    if not all("c32" in r[variant] and "c32" in r[baseline] for r in runs):  # a run of some levels only
        return f"p50 at c=1 {_spread(p50)}"
    rps = [r[variant]["c32"]["rps"] / r[baseline]["c32"]["rps"] for r in runs]
    return f"p50 at c=1 {_spread(p50)}, throughput at c=32 {_spread(rps)}"


def _alternating(runs: list, variant: str, baseline: str) -> str:
    """c=1 with one request to each variant in turn (`--alternate`): the variant's p50 and p99, and
    against the baseline each run's ratio of p50s and its median ratio of paired requests (the same
    record in the same round)."""
    if not all("c1_alternating" in r.get(variant, {}) and "c1_alternating" in r.get(baseline, {}) for r in runs):
        return ""
    mine = [r[variant]["c1_alternating"] for r in runs]
    theirs = [r[baseline]["c1_alternating"] for r in runs]
    p50 = [m["p50_ms"] / t["p50_ms"] for m, t in zip(mine, theirs)]
    paired = [statistics.median(a / b for a, b in zip(m["latencies_ms"], t["latencies_ms"]))
              for m, t in zip(mine, theirs)]
    return (f"p50 {statistics.median(m['p50_ms'] for m in mine):.2f} ms against "
            f"{statistics.median(t['p50_ms'] for t in theirs):.2f} ms, p99 "
            f"{statistics.median(m['p99_ms'] for m in mine):.2f} against "
            f"{statistics.median(t['p99_ms'] for t in theirs):.2f} ms; "
            f"ratio of p50s {_spread(p50)}, median ratio of paired requests {_spread(paired)}")


def _spread(ratios: list) -> str:
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}x"
    return f"{statistics.median(ratios):.2f}x (runs: {', '.join(f'{x:.2f}' for x in ratios)})"


def _median(runs: list):
    """The runs' results with every number the median over the runs; lists (load averages) are the
    runs' own, one after the other; anything else is the first run's."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: _median([r[k] for r in runs]) for k in first if all(isinstance(r, dict) and k in r for r in runs)}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return statistics.median(runs)
    if isinstance(first, list):
        return first if len(runs) == 1 else [x for r in runs for x in r]
    return first


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [RESULTS]
    runs = [json.loads(p.read_text()) for p in paths]
    results = _median(runs)
    if len(paths) > 1:
        print(f"Medians of {len(paths)} runs ({', '.join(p.name for p in paths)}); load averages: every run's.")
        print()
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
        if len(load) > 2:  # several runs: the range over all of them
            load = [f"{min(load)}–{max(load)}", "over the runs"]
        c1 = (f"{r['c1']['p50_ms']:.2f} / {r['c1']['p99_ms']:.2f} / {r['c1'].get('max_ms', float('nan')):.1f} "
              f"| {r['c1']['rps']:.0f}") if "c1" in r else "– | –"
        loaded = [f"{r[level]['rps']:.0f}, {r[level]['p99_ms']:.1f}" if level in r else "–" for level in ("c8", "c32")]
        batch = f"{r['batch100_c1']['p50_ms']:.2f}" if "batch100_c1" in r else "–"
        print(f"| {label} | {c1} | {loaded[0]} | {loaded[1]} | {batch} | {load[0]}, {load[1]} |")
    errors = sum(results[k][c]["errors"] for k in LABELS if k in results for c in ("c1", "c8", "c32", "batch100_c1")
                 if c in results[k])
    print()
    start, end = ([round(x, 2) for x in results.get(key) or []] for key in ("load_average_at_start", "load_average_at_end"))
    print(f"Load average (1, 5, 15 min; per run) at the start {start}, at the end "
          f"{end}; errors: {errors:g}; --before commit: {results.get('before_commit')}; "
          + (f"interleaved, {results['interleaved_rounds']:g} rounds per load level."
             if results.get("interleaved_rounds") else "one variant after another."))
    print()
    base = "plain_fastapi_fast_path"
    for variant in ("keel_bentoml_log", "before_keel_bentoml_log", "keel_bentoml_log_2_workers",
                    "keel_bentoml_postgres_log", "keel_bentoml_postgres_log_2_workers"):
        if variant in results:
            print(f"- {LABELS[variant]} against {LABELS[base]}: {_ratio(runs, variant, base)}")
    durable = "plain_fastapi_fast_path_durable_log"
    for variant in ("keel_bentoml_log", "keel_bentoml_log_no_reasons"):
        if variant in results:
            print(f"- {LABELS[variant]} against {LABELS[durable]}: {_ratio(runs, variant, durable)}")
    obliged = "plain_fastapi_fast_path_durable_log_reasons"
    if "keel_bentoml_log" in results:
        print(f"- {LABELS['keel_bentoml_log']} against {LABELS[obliged]}: {_ratio(runs, 'keel_bentoml_log', obliged)}")
    for variant, baseline in (("keel_bentoml_log", durable), ("keel_bentoml_log", base), ("keel_bentoml_log", obliged),
                              ("keel_bentoml_no_log", base)):
        paired = _alternating(runs, variant, baseline)
        if paired:
            print(f"- one request to each in turn at c=1, {LABELS[variant]} against {LABELS[baseline]}: {paired}")
    for variant in ("keel_bentoml_no_log", "keel_bentoml_no_log_no_reasons"):
        if variant in results:
            print(f"- {LABELS[variant]} against {LABELS[base]}: {_ratio(runs, variant, base)}")
    for with_log, without in (("keel_bentoml_log", "keel_bentoml_no_log"),
                              ("before_keel_bentoml_log", "before_keel_bentoml_no_log"),
                              ("keel_bentoml_log_2_workers", "keel_bentoml_no_log_2_workers"),
                              ("keel_bentoml_postgres_log_2_workers", "keel_bentoml_no_log_2_workers")):
        if all(with_log in r and without in r and "c32" in r[with_log] and "c32" in r[without] for r in runs):
            ratios = [r[with_log]["c32"]["rps"] / r[without]["c32"]["rps"] for r in runs]
            print(f"- {LABELS[with_log]}: throughput at c=32 {_spread(ratios)} of the same without the log")
    for variant in LABELS:
        sizes = {load: [r[variant][load]["mean_group_size"] for r in runs if "mean_group_size" in r.get(variant, {}).get(load, {})]
                 for load in ("c1", "c8", "c32")}
        if any(sizes.values()):
            print(f"- {LABELS[variant]}: mean commit group size " +
                  ", ".join(f"{load} {' / '.join(str(x) for x in found)}" for load, found in sizes.items() if found))


if __name__ == "__main__":
    main()

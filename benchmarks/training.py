"""Benchmark: the training pipeline on ZenML against the same functions in a plain script.

    .venv/bin/python benchmarks/training.py --rows 100000 1000000 --repeats 3

Each measurement is a fresh process (wall time from start to exit, peak RSS from the kernel), on a
throw-away ZenML store. Per size: plain script, cold pipeline (no cache), cached rerun. Results go
to benchmarks/results/training-<rows>.json and a table is printed for benchmarks/RESULTS.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "credit_risk.yaml"


def run(command, env) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    stderr = child.stderr.read().decode(errors="replace")
    if status != 0:
        raise RuntimeError(f"{command} failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--skip-plain", action="store_true")
    args = parser.parse_args()
    python = sys.executable
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        overrides = [f"data.source.rows={rows}", *args.overrides]
        sets = [item for o in overrides for item in ("--set", o)]
        samples = {"plain": [], "pipeline_cold": [], "pipeline_cached": []}
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as home:
                env = {**os.environ, "ZENML_CONFIG_PATH": f"{home}/zenml", "ZENML_ANALYTICS_OPT_IN": "false"}
                if not args.skip_plain:
                    samples["plain"].append(run([python, "benchmarks/plain_training.py", str(SPEC), *overrides], env))
                samples["pipeline_cold"].append(run([python, "run.py", "train", "--no-cache", *sets], env))
                samples["pipeline_cached"].append(run([python, "run.py", "train", *sets], env))
            print(f"rows={rows} repeat={repeat + 1}: " + ", ".join(
                f"{k} {v[-1][0]:.1f}s/{v[-1][1]:.0f}MiB" for k, v in samples.items() if v), flush=True)
        summary = {k: {"median_s": statistics.median(w for w, _ in v), "peak_mib": max(m for _, m in v),
                       "samples": v} for k, v in samples.items() if v}
        if samples["plain"]:
            summary["overhead_ratio"] = summary["pipeline_cold"]["median_s"] / summary["plain"]["median_s"]
        summary["cached_share"] = summary["pipeline_cached"]["median_s"] / summary["pipeline_cold"]["median_s"]
        summary["overrides"] = overrides
        (out / f"training-{rows}.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, default=str), flush=True)


if __name__ == "__main__":
    main()

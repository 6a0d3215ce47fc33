"""Benchmark: the evaluation pipeline on a 100k-row test split, wall time split by dimension (step).

    .venv/bin/python benchmarks/evaluation.py --rows 500000 --repeats 3

Trains once (rows x test_fraction 0.2 = the test rows), then runs `run.py evaluate` `--repeats`
times, each a fresh process with the cache off; step durations come from the ZenML store.
Writes benchmarks/results/evaluation-<test rows>.json.
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
sys.path.insert(0, str(ROOT))

from keel.artifacts import Artifact  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="keel-bench-eval-")
    os.environ.update(ZENML_CONFIG_PATH=f"{home}/zenml", ZENML_ANALYTICS_OPT_IN="false")
    sets = ["--set", f"data.source.rows={args.rows}", "--set", "problem.name=bench_eval"]
    subprocess.run([sys.executable, "run.py", "train", *sets], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    walls, per_step = [], {}
    for repeat in range(args.repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "run.py"), "evaluate", "--no-cache", *sets], cwd=home,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        walls.append(time.perf_counter() - started)
        if done.returncode not in (0, 3):
            raise RuntimeError(done.stderr[-3000:])
        from zenml.client import Client

        run = Client().get_pipeline("evaluation_pipeline").last_run
        for name, step in run.steps.items():
            per_step.setdefault(name, []).append((step.end_time - step.start_time).total_seconds())
        print(f"repeat {repeat + 1}: {walls[-1]:.1f} s", flush=True)
    explainability = run.steps["explainability_step"].outputs[Artifact.EXPLAINABILITY_REPORT][0].load()
    test_rows = run.steps["performance_step"].outputs[Artifact.PERFORMANCE_REPORT][0].load()["rows"]
    result = {"test_rows": test_rows, "process_wall_median_s": statistics.median(walls), "walls": walls,
              "step_median_s": {k: statistics.median(v) for k, v in sorted(per_step.items(), key=lambda i: -statistics.median(i[1]))},
              "shap_sample_size": explainability["sample_size"], "shap_rows_per_second": explainability["rows_per_second"]}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"evaluation-{test_rows}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

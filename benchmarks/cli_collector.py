"""Benchmark: a command's process with keel's garbage-collector thresholds against CPython's defaults.

    .venv/bin/python benchmarks/cli_collector.py --repeats 5

Both variants run the same `run.py` in a fresh process (through runpy, so that both start alike); the
baseline turns `gc.set_threshold` into a no-op first, so the process keeps CPython's (700, 10, 10).
The variants alternate, on one throw-away ZenML store made by a first, unmeasured command. Wall time
and peak RSS per process (benchmarks/training.py's `run`); medians and their ratio go to
benchmarks/results/cli_collector.json with the command that reproduces them.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import ROOT, run  # noqa: E402

COMMANDS = {
    "train": ["train", "--no-cache", "--set", "data.source.rows=1500", "--set", "training.candidate.trials=1"],
    "runs": ["runs"],
}
LAUNCH = "import gc, runpy, sys; {prelude}sys.argv = ['run.py', *sys.argv[1:]]; runpy.run_path('run.py', run_name='__main__')"
VARIANTS = {"cpython_defaults": "gc.set_threshold = lambda *thresholds: None; ", "keel": ""}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    samples = {command: {variant: [] for variant in VARIANTS} for command in COMMANDS}
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ZENML_CONFIG_PATH": f"{home}/zenml", "ZENML_ANALYTICS_OPT_IN": "false",
               "KEEL_LAST_SPEC": f"{home}/last_spec"}
        run([sys.executable, "run.py", *COMMANDS["train"]], env)  # the store, created once, unmeasured
        for repeat in range(args.repeats):
            for command, arguments in COMMANDS.items():
                for variant, prelude in VARIANTS.items():
                    launch = LAUNCH.format(prelude=prelude)
                    samples[command][variant].append(run([sys.executable, "-c", launch, *arguments], env))
            print(f"repeat {repeat + 1}: " + "; ".join(
                f"{command} " + ", ".join(f"{v} {s[-1][0]:.2f}s" for v, s in by.items())
                for command, by in samples.items()), flush=True)
    summary = {}
    for command, by in samples.items():
        medians = {variant: statistics.median(wall for wall, _ in s) for variant, s in by.items()}
        summary[command] = {
            "median_s": medians, "peak_mib": {variant: max(rss for _, rss in s) for variant, s in by.items()},
            "ratio_keel_to_defaults": medians["keel"] / medians["cpython_defaults"], "samples": by}
        print(f"{command}: CPython defaults {medians['cpython_defaults']:.2f} s, keel {medians['keel']:.2f} s "
              f"(ratio {summary[command]['ratio_keel_to_defaults']:.2f})")
    out = ROOT / "benchmarks" / "results" / "cli_collector.json"
    out.write_text(json.dumps({"command": f".venv/bin/python benchmarks/cli_collector.py --repeats {args.repeats}",
                               "load_average": os.getloadavg(), "python": platform.python_version(),
                               "commands": {c: ["run.py", *a] for c, a in COMMANDS.items()}, "results": summary},
                              indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()

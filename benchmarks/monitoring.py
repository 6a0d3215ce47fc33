"""Benchmark: whylogs profiling through keel against pandas `describe()`, profile merges, drift
scores for 30 columns, and one monitoring pass over a 1M-prediction window of the prediction log.

    .venv/bin/python benchmarks/monitoring.py --rows 1000000 --repeats 3

The 30-column frame: the generator's 19 model features (8 float, 6 integer, 5 categorical), its 2
sensitive attributes and label, a score and a decision, and 6 Gaussian float columns. Timings are
medians over `--repeats`, in this process; pandas `describe()` runs on the same frame in the same
process. The monitoring pass runs what the monitoring steps run (no ZenML; its step overhead is
reported by the main job): read the new rows from a SQLite prediction log (1M rows, JSON inputs),
profile them per hour on `--workers` processes and store the hours, merge the judged day from the
stored hours, join 1M delayed labels, judge the four kinds of drift, apply the policy, write the
report. Then, unless `--skip-cli`, the same over the whole command: `python run.py monitor
--no-retrain` (ZenML pipeline, artifacts, report file) for a small model version trained and
evaluated in a temporary ZenML store. Writes benchmarks/results/monitoring.json.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def timed(function, repeats: int):
    walls, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        walls.append(time.perf_counter() - started)
    return statistics.median(walls), walls, result


def thirty_columns(spec, rows: int) -> pd.DataFrame:
    from keel.data.generator import generate_credit_applications

    frame = generate_credit_applications(spec.data.source.model_copy(update={"rows": rows, "seed": 1}))
    rng = np.random.default_rng(0)
    frame = frame[[*spec.data.model_features, "sex", "age_band", "default"]].copy()
    frame["score"] = rng.beta(2, 8, rows)
    frame["decision"] = (frame["score"] >= 0.3).astype(np.int64)
    for i in range(6):
        frame[f"gaussian_{i}"] = rng.normal(size=rows)
    return frame


def fill_prediction_log(url: str, frame: pd.DataFrame, features, start: datetime) -> None:
    """1M served predictions over one day, written straight into the log's table (setup, untimed)."""
    import sqlalchemy as sa

    from keel.serving.prediction_log import PREDICTIONS, PredictionLog

    log = PredictionLog(url)
    inputs = frame[features].astype(object).where(frame[features].notna(), None).to_dict(orient="records")
    step = timedelta(days=1) / len(frame)
    scores = frame["score"].to_numpy()
    with log.engine.begin() as connection:
        for begin in range(0, len(frame), 100_000):
            rows = [{"request_id": f"r{i}", "row": 0, "entity_id": f"e{i}", "time": start + i * step,
                     "model_name": "bench", "model_version": 1, "arm": "champion", "shadow": False,
                     "inputs": json.dumps(inputs[i], default=str), "score": float(scores[i]),
                     "decision": int(scores[i] >= 0.3), "latency_ms": 1.0}
                    for i in range(begin, min(begin + 100_000, len(frame)))]
            connection.execute(sa.insert(PREDICTIONS), rows)
    log.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-cli", action="store_true", help="skip `run.py monitor` over the 1M-row log")
    args = parser.parse_args()

    import whylogs as why

    from keel.monitoring.drift import feature_drift
    from keel.monitoring.profiles import compare_columns, merge_profiles, profile_frame
    from keel.spec import load_spec

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    frame = thirty_columns(spec, args.rows)
    assert frame.shape[1] == 30, frame.shape
    result = {"rows": args.rows, "columns": frame.shape[1], "cpu_count": os.cpu_count(), "workers": args.workers,
              "repeats": args.repeats, "load_average_at_start": os.getloadavg()[0]}
    print(f"frame: {frame.shape}, dtypes {frame.dtypes.astype(str).value_counts().to_dict()}", flush=True)

    describe, walls, _ = timed(lambda: frame.describe(include="all"), args.repeats)
    result["pandas_describe_all_s"] = describe
    result["pandas_describe_numeric_s"], _, _ = timed(lambda: frame.describe(), args.repeats)
    print(f"pandas describe(include='all'): {describe:.2f} s", flush=True)

    plain, _, _ = timed(lambda: why.log(pandas=frame).view(), 1)  # once: it is the slow reference
    result["whylogs_why_log_s"] = plain
    print(f"why.log (plain whylogs, one process): {plain:.1f} s", flush=True)
    single, _, _ = timed(lambda: profile_frame(frame, workers=1), args.repeats)
    result["keel_profile_1_process_s"] = single
    print(f"keel profile, 1 process: {single:.2f} s", flush=True)
    parallel, walls, profile = timed(lambda: profile_frame(frame, workers=args.workers, chunk_rows=250_000,
                                                           parallel_from_rows=200_000), args.repeats)
    result.update(keel_profile_parallel_s=parallel, keel_profile_parallel_walls=walls,
                  keel_rows_per_second=args.rows / parallel, whylogs_rows_per_second=args.rows / plain,
                  ratio_keel_parallel_vs_describe_all=parallel / describe,
                  ratio_keel_1_process_vs_describe_all=single / describe,
                  ratio_why_log_vs_describe_all=plain / describe)
    print(f"keel profile, {args.workers} processes: {parallel:.2f} s ({parallel / describe:.1f}x describe)", flush=True)

    hours = [profile_frame(frame.iloc[i::10]) for i in range(10)]
    result["merge_10_profiles_s"], _, _ = timed(lambda: merge_profiles(hours), args.repeats)
    reference = profile_frame(thirty_columns(spec, 20_000))
    columns = list(frame.columns)
    drift, _, _ = timed(lambda: feature_drift(compare_columns(profile, reference, columns),
                                              spec.monitoring.drift.features), args.repeats)
    result["drift_30_columns_s"] = drift
    print(f"merge 10 profiles: {result['merge_10_profiles_s']:.3f} s; drift on 30 columns: {drift:.3f} s", flush=True)

    result["monitoring_pass"] = monitoring_pass(spec, frame, args)
    result["load_average_at_end"] = os.getloadavg()[0]  # the machine is shared: other work competes
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitoring.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def cli_pass(log_url: str, labels: Path, home: Path, repeats: int) -> dict:
    """`python run.py monitor --no-retrain` (ZenML pipeline, artifacts, report) over the same 1M-row
    log, for a small model version trained and evaluated here (its references are real)."""
    import subprocess

    env = {**os.environ, "ZENML_CONFIG_PATH": str(home / "zenml"), "ZENML_ANALYTICS_OPT_IN": "false"}
    sets = ["problem.name=bench_monitor", "data.source.rows=5000", "training.candidate.trials=1",
            f"deployment.folder={home / 'cli-deployments'}", "deployment.allow_folder_outside_project=true",
            f"deployment.prediction_log_url={log_url}",
            f"monitoring.labels.source={{kind: csv, path: {labels}}}"]
    args = [a for s in sets for a in ("--set", s)]
    for command in ("train", "evaluate"):
        done = subprocess.run([sys.executable, "run.py", command, *args], cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode not in (0, 3):
            raise RuntimeError(f"{command} failed:\n{done.stderr[-3000:]}")
    promote = home / "promote.py"  # a file: ZenML wants a main module with a path
    promote.write_text("from keel.registry import promote_to_production, resolve_version\n"
                       "promote_to_production('bench_monitor', resolve_version('bench_monitor', None))\n")
    done = subprocess.run([sys.executable, str(promote)], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"promotion failed:\n{done.stderr[-3000:]}")
    walls = []
    for _ in range(repeats):
        shutil.rmtree(home / "cli-deployments", ignore_errors=True)  # a cold window store each time
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "run.py", "monitor", "--no-retrain", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"monitor failed:\n{done.stderr[-3000:]}")
    window = [line for line in done.stdout.splitlines() if line.startswith("window:")]
    print(f"run.py monitor over the 1M-row log: {statistics.median(walls):.1f} s ({window[0] if window else ''})",
          flush=True)
    return {"wall_median_s": statistics.median(walls), "walls": walls, "window_line": window[0] if window else None}


def monitoring_pass(spec, frame: pd.DataFrame, args) -> dict:
    """One monitoring pass over a 1M-prediction day, from a cold window store each repeat."""
    from keel.monitoring.monitor import assess_window, labelled_window, update_window
    from keel.monitoring.policy import decide
    from keel.monitoring.reference import reference_profiles
    from keel.monitoring.report import drift_report_html
    from keel.spec.monitoring import CsvLabels

    home = Path(tempfile.mkdtemp(prefix="keel-bench-monitor-"))
    features = spec.data.model_features
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    log_url = f"sqlite:///{home / 'predictions.db'}"
    began = time.perf_counter()
    fill_prediction_log(log_url, frame, features, start)
    setup_s = time.perf_counter() - began
    labels = home / "labels.csv"
    pd.DataFrame({"entity_id": [f"e{i}" for i in range(len(frame))], "label": frame["default"],
                  "time": (start + timedelta(days=2)).isoformat()}).to_csv(labels, index=False)

    class Scores:  # the log's scores are Beta(2, 8) draws: the reference model draws the same way
        feature_names_in_ = features

        def predict_proba(self, x):
            score = np.random.default_rng(2).beta(2, 8, len(x))
            return np.column_stack([1 - score, score])

    train = thirty_columns(spec, 20_000)
    test = thirty_columns(spec, 5_000)
    data_ref, prediction_ref, summary = reference_profiles(Scores(), train, test, 0.3, spec)
    bench = spec.model_copy(update={
        "deployment": spec.deployment.model_copy(update={"folder": str(home / "deployments"),
                                                         "prediction_log_url": log_url}),
        "monitoring": spec.monitoring.model_copy(update={
            "labels": spec.monitoring.labels.model_copy(update={"source": CsvLabels(kind="csv", path=labels)}),
            "profiling": spec.monitoring.profiling.model_copy(update={"workers": args.workers})})})
    stages = {}

    def one_pass():
        shutil.rmtree(home / "deployments", ignore_errors=True)
        clock = time.perf_counter()
        profile, window = update_window(bench, 1, log_url)
        stages.setdefault("read_profile_store_s", []).append(time.perf_counter() - clock)
        clock = time.perf_counter()
        labelled, report = labelled_window(bench, window, None, log_url)
        stages.setdefault("labels_join_s", []).append(time.perf_counter() - clock)
        clock = time.perf_counter()
        status = assess_window(profile, window, data_ref, prediction_ref, summary, labelled, report, bench)
        decision = decide(datetime.now(timezone.utc), status, report["new_labelled_rows"], start, [],
                          bench.monitoring.retraining, 1)
        drift_report_html(status, decision)
        stages.setdefault("drift_policy_report_s", []).append(time.perf_counter() - clock)
        return window, status

    wall, walls, (window, status) = timed(one_pass, args.repeats)
    cli = None if args.skip_cli else cli_pass(log_url, labels, home, args.repeats)
    shutil.rmtree(home, ignore_errors=True)
    print(f"monitoring pass over {window['rows']} predictions: {wall:.1f} s (stages "
          f"{ {k: round(statistics.median(v), 2) for k, v in stages.items()} })", flush=True)
    return {"predictions": window["rows"], "hours": len(window["added"]), "wall_median_s": wall, "walls": walls,
            "stage_median_s": {k: statistics.median(v) for k, v in stages.items()}, "log_fill_setup_s": setup_s,
            "labelled_rows": status["labels"]["matched"], "verdict": status["verdict"]["summary"],
            "run_py_monitor": cli}


if __name__ == "__main__":
    main()

"""Benchmark: what the dask engine costs where it is not needed (1M rows, Dask / local), and the
profiling of partitioned predictions on 2 local workers (time, peak memory per worker).

    .venv/bin/python benchmarks/dask_engine.py --rows 1000000 --profile-rows 1000000 5000000 --repeats 3

Data: the generator's credit applications (`configs/credit_risk.yaml`), written as Parquet files of
250,000 rows (row groups of 125,000) in hive folders. Cluster: `distributed.LocalCluster`, 2 worker
processes x 1 thread, 4 GiB memory limit each, TCP on 127.0.0.1, started once (its start-up is
reported apart). Peak memory per worker: each worker process's own peak RSS (`ru_maxrss`), read
after each measurement from a fresh cluster (so it is that measurement's peak).

1. Data phase, local vs dask: read + validate (pandera) + fingerprint + split, as the training
   pipeline does it on each engine (local: `load_frame`, `validate_frame`, `fingerprint_frame`,
   `split_frame`; dask: `keel.engine.dask_run.prepare`, which also draws the search samples).
2. Refit of one LightGBM (the spec's first search trial, 200 trees) on the whole training split:
   local `LGBMClassifier` (1 thread) vs `DaskLGBMClassifier` on the 2 workers. The dask timing
   reads, validates and splits the Parquet first (as the refit step does); locally both the fit
   alone and the same reading, validation and split first are timed.
3. Profiling predictions (the model's 19 features + score + decision) held as partitioned Parquet:
   `keel.engine.dask_monitoring.profile_parquet` on the 2 workers, for each `--profile-rows`, against
   keel's own in-process profiling (`profile_frame`, 1 process) of the same rows read with pandas.
4. Batch scoring of the partitioned applications (a LightGBM pipeline fit by keel on 50,000 of them):
   local `keel.batch.scoring.score_batch` (1 process, chunks of 100,000 rows) vs
   `keel.engine.dask_scoring.score_partitioned` on the 2 workers (one task per row group, the same
   chunks inside it, monitoring profiles per partition; locally keel's BatchProfiler per chunk); both
   runs' counts and rejects must agree.
Writes benchmarks/results/dask_engine.json (or --out).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FILE_ROWS = 250_000


def timed(function, repeats: int):
    walls, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        walls.append(time.perf_counter() - started)
        print(f"local run {len(walls)}: {walls[-1]:.1f} s", file=sys.stderr, flush=True)  # progress of long runs
    return statistics.median(walls), walls, result


def write_parts(frame: pd.DataFrame, folder: Path) -> None:
    for i, start in enumerate(range(0, len(frame), FILE_ROWS)):
        part = folder / f"month={i % 12 + 1:02d}"
        part.mkdir(parents=True, exist_ok=True)
        frame.iloc[start:start + FILE_ROWS].to_parquet(part / f"part-{i:04d}.parquet", index=False,
                                                       row_group_size=FILE_ROWS // 2)


def spec_on(folder: Path, work: Path):
    import yaml

    from keel.spec import load_spec

    raw = yaml.safe_load((ROOT / "configs" / "credit_risk.yaml").read_text())
    raw["data"]["source"] = {"kind": "parquet", "path": str(folder)}
    raw["monitoring"]["simulation"] = None
    path = work / f"{folder.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


class WorkerMemory:
    """The peak RSS of each worker process, sampled every 0.2 s from outside (psutil) while a
    measurement runs (a worker's own ru_maxrss would include what it inherited)."""

    def __init__(self, client):
        import psutil

        self.processes = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        self.peaks = [0] * len(self.processes)
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while self.running:
            for i, process in enumerate(self.processes):
                try:
                    self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
                except Exception:  # a worker restarted
                    pass
            time.sleep(0.2)

    def stop(self):
        self.running = False
        self.thread.join()
        return sorted(round(peak / 2**20) for peak in self.peaks)


def on_fresh_cluster(function, memory_limit: str):
    """(seconds, result, peak RSS MiB of each worker) of `function(client, engine)` on a new cluster."""
    from distributed import LocalCluster

    from keel.engine.cluster import WORKER_ENVIRONMENT, connect, disconnect
    from keel.engine.spec import DaskEngine

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=memory_limit, env=WORKER_ENVIRONMENT) as cluster:
        engine = DaskEngine(kind="dask", scheduler_address=cluster.scheduler_address)
        client = connect(engine)
        client.run(lambda: __import__("keel.engine.dask_data") and None)  # imports off the clock
        memory = WorkerMemory(client)
        started = time.perf_counter()
        result = function(client, engine)
        seconds = time.perf_counter() - started
        peaks = memory.stop()
        disconnect(engine)
    return seconds, result, peaks


def data_phase(spec, repeats: int, memory_limit: str) -> dict:
    from keel.data.fingerprint import fingerprint_frame
    from keel.data.schema import validate_frame
    from keel.data.sources import load_frame
    from keel.data.split import split_frame
    from keel.engine.dask_run import prepare

    def local():
        frame, report = validate_frame(load_frame(spec.data), spec.data)
        parts = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
        return fingerprint_frame(frame), [len(p) for p in parts]

    local_s, local_walls, (local_fp, _) = timed(local, repeats)
    dask_walls, peaks = [], []
    for _ in range(repeats):
        seconds, prepared, worker_peaks = on_fresh_cluster(
            lambda client, engine: prepare(spec.data, spec.split, engine.model_copy(update={"search_sample_rows": 200_000})),
            memory_limit)
        dask_walls.append(seconds)
        peaks.append(worker_peaks)
    assert prepared.fingerprint == local_fp, "the engines disagree on the fingerprint"
    dask_s = statistics.median(dask_walls)
    return {"local_s": local_s, "local_walls": local_walls, "dask_s": dask_s, "dask_walls": dask_walls,
            "ratio_dask_over_local": dask_s / local_s, "dask_worker_peak_rss_mib": peaks,
            "same_fingerprint": True,
            "dask_rows": prepared.record["rows"]}


def refit_phase(spec, repeats: int, memory_limit: str) -> dict:
    from keel.data.schema import validate_frame
    from keel.data.sources import load_frame
    from keel.data.split import split_frame
    from keel.engine.dask_data import read_partitions, split_partitions, validated_partitions
    from keel.engine.dask_training import refit_lightgbm, whole_split_metrics
    from keel.features.preprocessing import fit_preprocessor
    from keel.training.estimators import lightgbm_trial_params, make_lightgbm
    from keel.training.fit import _compose, predict_scores
    from keel.training.metrics import score
    from keel.training.search import sample_parameters

    training = spec.training
    params = lightgbm_trial_params(training.candidate, sample_parameters(training.candidate, training.seed)[0])
    frame, _ = validate_frame(load_frame(spec.data), spec.data)
    train, _, test = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    features = fit_preprocessor(train.sample(min(len(train), 200_000), random_state=0), spec.data)

    def local():
        model = make_lightgbm(params, training.seed, training.threads)
        model.fit(features.transform(train[spec.data.model_features]), train[spec.data.target.column])
        return score(test[spec.data.target.column], predict_scores(_compose(features, model), test))

    local_s, local_walls, local_metrics = timed(local, repeats)

    def local_from_parquet():  # what the dask timing includes: reading, validating and splitting first
        frame, _ = validate_frame(load_frame(spec.data), spec.data)
        train, _, test = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
        model = make_lightgbm(params, training.seed, training.threads)
        model.fit(features.transform(train[spec.data.model_features]), train[spec.data.target.column])
        return score(test[spec.data.target.column], predict_scores(_compose(features, model), test))

    from_parquet_s, from_parquet_walls, from_parquet_metrics = timed(local_from_parquet, repeats)
    assert from_parquet_metrics == local_metrics, "the same data and seed must give the same local model"

    def on_dask(client, engine):
        raw = read_partitions(spec.data, engine)
        parts = split_partitions(client, validated_partitions(raw, spec.data), spec.data, spec.split)
        model = refit_lightgbm(client, _compose(features, None), params, parts[0], spec.data, training)
        return whole_split_metrics(client, model, parts[2], spec.data)

    walls, peaks = [], []
    for _ in range(repeats):
        seconds, dask_metrics, worker_peaks = on_fresh_cluster(on_dask, memory_limit)
        walls.append(seconds)
        print(f"dask refit run {len(walls)}: {seconds:.1f} s, {dask_metrics}", file=sys.stderr, flush=True)
        peaks.append(worker_peaks)
    dask_s = statistics.median(walls)
    return {"params": params, "local_threads": training.threads, "local_s": local_s, "local_walls": local_walls,
            "local_from_parquet_s": from_parquet_s, "local_from_parquet_walls": from_parquet_walls,
            "dask_s": dask_s, "dask_walls": walls, "ratio_dask_over_local": dask_s / local_s,
            "ratio_dask_over_local_from_parquet": dask_s / from_parquet_s, "dask_worker_peak_rss_mib": peaks,
            "local_test_roc_auc": local_metrics["roc_auc"], "dask_test_roc_auc": dask_metrics["roc_auc"],
            "local_test_metrics": local_metrics, "dask_test_metrics": dask_metrics,
            "note": "dask: read, validate and split again from Parquet inside the timing (as the refit step does); "
                    "local_s: fit and test scoring only, local_from_parquet_s: the same reading, validation and "
                    "split first"}


def predictions(spec, rows: int) -> pd.DataFrame:
    from keel.data.generator import generate_credit_applications

    frame = generate_credit_applications(spec.data.source.model_copy(update={"rows": rows, "seed": 2}))
    rng = np.random.default_rng(0)
    kept = frame[list(spec.data.model_features)].copy()
    kept["score"] = rng.random(rows)
    kept["decision"] = (kept["score"] >= 0.5).astype(np.int64)
    return kept


def profiling_phase(generator_spec, rows_list, repeats: int, memory_limit: str, work: Path) -> list:
    from keel.engine.dask_monitoring import profile_parquet
    from keel.monitoring.profiles import profile_frame

    results = []
    for rows in rows_list:
        folder = work / f"predictions-{rows}"
        frame = predictions(generator_spec, rows)
        write_parts(frame, folder)
        del frame
        walls, peaks = [], []
        for _ in range(repeats):
            seconds, (profile, seen, partitions), worker_peaks = on_fresh_cluster(
                lambda client, engine: profile_parquet(client, folder), memory_limit)
            walls.append(seconds)
            peaks.append(worker_peaks)
        assert seen == rows
        counted = profile.view.get_column("score").get_metric("counts").n.value
        local_s, local_walls, _ = timed(lambda: profile_frame(pd.read_parquet(folder)), 1)
        results.append({"rows": rows, "partitions": partitions, "dask_s": statistics.median(walls), "dask_walls": walls,
                        "rows_per_second": rows / statistics.median(walls), "dask_worker_peak_rss_mib": peaks,
                        "local_1_process_read_and_profile_s": local_s, "profile_counts_score": int(counted)})
        print(json.dumps(results[-1]), flush=True)
    return results


def scoring_phase(spec, repeats: int, memory_limit: str, work: Path) -> dict:
    from keel.batch.inputs import batch_source
    from keel.batch.scoring import score_batch
    from keel.data.schema import validate_frame
    from keel.data.sources import load_frame
    from keel.data.split import split_frame
    from keel.engine.dask_scoring import score_partitioned
    from keel.features.preprocessing import fit_preprocessor
    from keel.training.fit import fit_candidate

    small = spec.model_copy(update={"training": spec.training.model_copy(update={
        "candidate": spec.training.candidate.model_copy(update={"trials": 1})})})
    frame, _ = validate_frame(load_frame(spec.data).iloc[:50_000], spec.data)
    train, validation, _ = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    model = fit_candidate(fit_preprocessor(train, spec.data), train, validation, spec.data, small.training)[0].pipeline
    source = batch_source(str(spec.data.source.path), spec.data)
    common = dict(source=source, data=spec.data, model=model, threshold=0.3, model_version=1,
                  input_fingerprint="sha256:benchmark", chunk_rows=100_000)

    def local():
        from keel.monitoring.batch_traffic import BatchProfiler

        profiler = BatchProfiler(work / "monitoring-local", "local", 1, spec.data.model_features, spec.data.id_column, {})
        result = score_batch(**common, batch_id="local", output=work / "local.parquet",
                             rejects=work / "local.rejects.parquet", on_chunk=profiler)
        profiler.abandon()  # measured: the profiling and the monitoring rows, not their publication
        return result

    local_s, local_walls, local_result = timed(local, repeats)
    walls, peaks = [], []
    for i in range(repeats):
        seconds, batch, worker_peaks = on_fresh_cluster(
            lambda client, engine: score_partitioned(client, **common, batch_id=f"dask-{i}",
                                                     output=work / "dask.parquet",
                                                     rejects=work / "dask.rejects.parquet",
                                                     predictions_folder=work / f"predictions-{i}",
                                                     features=spec.data.model_features), memory_limit)
        walls.append(seconds)
        peaks.append(worker_peaks)
    result = batch.result
    assert (result["rows_read"], result["scored"], result["rejected"]) == \
        (local_result["rows_read"], local_result["scored"], local_result["rejected"])
    assert result["rejects_fingerprint"] == local_result["rejects_fingerprint"]
    dask_s = statistics.median(walls)
    return {"rows": local_result["rows_read"], "partitions": batch.partitions, "local_s": local_s,
            "local_walls": local_walls, "dask_s": dask_s, "dask_walls": walls,
            "ratio_dask_over_local": dask_s / local_s, "dask_worker_peak_rss_mib": peaks,
            "monitored_rows": batch.monitored_rows,
            "note": "both with their monitoring work: local score_batch with keel's BatchProfiler per chunk; dask "
                    "with profiles per partition on the workers and the monitoring rows written there"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--profile-rows", type=int, nargs="*", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-limit", default="4GiB")
    parser.add_argument("--skip", nargs="*", default=[], choices=["data", "refit", "profiling", "scoring"])
    parser.add_argument("--out", default="dask_engine.json", help="file name under benchmarks/results/")
    args = parser.parse_args()

    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec

    generator_spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    result = {"rows": args.rows, "repeats": args.repeats, "cpu_count": os.cpu_count(), "workers": 2,
              "threads_per_worker": 1, "memory_limit": args.memory_limit,
              "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="keel-dask-bench-") as scratch:
        work = Path(scratch)
        folder = work / "applications"
        write_parts(generate_credit_applications(generator_spec.data.source.model_copy(update={"rows": args.rows})), folder)
        spec = spec_on(folder, work)
        if "data" not in args.skip:
            result["data_phase"] = data_phase(spec, args.repeats, args.memory_limit)
            print(json.dumps(result["data_phase"]), flush=True)
        if "refit" not in args.skip:
            result["refit"] = refit_phase(spec, args.repeats, args.memory_limit)
            print(json.dumps(result["refit"]), flush=True)
        if "profiling" not in args.skip:
            result["profiling"] = profiling_phase(generator_spec, args.profile_rows, args.repeats, args.memory_limit, work)
        if "scoring" not in args.skip:
            result["scoring"] = scoring_phase(spec, args.repeats, args.memory_limit, work)
            print(json.dumps(result["scoring"]), flush=True)
    result["load_average_at_end"] = os.getloadavg()[0]
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

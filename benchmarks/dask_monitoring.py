"""Benchmark: monitoring's profiling of N predictions held as partitioned Parquet on the dask engine,
2 local worker processes with a memory limit each: time and peak memory per worker at several sizes,
to show that a worker's memory follows the partition size, not the total rows.

    .venv/bin/python benchmarks/dask_monitoring.py --rows 1000000 10000000 --memory-limit 2GiB

What runs: `keel.engine.dask_monitoring.profile_parquet` (one task per Parquet row group on the
workers, keel's `profile_bytes` over the monitored columns, profiles merged in this process; the
per-partition profiling the dask engine's batch scoring does for monitoring). Columns: the demo
spec's 19 model features + score + decision, as the monitor profiles them.
Data: written by a streaming generator, one file of `--file-rows` at a time (row groups of half of
it), so this process never holds more than one file: the generator's credit applications (one
draw of `--file-rows`, shuffled per file) with fresh seeded scores and decisions per file. Cluster:
`distributed.LocalCluster`, 2 worker processes x 1 thread, TCP on 127.0.0.1, a fresh one per size,
with the environment keel gives the workers it starts (`keel.engine.cluster.WORKER_ENVIRONMENT`:
Arrow's system allocator); whylogs imported on the workers before the clock starts; their RSS then
("before"), the peak RSS per worker sampled from outside every 0.2 s (psutil), and their RSS once
the profiling is done ("after"). Each size is one run (stated in the
output). Writes benchmarks/results/dask_monitoring.json (or --out).
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

import numpy as np  # noqa: E402


def write_predictions(folder: Path, rows: int, file_rows: int, seed: int = 0) -> int:
    """Write `rows` predictions as Parquet files of `file_rows` in hive folders, one file in memory
    at a time. Returns the number of files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    base = generate_credit_applications(spec.data.source.model_copy(update={"rows": file_rows, "seed": 2}))
    base = base[list(spec.data.model_features)].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    files = 0
    for start in range(0, rows, file_rows):
        count = min(file_rows, rows - start)
        part = base.iloc[rng.permutation(file_rows)[:count]].reset_index(drop=True)
        part["score"] = rng.random(count)
        part["decision"] = (part["score"] >= 0.5).astype(np.int64)
        target = folder / f"day={files // 24:03d}" / f"part-{files:05d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), target, row_group_size=file_rows // 2)
        files += 1
        del part
    return files


def on_fresh_cluster(function, memory_limit: str):
    """(seconds, result, peak RSS MiB per worker, RSS MiB per worker before) of `function(client)` on
    a new cluster whose workers imported keel's profiling (whylogs) off the clock."""
    import psutil
    from dask_engine import WorkerMemory
    from distributed import LocalCluster

    from keel.engine.cluster import WORKER_ENVIRONMENT, connect, disconnect
    from keel.engine.spec import DaskEngine

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=memory_limit, env=WORKER_ENVIRONMENT) as cluster:
        engine = DaskEngine(kind="dask", scheduler_address=cluster.scheduler_address)
        client = connect(engine)
        client.run(lambda: __import__("keel.monitoring.profiles") and __import__("whylogs.core") and None)
        pools = sorted(set(client.run(lambda: __import__("pyarrow").default_memory_pool().backend_name).values()))
        before = sorted(round(psutil.Process(pid).memory_info().rss / 2**20) for pid in client.run(os.getpid).values())
        memory = WorkerMemory(client)
        started = time.perf_counter()
        result = function(client)
        seconds = time.perf_counter() - started
        peaks = memory.stop()
        after = sorted(round(process.memory_info().rss / 2**20) for process in memory.processes)
        disconnect(engine)
    return seconds, result, peaks, before, pools, after


def measure(rows: int, file_rows: int, memory_limit: str, work: Path) -> dict:
    from keel.engine.dask_monitoring import IN_FLIGHT_PER_WORKER, profile_parquet

    folder = work / f"predictions-{rows}"
    started = time.perf_counter()
    files = write_predictions(folder, rows, file_rows)
    written_s = time.perf_counter() - started
    size = sum(path.stat().st_size for path in folder.rglob("*.parquet"))
    load = os.getloadavg()[0]
    seconds, (profile, seen, partitions), peaks, before, pools, after = on_fresh_cluster(
        lambda client: profile_parquet(client, folder), memory_limit)
    counted = int(profile.view.get_column("score").get_metric("counts").n.value)
    assert seen == rows == counted, (seen, rows, counted)
    result = {"rows": rows, "files": files, "partitions": partitions, "rows_per_partition": file_rows // 2,
              "parquet_mib": round(size / 2**20), "write_s": round(written_s, 1), "profile_s": round(seconds, 1),
              "rows_per_second": round(rows / seconds), "worker_peak_rss_mib": peaks,
              "worker_rss_before_mib": before, "worker_rss_after_mib": after, "worker_arrow_pool": pools,
              "tasks_in_flight_per_worker": IN_FLIGHT_PER_WORKER,
              "this_process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "load_average_before": load, "load_average_after": os.getloadavg()[0], "runs": 1,
              "profile_counts_score": counted}
    for path in folder.rglob("*.parquet"):  # the disk back before the next size
        path.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--file-rows", type=int, default=250_000)
    parser.add_argument("--memory-limit", default="2GiB")
    parser.add_argument("--out", default="dask_monitoring.json", help="file name under benchmarks/results/")
    args = parser.parse_args()

    result = {"cpu_count": os.cpu_count(), "workers": 2, "threads_per_worker": 1, "memory_limit": args.memory_limit,
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sizes": []}
    out = ROOT / "benchmarks" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keel-dask-monitoring-") as scratch:
        for rows in args.rows:
            result["sizes"].append(measure(rows, args.file_rows, args.memory_limit, Path(scratch)))
            print(json.dumps(result["sizes"][-1]), flush=True)
            out.write_text(json.dumps(result, indent=2))  # each size kept, should a later one be stopped
    result["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

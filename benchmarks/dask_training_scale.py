"""Benchmark: training on more data than one worker's memory limit, through keel's real pipeline.

    .venv/bin/python benchmarks/dask_training_scale.py --rows 10000000 --memory-limit 1.5GiB --workers 8 --trials 2

1. Writes `--rows` of the generator's credit applications as partitioned Parquet (files of 250,000
   rows, row groups of 125,000, hive folders; one file in memory at a time, a new generator seed
   per file so the ids stay unique) and a spec on it (the demo spec, `data.source` replaced).
2. `run.py stack apply stacks/dask-local.yaml` then `run.py train --stack dask-local --no-cache` on a
   throw-away ZenML store, with KEEL_DASK_WORKERS / KEEL_DASK_MEMORY_LIMIT: `--workers` worker
   processes x 1 thread, `--memory-limit` each (Dask's nanny restarts a worker past 95% of it).
3. The same spec with `run.py train --stack local` in a cgroup (v1 memory controller, a child of this
   process's own cgroup) whose memory.limit_in_bytes is the same limit: the kernel, not a sampler,
   bounds the local engine's memory (no swap here, so past the limit it is killed).

The RSS of every process of each run is sampled from outside every 0.2 s (psutil): the calling
process (run.py), each Dask worker (a `multiprocessing` spawn child), the peak per process.
Writes benchmarks/results/dask_training_scale-<rows>.json (or --out) and prints a summary.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FILE_ROWS = 250_000
MIB = 2 ** 20


def write_applications(folder: Path, rows: int) -> int:
    """`rows` generated applications as Parquet files of FILE_ROWS; returns the number of files."""
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec

    source = load_spec(ROOT / "configs" / "credit_risk.yaml").data.source
    files = 0
    for start in range(0, rows, FILE_ROWS):
        count = min(FILE_ROWS, rows - start)
        # seed s numbers its ids from 10,000,000 * s: one seed per file keeps every id unique.
        part = generate_credit_applications(source.model_copy(update={"rows": count, "seed": files + 1}))
        target = folder / f"month={files % 12 + 1:02d}" / f"part-{files:05d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        part.to_parquet(target, index=False, row_group_size=FILE_ROWS // 2)
        files += 1
    return files


def write_spec(folder: Path, work: Path, trials: int) -> Path:
    import yaml

    raw = yaml.safe_load((ROOT / "configs" / "credit_risk.yaml").read_text())
    raw["data"]["source"] = {"kind": "parquet", "path": str(folder)}
    raw["monitoring"]["simulation"] = None
    raw["training"]["candidate"]["trials"] = trials
    path = work / "applications.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Sampler:
    """Peak RSS of a process and each of its descendants, sampled every 0.2 s from outside."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peaks = {}  # pid -> [peak bytes, role]
        self.total_peak = 0
        self.timeline = []  # every ~2 s: (seconds, RSS MiB of each process then)
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    @staticmethod
    def _role(process) -> str:
        try:
            line = " ".join(process.cmdline())
        except Exception:
            return "?"
        if "spawn_main" in line:
            return "dask worker"
        if "resource_tracker" in line:
            return "resource tracker"
        return line[:80]

    def _sample(self):
        import psutil

        started, last = time.monotonic(), -2.0
        while self.running:
            now = time.monotonic() - started
            try:
                processes = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            total, seen = 0, {}
            for process in processes:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                seen[process.pid] = round(rss / MIB)
                entry = self.peaks.setdefault(process.pid, [0, None])
                if entry[1] is None:
                    entry[1] = "calling process (run.py)" if process.pid == self.root.pid else self._role(process)
                entry[0] = max(entry[0], rss)
            self.total_peak = max(self.total_peak, total)
            if now - last >= 2.0:
                self.timeline.append((round(now, 1), seen))
                last = now
            time.sleep(0.2)

    def stop(self) -> dict:
        self.running = False
        self.thread.join()
        return {"processes": [{"pid": pid, "role": role, "peak_rss_mib": round(peak / MIB)}
                              for pid, (peak, role) in sorted(self.peaks.items())],
                "sum_of_processes_peak_mib": round(self.total_peak / MIB), "timeline": self.timeline}


def memory_cgroup(limit_bytes: int) -> Path:
    """A child of this process's own memory cgroup (v1) limited to `limit_bytes`."""
    line = next((l for l in Path("/proc/self/cgroup").read_text().splitlines() if ":memory:" in l), None)
    if line is None or not Path("/sys/fs/cgroup/memory").is_dir():
        raise SystemExit("the local engine's run needs the cgroup v1 memory controller (and root); "
                         "none here: run with --skip local")
    group = Path("/sys/fs/cgroup/memory") / line.split(":", 2)[2].lstrip("/") / f"keel-bench-{os.getpid()}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
    return group


def bytes_of(limit: str) -> int:
    number, unit = re.fullmatch(r"([\d.]+)\s*(GiB|MiB)", limit).groups()
    return int(float(number) * (2 ** 30 if unit == "GiB" else 2 ** 20))


def measured(command, env, log: Path, cgroup: Path = None) -> dict:
    """Run `command`, in `cgroup` if given (it enters the group before exec); wall time, exit code,
    peak RSS per process, the output's tail."""
    if cgroup is not None:
        command = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *command]
    loads = os.getloadavg()
    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = Sampler(child.pid)
        code = child.wait()
    wall = time.perf_counter() - started
    memory = sampler.stop()
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    # What the run reported (the version, rows, metrics, steps' times) and what Dask said about memory.
    kept = re.compile(r"has finished in|^(model|data|code|metric|roc_auc|pr_auc|f1|precision|recall|accuracy|"
                      r"log_loss|brier|finished in|keel:)|memory|[Pp]aus|[Ss]pill|Restart|killed|MemoryError")
    result = {"command": command[-len(command):], "exit_code": code, "wall_s": round(wall, 1),
              "load_average_before": [round(x, 2) for x in loads],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], **memory,
              "output_tail": text[-4000:],
              "reported": [line for line in text.splitlines() if kept.search(line)][:300],
              "worker_restarts_logged": len(re.findall(r"exceeded 95% memory budget|Restarting worker", text))}
    if cgroup is not None:
        result["cgroup"] = {name: (cgroup / name).read_text().strip() for name in
                            ("memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt",
                             "memory.oom_control")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--memory-limit", default="1.5GiB", help="per Dask worker, and the local engine's cgroup")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6, help="the search's trials (on the seeded sample)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["dask", "local"])
    parser.add_argument("--data", type=Path, help="reuse applications written by an earlier run here")
    parser.add_argument("--out")
    args = parser.parse_args()

    python = sys.executable
    results = {"rows": args.rows, "memory_limit": args.memory_limit, "workers": args.workers,
               "threads_per_worker": 1, "trials": args.trials,
               "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="keel-scale-") as scratch:
        work = Path(scratch)
        folder = args.data or work / "applications"
        if not (folder / "month=01").exists():
            started = time.perf_counter()
            files = write_applications(folder, args.rows)
            print(f"wrote {args.rows:,} rows as {files} files in {time.perf_counter() - started:.0f} s", flush=True)
        import pyarrow.dataset as ds

        dataset = ds.dataset(str(folder), format="parquet", partitioning="hive")
        results["rows_in_parquet"] = dataset.count_rows()
        results["parquet_mib"] = round(sum(f.stat().st_size for f in folder.rglob("*.parquet")) / MIB)
        results["row_groups"] = sum(f.metadata.num_row_groups for f in dataset.get_fragments())
        spec = write_spec(folder, work, args.trials)
        env = {**os.environ, "ZENML_CONFIG_PATH": str(work / "zenml"), "ZENML_ANALYTICS_OPT_IN": "false",
               "WHYLOGS_NO_ANALYTICS": "True", "BENTOML_DO_NOT_TRACK": "True",
               "KEEL_LOCAL_ARTIFACTS": str(work / "artifacts"), "KEEL_DASK_WORKERS": str(args.workers),
               "KEEL_DASK_THREADS": "1", "KEEL_DASK_MEMORY_LIMIT": args.memory_limit}
        for stack in ("local", "dask-local"):
            subprocess.run([python, "run.py", "stack", "apply", f"stacks/{stack}.yaml", "--no-activate"],
                           cwd=ROOT, env=env, check=True, capture_output=True)
        train = [python, "run.py", "train", "--no-cache", "--config", str(spec)]
        if "dask" not in args.skip:
            results["dask"] = measured([*train, "--stack", "dask-local"], env, work / "dask.log")
            print(json.dumps({k: v for k, v in results["dask"].items() if k not in ("output_tail", "timeline")}), flush=True)
            print(results["dask"]["output_tail"][-2500:], flush=True)
        if "local" not in args.skip:
            group = memory_cgroup(bytes_of(args.memory_limit))
            try:
                results["local"] = measured([*train, "--stack", "local"], env, work / "local.log", group)
            finally:
                group.rmdir()
            print(json.dumps({k: v for k, v in results["local"].items() if k not in ("output_tail", "timeline")}), flush=True)
            print(results["local"]["output_tail"][-2500:], flush=True)
    out = ROOT / "benchmarks" / "results" / (args.out or f"dask_training_scale-{args.rows}.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""What one durable commit of a prediction costs, in process: keel's prediction log against a bare table.

    .venv/bin/python benchmarks/log_commit.py --commits 1500  -> benchmarks/results/log_commit.json

Commits one request's row at a time, `--commits` times, on the machine's temporary disk, in turn
through (a) keel's `PredictionLog.append_requests` (its table's primary key and two indexes, the
review queue, the held DB-API connection), and (b) a plain `sqlite3` table with the same columns and
no key or index, committed as a hand-written service would. Both: WAL, `synchronous=FULL` (one fsync a
commit), SQLite's default auto-checkpoint. Reported per variant: median, p99, p99.9 and max in µs, and
the positions of the commits slower than 1.5 ms and 3x the median (SQLite's auto-checkpoint runs inside
a commit every few hundred: their spacing shows it). `--rounds` alternates the variants.
"""

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keel  # noqa: E402,F401  (telemetry off)
from keel.clock import utc_now  # noqa: E402
from keel.serving.prediction_log import PredictionLog  # noqa: E402

INPUTS = {f"feature_{i}": i * 1.5 for i in range(12)}
PLAIN_COLUMNS = ("request_id TEXT, row INTEGER, entity_id TEXT, time TEXT, model_name TEXT, model_version INTEGER, "
                 "arm TEXT, shadow INTEGER, inputs TEXT, score REAL, decision INTEGER, latency_ms REAL, reasons TEXT")


def _row(index: int) -> dict:
    return {"request_id": uuid.uuid4().hex, "row": 0, "entity_id": f"e{index}", "time": utc_now(),
            "model_name": "credit_risk", "model_version": 1, "arm": "champion", "shadow": False,
            "inputs": INPUTS, "score": 0.42, "decision": 1, "latency_ms": 0.2, "reasons": None}


def keel_log(folder: Path, commits: int) -> list:
    log = PredictionLog(f"sqlite:///{folder / 'keel.db'}")
    timings = []
    for index in range(commits):
        rows = [_row(index)]
        started = time.perf_counter()
        log.append_requests([rows])
        timings.append(time.perf_counter() - started)
    log.close()
    return timings


def plain_table(folder: Path, commits: int) -> list:
    connection = sqlite3.connect(folder / "plain.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(f"CREATE TABLE predictions ({PLAIN_COLUMNS})")
    timings = []
    for index in range(commits):
        row = _row(index)
        started = time.perf_counter()
        connection.execute("BEGIN")
        connection.execute("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (row["request_id"], 0, row["entity_id"], row["time"].isoformat(), row["model_name"], 1,
                            row["arm"], 0, json.dumps(row["inputs"]), row["score"], 1, row["latency_ms"], None))
        connection.execute("COMMIT")
        timings.append(time.perf_counter() - started)
    connection.close()
    return timings


def summary(timings: list) -> dict:
    ordered = sorted(timings)
    median = statistics.median(ordered)
    slow = [i for i, t in enumerate(timings) if t > max(3 * median, 0.0015)]
    return {"commits": len(timings), "median_us": round(median * 1e6),
            "p99_us": round(ordered[int(0.99 * len(ordered))] * 1e6),
            "p999_us": round(ordered[int(0.999 * len(ordered))] * 1e6), "max_us": round(ordered[-1] * 1e6),
            "slow_commits_at": slow}


VARIANTS = {"keel PredictionLog (primary key, two indexes, review queue)": keel_log,
            "plain sqlite3 table, no key or index": plain_table}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "log_commit.json")
    args = parser.parse_args()
    results = {"command": " ".join(["benchmarks/log_commit.py", *sys.argv[1:]]),
               "load_average_at_start": os.getloadavg(), "rounds": []}
    for _ in range(args.rounds):
        measured = {}
        for name, variant in VARIANTS.items():
            with tempfile.TemporaryDirectory() as folder:
                measured[name] = summary(variant(Path(folder), args.commits))
            print(name, {k: v for k, v in measured[name].items() if k != "slow_commits_at"}, flush=True)
        results["rounds"].append(measured)
    results["load_average_at_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

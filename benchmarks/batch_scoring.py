"""Batch scoring (issue 16): keel's score_batch against a plain script, at 1M and 10M rows.

The model is trained in this process with keel's own functions on generated credit data (no
ZenML). The inputs are Parquet files written chunk by chunk (never whole in memory), with 0.1% of
the rows made invalid (a negative income) so that keel's rejects path runs. Each measurement runs
in its own child process, whose peak RSS is read from the kernel (os.wait4's rusage of that child):

- plain: pyarrow ParquetFile.iter_batches + the same pipeline's predict_proba, scores (with the id)
  written to Parquet;
- keel:  fingerprint_input (sha256 of the input's bytes) then score_batch: the payload contract per
  chunk, rejects file, decisions, output in input order, atomic publication, output fingerprints.

Each child reports its wall time and its CPU time (process_time) over the work alone (after imports
and loading the model): on a machine shared with other jobs the CPU time is the steadier figure.

Usage:
    .venv/bin/python benchmarks/batch_scoring.py [--rows 1000000 10000000] [--repeats 3]
        [--folder DIR] [--chunk-rows 100000] [--trials 2]
With --folder, a model trained there before is reused (--retrain to train again). Writes
benchmarks/results/batch_scoring-<rows>[-<rows>...].json; RESULTS.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"  # batch_scoring-<rows>.json
GENERATED_ROWS_PER_WRITE = 250_000
INVALID_EVERY = 1000  # one row in 1,000 gets a negative income: rejected by keel, scored by the plain script


# --- set-up (parent) ------------------------------------------------------------------------------


def train_model(folder: Path, trials: int) -> dict:
    from keel.data.sources import load_frame
    from keel.spec import load_spec
    from keel.training.in_process import train_in_process

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [f"training.candidate.trials={trials}"])
    started = time.perf_counter()
    trained = train_in_process(load_frame(spec.data), spec)
    model = trained.selected.pipeline
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "spec.json").write_text(spec.model_dump_json())
    return {"model": trained.selected.name, "params": trained.selected.params,
            "training_seconds": round(time.perf_counter() - started, 1)}


def write_input(path: Path, rows: int) -> None:
    """`rows` generated applications written to one Parquet file, a slice at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    writer, written, seed = None, 0, 1000
    while written < rows:
        count = min(GENERATED_ROWS_PER_WRITE, rows - written)
        frame = generate_credit_applications(GeneratorSource(kind="generator", rows=count, seed=seed))
        frame["application_id"] = np.arange(written, written + count, dtype=np.int64)
        frame.loc[frame.index % INVALID_EVERY == 7, "income"] = -1.0
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=128_000)
        written += count
        seed += 1
    writer.close()


def measure(kind: str, input_path: Path, folder: Path, chunk_rows: int) -> dict:
    """One child process: its own figures, and its peak RSS as the kernel reports it for that child
    alone (os.wait4; RUSAGE_CHILDREN would give the largest of all children so far)."""
    command = [sys.executable, __file__, "--child", kind, "--input", str(input_path), "--folder", str(folder),
               "--chunk-rows", str(chunk_rows)]
    out = folder / f"{kind}.stdout"
    err = folder / f"{kind}.stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({child.returncode}):\n{err.read_text()[-3000:]}")
    figures = json.loads(out.read_text().strip().splitlines()[-1])
    figures["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    return figures


# --- the two measured programs (children) ---------------------------------------------------------


def plain_child(input_path: Path, folder: Path, chunk_rows: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = pickle.loads((folder / "model.pkl").read_bytes())
    columns = list(model.feature_names_in_)
    output = folder / "plain-scores.parquet"
    started, cpu_started = time.perf_counter(), time.process_time()
    writer, rows = None, 0
    for batch in pq.ParquetFile(input_path).iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        scores = model.predict_proba(frame[columns])[:, 1]
        table = pa.table({"application_id": batch.column("application_id"), "score": scores})
        if writer is None:
            writer = pq.ParquetWriter(output, table.schema)
        writer.write_table(table)
        rows += len(frame)
    writer.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    output.unlink()
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
            "cpu_seconds": round(cpu, 2), "rows_per_cpu_second": round(rows / cpu)}


def keel_child(input_path: Path, folder: Path, chunk_rows: int) -> dict:
    from keel.batch.inputs import batch_source, fingerprint_input
    from keel.batch.scoring import score_batch
    from keel.spec.models import Spec

    model = pickle.loads((folder / "model.pkl").read_bytes())
    spec = Spec.model_validate_json((folder / "spec.json").read_text())
    threshold = 0.3
    started, cpu_started = time.perf_counter(), time.process_time()
    source = batch_source(str(input_path), spec.data)
    fingerprint = fingerprint_input(source)
    fingerprinted = time.perf_counter()
    result = score_batch(source=source, data=spec.data, model=model, threshold=threshold, model_version=1,
                         batch_id="benchmark", input_fingerprint=fingerprint, output=folder / "keel-scores.parquet",
                         rejects=folder / "keel-rejects.parquet", chunk_rows=chunk_rows)
    finished, cpu = time.perf_counter(), time.process_time() - cpu_started
    Path(result["output_uri"]).unlink()
    Path(result["rejects_uri"]).unlink()
    rows = result["rows_read"]
    return {"rows": rows, "scored": result["scored"], "rejected": result["rejected"],
            "fingerprint_seconds": round(fingerprinted - started, 2),
            "score_seconds": round(finished - fingerprinted, 2), "seconds": round(finished - started, 2),
            "rows_per_second": round(rows / (finished - started)),
            "cpu_seconds": round(cpu, 2), "rows_per_cpu_second": round(rows / cpu),
            "score_rows_per_second": round(rows / (finished - fingerprinted))}


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=2, help="search trials of the trained model")
    parser.add_argument("--retrain", action="store_true", help="train even if --folder holds a model")
    parser.add_argument("--child", choices=["plain", "keel"])
    parser.add_argument("--input", type=Path)
    arguments = parser.parse_args()
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    if arguments.child:
        run = plain_child if arguments.child == "plain" else keel_child
        print(json.dumps(run(arguments.input, arguments.folder, arguments.chunk_rows)))
        return
    folder = arguments.folder or Path(tempfile.mkdtemp(prefix="keel-batch-benchmark-"))
    folder.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["benchmarks/batch_scoring.py", *sys.argv[1:]]), "chunk_rows": arguments.chunk_rows,
              "cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    if (folder / "model.pkl").exists() and (folder / "model.json").exists() and not arguments.retrain:
        report.update(json.loads((folder / "model.json").read_text()), reused_model=True)
    else:
        report.update(train_model(folder, arguments.trials))
        (folder / "model.json").write_text(json.dumps({k: report[k] for k in ("model", "params", "training_seconds")}))
    print(f"model: {report['model']} (trained in {report['training_seconds']} s)", flush=True)
    report["sizes"] = {}
    for rows in arguments.rows:
        input_path = folder / f"input-{rows}.parquet"
        started = time.perf_counter()
        write_input(input_path, rows)
        size = {"input_mib": round(input_path.stat().st_size / 2**20, 1),
                "generation_seconds": round(time.perf_counter() - started, 1), "plain": [], "keel": [],
                "load_average": []}
        print(f"{rows:,} rows: input {size['input_mib']} MiB written in {size['generation_seconds']} s", flush=True)
        for repeat in range(arguments.repeats):
            for kind in ("plain", "keel"):
                figures = measure(kind, input_path, folder, arguments.chunk_rows)
                size[kind].append(figures)
                print(f"  {kind} #{repeat + 1}: {json.dumps(figures)}", flush=True)
            size["load_average"].append(os.getloadavg())
        for kind in ("plain", "keel"):
            runs = size[kind]
            size[f"{kind}_median"] = {key: statistics.median(run[key] for run in runs)
                                      for key in runs[0] if isinstance(runs[0][key], (int, float))}
        size["throughput_ratio"] = round(size["keel_median"]["rows_per_second"]
                                         / size["plain_median"]["rows_per_second"], 3)
        size["score_only_ratio"] = round(size["keel_median"]["score_rows_per_second"]
                                         / size["plain_median"]["rows_per_second"], 3)
        if "rows_per_cpu_second" in size["plain_median"] and "rows_per_cpu_second" in size["keel_median"]:
            # On a shared machine the CPU time a child got is steadier than its wall time.
            size["cpu_throughput_ratio"] = round(size["keel_median"]["rows_per_cpu_second"]
                                                 / size["plain_median"]["rows_per_cpu_second"], 3)
        print(f"  medians: plain {size['plain_median']}, keel {size['keel_median']}, "
              f"ratio {size['throughput_ratio']} (score_batch alone {size['score_only_ratio']})", flush=True)
        report["sizes"][str(rows)] = size
        input_path.unlink()
    report["load_average_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    written = RESULTS / f"batch_scoring-{'-'.join(map(str, arguments.rows))}.json"
    written.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {written}")


if __name__ == "__main__":
    main()

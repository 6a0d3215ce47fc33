"""Benchmark: serving one pipeline (features + 200-tree LightGBM) in one run, four ways.

    .venv/bin/python benchmarks/serving.py --seconds 5

(a) the raw pipeline in process; (b) plain FastAPI + uvicorn (`async def`, parse -> DataFrame ->
predict_proba, nothing else); (c) keel's BentoML service with validation and the prediction log,
(d) the same without the log, (e) the same with canary routing (95/5) and the log. Single-row JSON
at concurrency 1, 8 and 32, and 100-row batches at concurrency 1; one worker each, 127.0.0.1.
The load generator is a thread pool of keep-alive HTTP clients in this process (2 cores are shared
with the server: ratios in one run are the point). Results: benchmarks/results/serving.json.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keel  # noqa: E402,F401
from keel.data.generator import generate_credit_applications  # noqa: E402
from keel.deployment.bundle import write_bundle  # noqa: E402
from keel.deployment.server import start_service, stop_service  # noqa: E402
from keel.serving.routing import Arm, RoutingTable  # noqa: E402
from keel.spec import load_spec  # noqa: E402
from keel.training.in_process import train_in_process  # noqa: E402

FASTAPI_APP = '''
import os, pickle
import pandas as pd
from fastapi import FastAPI, Request
app = FastAPI()
MODEL = pickle.load(open(os.environ["MODEL_FILE"], "rb"))
COLUMNS = list(MODEL.feature_names_in_)
@app.post("/predict")
async def predict(request: Request):
    body = await request.json()
    rows = body["records"] if isinstance(body, dict) and "records" in body else [body]
    scores = MODEL.predict_proba(pd.DataFrame(rows, columns=COLUMNS))[:, 1]
    return {"predictions": [{"score": float(s)} for s in scores]}
'''

# The same plain front, scoring through keel's checked NumPy fast path instead of the pipeline.
FASTAPI_FAST_PATH_APP = '''
import os, pickle
import pandas as pd
from fastapi import FastAPI, Request
from keel.serving.fast_path import compile_row_scorer
app = FastAPI()
MODEL = pickle.load(open(os.environ["MODEL_FILE"], "rb"))
SCORER = compile_row_scorer(MODEL, pd.read_parquet(os.environ["SAMPLE_FILE"]))
assert SCORER is not None
@app.post("/predict")
async def predict(request: Request):
    body = await request.json()
    rows = body["records"] if isinstance(body, dict) and "records" in body else [body]
    scores = SCORER.scores(rows)
    return {"predictions": [{"score": float(s)} for s in scores]}
'''


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load(port: int, bodies: list, concurrency: int, seconds: float) -> dict:
    latencies, errors, stop = [], [0], time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, i = [], offset
        while time.perf_counter() < stop:
            body = bodies[i % len(bodies)]
            i += concurrency
            started = time.perf_counter()
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors[0], "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "p999_ms": float(np.percentile(latencies, 99.9)), "max_ms": float(max(latencies))}


def measure(port: int, single: list, batch: list, seconds: float) -> dict:
    load(port, single, 4, 1.0)  # warm up
    result = {f"c{c}": load(port, single, c, seconds) for c in (1, 8, 32)}
    result["batch100_c1"] = load(port, batch, 1, seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=20000", "training.candidate.trials=1",
                                                             "training.candidate.params.n_estimators=200"])
    trained = train_in_process(generate_credit_applications(spec.data.source), spec)
    model = trained.selected.pipeline
    if trained.selected.name != "lightgbm":  # the benchmark is about the LightGBM pipeline
        from keel.training.fit import fit_candidate
        model = fit_candidate(model.named_steps["features"], trained.train, trained.validation, spec.data,
                              spec.training)[0].pipeline
    rows = json.loads(trained.test[spec.data.model_features].head(500).to_json(orient="records"))
    single = [json.dumps(dict(r, entity_id=f"e{i}")).encode() for i, r in enumerate(rows)]
    plain_single = [json.dumps(r).encode() for r in rows]
    batch = [json.dumps({"records": rows[i:i + 100]}).encode() for i in range(0, 400, 100)]
    results = {}

    import pandas as pd
    frame = trained.test[spec.data.model_features]
    timings = []
    for i in range(2000):
        started = time.perf_counter()
        model.predict_proba(frame.iloc[[i % len(frame)]])
        timings.append((time.perf_counter() - started) * 1000)
    results["raw_in_process"] = {"p50_ms": statistics.median(timings), "p99_ms": float(np.percentile(timings, 99)),
                                 "rps_c1": 1000 / statistics.mean(timings)}
    print("raw", results["raw_in_process"], flush=True)

    from keel.serving.fast_path import compile_row_scorer
    sample = trained.validation[spec.data.model_features]
    fast = compile_row_scorer(model, sample)
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
               for r in frame.head(500).to_dict(orient="records")]
    timings = []
    for i in range(2000):
        started = time.perf_counter()
        fast.scores([records[i % len(records)]])
        timings.append((time.perf_counter() - started) * 1000)
    results["fast_path_in_process"] = {"p50_ms": statistics.median(timings),
                                       "p99_ms": float(np.percentile(timings, 99)),
                                       "rps_c1": 1000 / statistics.mean(timings)}
    print("fast path", results["fast_path_in_process"], flush=True)

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        import pickle
        (work / "model.pkl").write_bytes(pickle.dumps(model))
        sample.to_parquet(work / "sample.parquet")
        for name, source in (("plain_fastapi", FASTAPI_APP), ("plain_fastapi_fast_path", FASTAPI_FAST_PATH_APP)):
            (work / f"{name}.py").write_text(source)
            port = _free_port()
            server = subprocess.Popen([sys.executable, "-m", "uvicorn", f"{name}:app", "--host", "127.0.0.1",
                                       "--port", str(port), "--log-level", "warning"], cwd=work,
                                      env={**os.environ, "MODEL_FILE": str(work / "model.pkl"),
                                           "SAMPLE_FILE": str(work / "sample.parquet"), "PYTHONPATH": str(ROOT)})
            time.sleep(8)
            try:
                results[name] = measure(port, plain_single, batch, args.seconds)
            finally:
                server.terminate()
                server.wait()
            print(name, results[name], flush=True)

        pipeline_spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["deployment.fast_path=false"])
        champion_only = RoutingTable([Arm("champion", 1, 1.0)])
        variants = {
            "keel_bentoml_log": (champion_only, True, spec),
            "keel_bentoml_no_log": (champion_only, False, spec),
            "keel_bentoml_canary_log": (RoutingTable([Arm("champion", 1, 0.95), Arm("challenger", 2, 0.05)]), True,
                                        spec),
            "keel_bentoml_log_pipeline_path": (champion_only, True, pipeline_spec),
        }
        for name, (routing, with_log, bundle_spec) in variants.items():
            folder = work / name
            write_bundle(folder, bundle_spec, {1: model, 2: model}, {1: 0.3, 2: 0.3}, routing,
                         f"sqlite:///{folder / 'log.db'}" if with_log else None, sample)
            port = _free_port()
            start_service(folder, "127.0.0.1", port)
            try:
                results[name] = measure(port, single, batch, args.seconds)
            finally:
                stop_service(folder)
            print(name, results[name], flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: serving one pipeline (features + 200-tree LightGBM) in one run, several ways.

    .venv/bin/python benchmarks/serving.py --seconds 5 --before 75d5973 --postgres

(a) the raw pipeline in process; (b) plain FastAPI + uvicorn (`async def`, parse -> DataFrame ->
predict_proba, nothing else), and the same scoring through keel's fast path (1 and 2 workers, and
with a durable SQLite log committed per request: what a team would write without group commit, and
that durable service also giving declined rows their principal reasons: keel's obligations);
(c) keel's BentoML service with validation, routing, metrics and the durable prediction log (group
commit), (d) the same without the log, both with 1 and 2 workers, (e) canary routing (95/5) with the
log, (f) the log in PostgreSQL (`--postgres`: a server started on 127.0.0.1 for the run), (g) the
fast path off; (h) keel with every row approved (threshold 1.0: no declined row, so no principal
reasons: their cost); and, with `--before COMMIT`, keel's service as that commit's tree serves the same
bundle (with and without its log), so before and after are measured in one run. Single-row JSON at
concurrency 1, 8 and 32, and 100-row batches at concurrency 1, on 127.0.0.1. The load generator is a
thread pool of keep-alive HTTP clients in this process (the cores are shared with the server: ratios
in one run are the point); the load average is recorded before and after each variant.
`--skip-pipeline` leaves out the slow full-pipeline variants. `--interleave` starts every variant at
once and gives each one slice of every load level per round (`--rounds`), rotating the order: the
machine's drifts (another process's CPU, or its disk writes, which slow every fsync) then meet every
variant alike. `--alternate` (with `--interleave`) then also sends single rows at c=1 one request to
each variant in turn, the same record to each (`c1_alternating`, every latency kept: a request can be
paired with the others' of its round). `--levels` measures only the load levels named (c1 alone: a
quiet machine's c=1, with no heavier load before it). Results: benchmarks/results/serving.json.
"""

import argparse
import contextlib
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
from keel.deployment.server import end_process_tree, readyz, start_service, stop_service  # noqa: E402
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

# The same plain front, with a durable log as a team would write it without group commit: each
# request's row inserted and committed (WAL, synchronous=FULL: one fsync) before it is answered.
FASTAPI_FAST_PATH_DURABLE_LOG_APP = FASTAPI_FAST_PATH_APP.replace("""
@app.post("/predict")""", """
import json, sqlite3, time, uuid
LOG = sqlite3.connect(os.environ["LOG_FILE"], isolation_level=None, check_same_thread=False)
LOG.execute("PRAGMA journal_mode=WAL")
LOG.execute("PRAGMA synchronous=FULL")
LOG.execute("CREATE TABLE IF NOT EXISTS predictions (request_id TEXT, row INTEGER, time REAL, inputs TEXT, score REAL)")
@app.post("/predict")""").replace("""    scores = SCORER.scores(rows)
""", """    scores = SCORER.scores(rows)
    request_id, now = uuid.uuid4().hex, time.time()
    LOG.execute("BEGIN")
    LOG.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
                    [(request_id, i, now, json.dumps(r), float(s)) for i, (r, s) in enumerate(zip(rows, scores))])
    LOG.execute("COMMIT")
""")


# The same durable plain service, also giving a declined row its principal reasons (exact TreeSHAP
# through keel's encoder, logged with the row): the plain service with keel's obligations.
FASTAPI_FAST_PATH_DURABLE_LOG_REASONS_APP = FASTAPI_FAST_PATH_DURABLE_LOG_APP.replace("""
@app.post("/predict")""", """
from keel.serving.reasons import ReasonGiver
THRESHOLD = float(os.environ["THRESHOLD"])
REASONS = ReasonGiver(MODEL.named_steps["model"], SCORER, list(MODEL.feature_names_in_), True, {}, [], 4)
LOG.execute("ALTER TABLE predictions ADD COLUMN reasons TEXT")
@app.post("/predict")""", 1).replace("""    request_id, now = uuid.uuid4().hex, time.time()
    LOG.execute("BEGIN")
    LOG.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
                    [(request_id, i, now, json.dumps(r), float(s)) for i, (r, s) in enumerate(zip(rows, scores))])""",
"""    declined = [i for i, s in enumerate(scores) if s >= THRESHOLD]
    reasons = dict(zip(declined, REASONS.for_records([rows[i] for i in declined]))) if declined else {}
    request_id, now = uuid.uuid4().hex, time.time()
    LOG.execute("BEGIN")
    LOG.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?)",
                    [(request_id, i, now, json.dumps(r), float(s), json.dumps(reasons.get(i)))
                     for i, (r, s) in enumerate(zip(rows, scores))])""").replace(
    """    return {"predictions": [{"score": float(s)} for s in scores]}""",
    """    return {"predictions": [{"score": float(s), "reasons": reasons.get(i)} for i, s in enumerate(scores)]}""")
assert FASTAPI_FAST_PATH_DURABLE_LOG_REASONS_APP.count("REASONS") == 2

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(connection: http.client.HTTPConnection, body: bytes) -> tuple:
    """(milliseconds, status) of one POST /predict over a keep-alive connection, the answer read whole."""
    started = time.perf_counter()
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return (time.perf_counter() - started) * 1000, response.status


def _drive(port: int, bodies: list, concurrency: int, seconds: float) -> tuple:
    """(latencies in ms, errors, elapsed s) of `concurrency` keep-alive clients posting for `seconds`."""
    latencies, errors, stop = [], [0], time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, i = [], offset
        while time.perf_counter() < stop:
            elapsed, status = _post(connection, bodies[i % len(bodies)])
            i += concurrency
            mine.append(elapsed)
            if status != 200:
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
    return latencies, errors[0], time.perf_counter() - started


def _summary(latencies: list, errors: int, elapsed: float) -> dict:
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "p999_ms": float(np.percentile(latencies, 99.9)), "max_ms": float(max(latencies))}


def load(port: int, bodies: list, concurrency: int, seconds: float) -> dict:
    return _summary(*_drive(port, bodies, concurrency, seconds))


def _commit_counts(port: int):
    """(log commits, requests they held) from keel's /metrics; None for a service without them."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    except OSError:
        return None
    totals = {}
    for line in text.splitlines():
        for name in ("keel_prediction_log_commits_total", "keel_prediction_log_committed_requests_total"):
            if line.startswith(name + " ") or line.startswith(name + "{"):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return (totals["keel_prediction_log_commits_total"], totals["keel_prediction_log_committed_requests_total"]) \
        if len(totals) == 2 else None


def _counted_drive(port: int, bodies: list, concurrency: int, seconds: float) -> tuple:
    """`_drive`, with the log's (commits, requests they held) meanwhile; (0, 0) for a service without them."""
    before = _commit_counts(port)
    latencies, errors, elapsed = _drive(port, bodies, concurrency, seconds)
    after = _commit_counts(port)
    commits = (after[0] - before[0], after[1] - before[1]) if before and after else (0, 0)
    return latencies, errors, elapsed, commits


def _with_group_size(result: dict, commits: tuple) -> dict:
    if commits[0] > 0:
        result["mean_group_size"] = round(commits[1] / commits[0], 2)
    return result


def _loaded(port: int, bodies: list, concurrency: int, seconds: float) -> dict:
    """`load`, with the mean size of the log's commit groups meanwhile (keel with a log only)."""
    latencies, errors, elapsed, commits = _counted_drive(port, bodies, concurrency, seconds)
    return _with_group_size(_summary(latencies, errors, elapsed), commits)


# The load levels every variant meets: (result key, which bodies, concurrency).
LOADS = (("c1", "single", 1), ("c8", "single", 8), ("c32", "single", 32), ("batch100_c1", "batch", 1))


def measure(port: int, single: list, batch: list, seconds: float, loads: tuple = LOADS) -> dict:
    load(port, single, 4, 1.0)  # warm up
    before = os.getloadavg()[0]
    bodies = {"single": single, "batch": batch}
    result = {key: _loaded(port, bodies[kind], c, seconds) for key, kind, c in loads}
    result["load_average_1min"] = [round(before, 2), round(os.getloadavg()[0], 2)]
    return result


def measure_interleaved(targets: dict, seconds: float, rounds: int, loads: tuple = LOADS) -> dict:
    """`measure` of every running variant at once: each load level is cut into `rounds` slices and
    every variant gets one slice per round, in an order that rotates, so slow drifts of the machine
    (another process's CPU or disk writes, which make every fsync slower) meet every variant alike
    and the ratios between them stay fair. `targets`: variant -> (port, single bodies, batch bodies)."""
    names = list(targets)
    for port, single, _ in targets.values():
        load(port, single, 4, 1.0)  # warm up
    results = {name: {} for name in names}
    for key, kind, concurrency in loads:
        latencies = {name: [] for name in names}
        errors, elapsed, commits = dict.fromkeys(names, 0), dict.fromkeys(names, 0.0), {n: (0, 0) for n in names}
        before = os.getloadavg()[0]
        for round_ in range(rounds):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                port, single, batch = targets[name]
                got, failed, took, held = _counted_drive(port, single if kind == "single" else batch, concurrency,
                                                         seconds / rounds)
                latencies[name] += got
                errors[name] += failed
                elapsed[name] += took
                commits[name] = (commits[name][0] + held[0], commits[name][1] + held[1])
        for name in names:
            results[name][key] = _with_group_size(_summary(latencies[name], errors[name], elapsed[name]), commits[name])
            results[name].setdefault("load_average_1min", []).append(round(before, 2))
    for name in names:
        results[name]["load_average_1min"].append(round(os.getloadavg()[0], 2))
    return results


def measure_alternating(targets: dict, seconds: float) -> dict:
    """Single rows at c=1, one request to each variant in turn: in every round the same record goes
    to every variant, in an order that rotates, each over its own keep-alive connection. The variants
    then meet the host's same moments (on a VM its speed drifts by more than the gap between them from
    one second to the next), and a request's latency can be paired with the others' of its round.
    `targets`: variant -> (port, single bodies). Each variant gets about `seconds` of requests."""
    names = list(targets)
    connections = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                   for name, (port, _) in targets.items()}
    latencies = {name: [] for name in names}
    errors = dict.fromkeys(names, 0)
    stop, round_ = time.perf_counter() + seconds * len(names), 0
    while time.perf_counter() < stop:
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            _, single = targets[name]
            elapsed, status = _post(connections[name], single[round_ % len(single)])
            latencies[name].append(elapsed)
            errors[name] += status != 200
        round_ += 1
    for connection in connections.values():
        connection.close()
    return {name: {**_summary(latencies[name], errors[name], sum(latencies[name]) / 1000),
                   "latencies_ms": [round(x, 4) for x in latencies[name]]} for name in names}


def _wait_answering(port: int, body: bytes, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"nothing answered on port {port} within {seconds:g} s")


def _tree_of(commit: str, into: Path) -> Path:
    """The project as `commit` had it (git archive), to serve the same bundle with that code."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _serve_with_tree(tree: Path, folder: Path, port: int) -> subprocess.Popen:
    """`bentoml serve` of the keel service in `tree` (another commit's code) over `folder`."""
    bentoml = Path(sys.executable).parent / "bentoml"
    # Its own BentoML home, as keel gives each service (an older tree did not): metrics kept apart.
    env = {**os.environ, "KEEL_DEPLOYMENT_DIR": str(folder), "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(tree),
           "BENTOML_HOME": str(folder / "bentoml_home")}
    process = subprocess.Popen([str(bentoml), "serve", "serving.service:KeelService", "--host", "127.0.0.1",
                                "--port", str(port)], cwd=tree, env=env, stdout=open(folder / "service.log", "ab"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while readyz(f"http://127.0.0.1:{port}") is None:
        if process.poll() is not None or time.monotonic() > deadline:
            end_process_tree(process.pid)
            tail = (folder / "service.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the service of {tree} did not start; its log ends:\n{tail}")
        time.sleep(0.5)
    return process


SPEC_OVERRIDES = ["data.source.rows=20000", "training.candidate.trials=1", "training.candidate.params.n_estimators=200"]


def benchmark_spec():
    return load_spec(ROOT / "configs" / "credit_risk.yaml", SPEC_OVERRIDES)


def trained_pipeline(spec):
    """(the LightGBM pipeline, the in-process training result with its splits)."""
    trained = train_in_process(generate_credit_applications(spec.data.source), spec)
    model = trained.selected.pipeline
    if trained.selected.name != "lightgbm":  # the benchmark is about the LightGBM pipeline
        from keel.training.fit import fit_candidate
        model = fit_candidate(model.named_steps["features"], trained.train, trained.validation, spec.data,
                              spec.training)[0].pipeline
    return model, trained


def test_records(trained, spec) -> list:
    return json.loads(trained.test[spec.data.model_features].head(500).to_json(orient="records"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--before", help="a git commit whose keel service is measured too, in the same run")
    parser.add_argument("--postgres", action="store_true",
                        help="also keep the log in PostgreSQL (Debian's server, started on 127.0.0.1)")
    parser.add_argument("--skip-pipeline", action="store_true", help="leave out the full-pipeline variants")
    parser.add_argument("--only", nargs="+", help="measure only these variants (names as in the results)")
    parser.add_argument("--interleave", action="store_true",
                        help="start every variant at once and cut each load level into rounds, each variant "
                             "one slice per round (ratios fair under a drifting machine)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per load level with --interleave")
    parser.add_argument("--alternate", action="store_true",
                        help="with --interleave, also single rows at c=1 one request to each variant in turn "
                             "(the same record to each; result key c1_alternating, with every latency)")
    parser.add_argument("--levels", nargs="+", choices=[key for key, _, _ in LOADS], default=[key for key, _, _ in LOADS],
                        help="the load levels to measure (default: all); c1 alone measures a quiet machine's c=1 "
                             "with no heavier load before it")
    parser.add_argument("--out", type=Path, help="where the results go (default: benchmarks/results/serving.json)")
    args = parser.parse_args()
    loads = tuple(load for load in LOADS if load[0] in args.levels)
    if args.alternate and not args.interleave:
        parser.error("--alternate needs --interleave (every variant running at once)")
    global OUT
    OUT = args.out or OUT
    spec = benchmark_spec()
    model, trained = trained_pipeline(spec)
    rows = test_records(trained, spec)
    single = [json.dumps(dict(r, entity_id=f"e{i}")).encode() for i, r in enumerate(rows)]
    plain_single = [json.dumps(r).encode() for r in rows]
    batch = [json.dumps({"records": rows[i:i + 100]}).encode() for i in range(0, 400, 100)]
    results = {"load_average_at_start": list(os.getloadavg()), "before_commit": args.before}

    frame = trained.test[spec.data.model_features]
    if not args.skip_pipeline:
        timings = []
        for i in range(2000):
            started = time.perf_counter()
            model.predict_proba(frame.iloc[[i % len(frame)]])
            timings.append((time.perf_counter() - started) * 1000)
        results["raw_in_process"] = {"p50_ms": statistics.median(timings),
                                     "p99_ms": float(np.percentile(timings, 99)),
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

    with tempfile.TemporaryDirectory() as work, contextlib.ExitStack() as servers:
        work = Path(work)
        import pickle
        (work / "model.pkl").write_bytes(pickle.dumps(model))
        sample.to_parquet(work / "sample.parquet")
        plain = [("plain_fastapi_fast_path", FASTAPI_FAST_PATH_APP, 1),
                 ("plain_fastapi_fast_path_durable_log", FASTAPI_FAST_PATH_DURABLE_LOG_APP, 1),
                 ("plain_fastapi_fast_path_durable_log_reasons", FASTAPI_FAST_PATH_DURABLE_LOG_REASONS_APP, 1),
                 ("plain_fastapi_fast_path_2_workers", FASTAPI_FAST_PATH_APP, 2)]
        if not args.skip_pipeline:
            plain.insert(0, ("plain_fastapi", FASTAPI_APP, 1))
        def plain_starter(name: str, source: str, workers: int):
            def start(stack: contextlib.ExitStack) -> int:
                (work / f"{name}.py").write_text(source)
                port = _free_port()
                server = subprocess.Popen([sys.executable, "-m", "uvicorn", f"{name}:app", "--host", "127.0.0.1",
                                           "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
                                          cwd=work, start_new_session=True,
                                          env={**os.environ, "MODEL_FILE": str(work / "model.pkl"),
                                               "LOG_FILE": str(work / f"{name}-log.db"), "THRESHOLD": "0.3",
                                               "SAMPLE_FILE": str(work / "sample.parquet"), "PYTHONPATH": str(ROOT)})
                stack.callback(end_process_tree, server.pid)
                _wait_answering(port, plain_single[0])
                return port
            return start

        # variant -> (how to start it: ExitStack -> port, its single-row bodies, facts added to its results)
        starters = {name: (plain_starter(name, source, workers), plain_single, {})
                    for name, source, workers in plain}

        postgres_url = None
        if args.postgres:
            from tests.support.postgres import postgresql_server
            postgres_url = servers.enter_context(postgresql_server(work / "postgres")).url

        pipeline_spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["deployment.fast_path=false"])
        two_workers = spec.model_copy(update={"deployment": spec.deployment.model_copy(update={"workers": 2})})
        champion_only = RoutingTable([Arm("champion", 1, 1.0)])
        sqlite = "sqlite"
        variants = {
            "keel_bentoml_log": (champion_only, sqlite, spec, None),
            "keel_bentoml_no_log": (champion_only, None, spec, None),
            # Threshold 1.0: every row approved, so no row is owed principal reasons (what they cost).
            "keel_bentoml_log_no_reasons": (champion_only, sqlite, spec, None),
            "keel_bentoml_no_log_no_reasons": (champion_only, None, spec, None),
            "keel_bentoml_log_2_workers": (champion_only, sqlite, two_workers, None),
            "keel_bentoml_no_log_2_workers": (champion_only, None, two_workers, None),
            "keel_bentoml_canary_log": (RoutingTable([Arm("champion", 1, 0.95), Arm("challenger", 2, 0.05)]), sqlite,
                                        spec, None),
        }
        if postgres_url:
            variants["keel_bentoml_postgres_log"] = (champion_only, postgres_url, spec, None)
            variants["keel_bentoml_postgres_log_2_workers"] = (champion_only, postgres_url, two_workers, None)
        if not args.skip_pipeline:
            variants["keel_bentoml_log_pipeline_path"] = (champion_only, sqlite, pipeline_spec, None)
        if args.before:  # each right after its counterpart, so both meet the same load
            tree = _tree_of(args.before, work / "before")
            order = list(variants)
            variants["before_keel_bentoml_log"] = (champion_only, sqlite, spec, tree)
            variants["before_keel_bentoml_no_log"] = (champion_only, None, spec, tree)
            order[1:1] = ["before_keel_bentoml_log"]
            order[3:3] = ["before_keel_bentoml_no_log"]
            variants = {name: variants[name] for name in order}
        dropped = set()

        def keel_starter(name: str, routing, log, bundle_spec, tree):
            def start(stack: contextlib.ExitStack) -> int:
                folder = work / name
                url = log
                if log == sqlite:
                    url = f"sqlite:///{folder / 'log.db'}"
                elif log is not None and not (args.interleave and log in dropped):
                    # PostgreSQL: an empty table for each variant (interleaved: for the run, shared)
                    _drop_predictions(log)
                    dropped.add(log)
                threshold = 1.0 if name.endswith("_no_reasons") else 0.3
                write_bundle(folder, bundle_spec, {1: model, 2: model}, {1: threshold, 2: threshold}, routing, url,
                             sample)
                if tree is not None:  # an older spec model refuses keys it did not know yet
                    _spec_of_tree(folder / "deployment.json", tree)
                port = _free_port()
                if tree is not None:
                    process = _serve_with_tree(tree, folder, port)
                    stack.callback(end_process_tree, process.pid)
                else:
                    start_service(folder, "127.0.0.1", port)
                    stack.callback(stop_service, folder)
                return port
            return start

        for name, (routing, log, bundle_spec, tree) in variants.items():
            starters[name] = (keel_starter(name, routing, log, bundle_spec, tree), single,
                              {"workers": bundle_spec.deployment.workers})
        selected = {name: entry for name, entry in starters.items() if not args.only or name in args.only}
        if args.interleave:
            ports = {name: start(servers) for name, (start, _, _) in selected.items()}
            measured = measure_interleaved({name: (ports[name], bodies, batch)
                                            for name, (_, bodies, _) in selected.items()}, args.seconds, args.rounds,
                                           loads)
            if args.alternate:
                alternating = measure_alternating({name: (ports[name], bodies)
                                                   for name, (_, bodies, _) in selected.items()}, args.seconds)
                for name in selected:
                    measured[name]["c1_alternating"] = alternating[name]
            for name, (_, _, facts) in selected.items():
                results[name] = {**measured[name], **facts}
                print(name, results[name], flush=True)
            _save(results)
        else:
            for name, (start, bodies, facts) in selected.items():
                with contextlib.ExitStack() as running:
                    port = start(running)
                    results[name] = {**measure(port, bodies, batch, args.seconds, loads), **facts}
                print(name, results[name], flush=True)
                _save(results)  # so far: an interrupted run keeps what it measured
        results["interleaved_rounds"] = args.rounds if args.interleave else None
    results["load_average_at_end"] = list(os.getloadavg())
    _save(results)


OUT = ROOT / "benchmarks" / "results" / "serving.json"


def _save(results: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))


def _drop_predictions(url: str) -> None:
    import sqlalchemy as sa

    from keel.serving.prediction_log import METADATA

    engine = sa.create_engine(url)
    METADATA.drop_all(engine)
    engine.dispose()


def _spec_of_tree(deployment_json: Path, tree: Path) -> None:
    """Replace the bundle's spec with the benchmark spec as the code of `tree` reads it (the spec
    model has grown since: an older one refuses keys it did not know)."""
    code = ("import json, sys; from pathlib import Path; from keel.spec import load_spec; "
            "print(json.dumps(load_spec(Path('configs/credit_risk.yaml'), sys.argv[1:]).model_dump(mode='json')))")
    spec = subprocess.run([sys.executable, "-c", code, *SPEC_OVERRIDES], cwd=tree, capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(tree)}).stdout
    config = json.loads(deployment_json.read_text())
    config["spec"] = json.loads(spec.strip().splitlines()[-1])
    deployment_json.write_text(json.dumps(config))


if __name__ == "__main__":
    main()

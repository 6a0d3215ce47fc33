"""Where a request's time goes in the running keel service: the BentoML worker under cProfile, or
each of keel's stages timed by the wall clock.

    .venv/bin/python benchmarks/serving_breakdown.py --seconds 10  -> benchmarks/results/serving_breakdown.json
    .venv/bin/python benchmarks/serving_breakdown.py --seconds 10 --clock wall  -> benchmarks/results/serving_stages.json
    (--no-log: the same bundle without a prediction log; --out: another result file)

Trains the serving benchmark's pipeline, bundles it with the SQLite prediction log, starts the
service with a `sitecustomize` that profiles the worker's main thread while the measured requests run (the event loop: HTTP parsing,
BentoML's middleware, FastAPI, keel's scoring; the log's writer thread is not in it), sends single-row
requests at concurrency 1, stops the service and reads the profile. Reported: CPU microseconds a
request per component (own time of the functions of each package, keel per module), and the
inclusive time of keel's steps. cProfile inflates Python-heavy code, so the shares, not the absolute
figures, are the result. `--clock wall` instead wraps keel's stages (STAGES) in the worker with
`time.perf_counter` and reports each stage's median and mean in microseconds, beside the client's own
p50: absolute figures, without a profiler's cost (medians of nested stages do not add up).
"""

import argparse
import importlib.util
import json
import os
import pstats
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("serving_benchmark", Path(__file__).parent / "serving.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

SITECUSTOMIZE = '''
import os, signal, sys
if os.environ.get("KEEL_PROFILE_DIR") and "_bentoml_impl.worker.service" in sys.orig_argv:
    import cProfile
    _profiler = cProfile.Profile()

    def _start(signum, frame):
        _profiler.enable()

    def _dump(signum, frame):
        _profiler.disable()
        _profiler.dump_stats(os.path.join(os.environ["KEEL_PROFILE_DIR"], f"worker-{os.getpid()}.prof"))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
'''

SITECUSTOMIZE_WALL = '''
import json, os, signal, statistics, sys, time
if os.environ.get("KEEL_PROFILE_DIR") and "_bentoml_impl.worker.service" in sys.orig_argv:
    _TIMES = {}

    def _timed(owner, name, label):
        original = getattr(owner, name)
        if getattr(original, "__code__", None) and original.__code__.co_flags & 0x80:  # a coroutine function
            async def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    _TIMES.setdefault(label, []).append(time.perf_counter() - started)
        else:
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    _TIMES.setdefault(label, []).append(time.perf_counter() - started)
        setattr(owner, name, wrapper)

    def _start(signum, frame):
        import importlib
        for label, module, path in json.loads(os.environ["KEEL_STAGES"]):
            owner = importlib.import_module(module)
            *outer, name = path.split(".")
            for part in outer:
                owner = getattr(owner, part)
            _timed(owner, name, label)

    def _dump(signum, frame):
        summary = {label: {"calls": len(times), "median_us": round(statistics.median(times) * 1e6, 1),
                           "mean_us": round(statistics.mean(times) * 1e6, 1)} for label, times in _TIMES.items()}
        with open(os.path.join(os.environ["KEEL_PROFILE_DIR"], f"stages-{os.getpid()}.json"), "w") as out:
            json.dump(summary, out)

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
'''

# keel's stages for `--clock wall`, outermost first: (label, module, attribute path). A module-level
# function is looked up by its caller at each call, so wrapping the module's attribute times it.
STAGES = [
    ("KeelGate: everything keel's middleware does for /predict", "serving.service", "KeelGate.__call__"),
    ("  reading the body", "serving.service", "_body"),
    ("  Scorer.predict_async", "keel.serving.scorer", "Scorer.predict_async"),
    ("    authentication, size, json.loads, payload validation", "keel.serving.scorer", "Scorer._parse"),
    ("    routing table and dead-man's switch check", "keel.serving.scorer", "Scorer.routing"),
    ("    model call + metrics", "keel.serving.scorer", "Scorer._score"),
    ("      fast path scores", "keel.serving.scorer", "Scorer._predict"),
    ("    principal reasons (declined rows only)", "keel.serving.scorer", "Scorer._principal_reasons"),
    ("    answer and log rows", "keel.serving.scorer", "Scorer._answered"),
    ("    waiting for the log's commit", "keel.serving.group_commit", "GroupCommitter.commit"),
    ("      SQLite insert and commit (the fsync)", "keel.serving.prediction_log", "DirectWriter.insert"),
    ("  answering: JSON, then BentoML's send path (metrics, access log) and uvicorn's", "serving.service",
     "_send_json"),
]


def _workers(pid: int) -> list:
    import psutil

    return [p for p in psutil.Process(pid).children(recursive=True)
            if "_bentoml_impl.worker.service" in " ".join(p.cmdline())]


# keel's steps, by (file ending, function name): their inclusive time a request.
STEPS = {
    "KeelGate (keel's ASGI middleware)": ("serving/service.py", "__call__"),
    "FastAPI endpoint predict": ("serving/service.py", "predict"),
    "KeelGate's scoring handler (_score)": ("serving/service.py", "_score"),
    "Scorer.score (all of keel's scoring)": ("keel/serving/scorer.py", "score"),
    "  authentication, size, json.loads, payload validation": ("keel/serving/scorer.py", "_parse"),
    "    pydantic validation (parse_records)": ("keel/serving/payload.py", "parse_records"),
    "  routing table and dead-man's switch check": ("keel/serving/scorer.py", "routing"),
    "  routing an entity (SHA-256)": ("keel/serving/routing.py", "arm_for"),
    "  model call + metrics (Scorer._score)": ("keel/serving/scorer.py", "_score"),
    "    fast path scores": ("keel/serving/fast_path.py", "scores"),
    "    metrics update": ("serving/service.py", "_observe"),
    "  principal reasons (unfavourable decisions only)": ("keel/serving/scorer.py", "_reasons"),
    "  log rows": ("keel/serving/scorer.py", "_log_row"),
    "waiting for the group commit (event loop side)": ("keel/serving/group_commit.py", "commit"),
    "JSONResponse": ("starlette/responses.py", "__init__"),
}


def component(filename: str) -> str:
    if filename.startswith("~") or filename == "<built-in>":
        return "built-ins (C functions: I/O, json, hashing, ...)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        package = parts[parts.index("site-packages") + 1]
        return package.removesuffix(".py")
    if str(ROOT) in filename:
        return "keel: " + str(Path(filename).relative_to(ROOT))
    if "asyncio" in parts:
        return "asyncio"
    return "stdlib: " + (parts[-2] if len(parts) > 1 else filename)


def analyse(profile: Path, requests: int) -> dict:
    stats = pstats.Stats(str(profile)).stats
    own = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.items():
        own[component(filename)] += tottime
    steps = {}
    for label, (ending, name) in STEPS.items():
        steps[label] = sum(cumulative for (filename, _, function), (_, _, _, cumulative, _) in stats.items()
                           if filename.endswith(ending) and function == name) / requests * 1e6
    total = sum(own.values())
    return {"requests": requests, "cpu_us_per_request": total / requests * 1e6,
            "own_us_per_request_by_component": {k: round(v / requests * 1e6, 1) for k, v in
                                                 sorted(own.items(), key=lambda item: -item[1]) if v / total > 0.003},
            "inclusive_us_per_request_of_keel_steps": {k: round(v, 1) for k, v in steps.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--keep", type=Path, help="copy the raw profile here (for pstats)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="cpu: cProfile of the worker (shares); wall: keel's stages timed (absolute)")
    parser.add_argument("--no-log", action="store_true", help="bundle the service without a prediction log")
    parser.add_argument("--out", type=Path, help="where the result goes (default: benchmarks/results/...)")
    args = parser.parse_args()
    wall = args.clock == "wall"
    spec = bench.benchmark_spec()
    model, trained = bench.trained_pipeline(spec)
    sample = trained.validation[spec.data.model_features]
    single = [json.dumps(dict(r, entity_id=f"e{i}")).encode() for i, r in enumerate(bench.test_records(trained, spec))]
    from keel.deployment.bundle import write_bundle
    from keel.deployment.server import start_service, stop_service
    from keel.serving.routing import Arm, RoutingTable

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (work / "site").mkdir()
        (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE_WALL if wall else SITECUSTOMIZE)
        folder, profiles = work / "keel", work / "profiles"
        profiles.mkdir()
        write_bundle(folder, spec, {1: model}, {1: 0.3}, RoutingTable([Arm("champion", 1, 1.0)]),
                     None if args.no_log else f"sqlite:///{folder / 'log.db'}", sample)
        previous = dict(os.environ)
        os.environ.update(KEEL_PROFILE_DIR=str(profiles), KEEL_STAGES=json.dumps(STAGES),
                          PYTHONPATH=os.pathsep.join([str(work / "site"), os.environ.get("PYTHONPATH", "")]))
        port = bench._free_port()
        try:
            start_service(folder, "127.0.0.1", port)
        finally:
            os.environ.clear()
            os.environ.update(previous)
        try:
            bench.load(port, single, 1, 1.0)  # warm up
            [worker] = _workers(int((folder / "service.pid").read_text()))
            worker.send_signal(signal.SIGUSR1)  # requests only: not the start-up
            time.sleep(0.2)
            load_before = os.getloadavg()[0]
            measured = bench.load(port, single, 1, args.seconds)
            worker.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 30
            pattern = "stages-*.json" if wall else "worker-*.prof"
            while not list(profiles.glob(pattern)) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # written in full
        finally:
            stop_service(folder)
        [found] = profiles.glob(pattern)
        if wall:
            result = {"requests": measured["requests"], "client_p50_us": round(measured["p50_ms"] * 1000, 1),
                      "stages": {label: timed for label, _, _ in STAGES
                                 for timed in [json.loads(found.read_text()).get(label)] if timed}}
        else:
            result = analyse(found, measured["requests"])
            if args.keep:
                args.keep.write_bytes(found.read_bytes())
            result["p50_ms_under_profile"] = measured["p50_ms"]
        result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["prediction_log"] = None if args.no_log else "sqlite"
    out = args.out or ROOT / "benchmarks" / "results" / ("serving_stages.json" if wall else "serving_breakdown.json")
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""What keel's per-request metrics and request ids cost in process, beside the serving benchmark.

    .venv/bin/python benchmarks/serving_counters.py   -> benchmarks/results/serving_counters.json

The service updates one counter and one histogram per model call (labelled by version and arm, as in
`serving/service.py`; BentoML's metrics wrap prometheus_client) and makes a request id when the
caller sends none. Median of 5 rounds of 100,000 calls each, in microseconds per request."""

import json
import statistics
import timeit
import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

CALLS, ROUNDS = 100_000, 5


def per_call_us(function) -> float:
    return statistics.median(timeit.timeit(function, number=CALLS) / CALLS * 1e6 for _ in range(ROUNDS))


def main() -> None:
    registry = CollectorRegistry()
    requests = Counter("keel_requests", "model calls", ["model_version", "arm", "outcome"], registry=registry)
    latency = Histogram("keel_model_latency_ms", "model latency", ["model_version", "arm"], registry=registry)

    def metrics() -> None:
        requests.labels(model_version="1", arm="champion", outcome="ok").inc()
        latency.labels(model_version="1", arm="champion").observe(1.3)

    result = {"metrics_us_per_request": per_call_us(metrics),
              "request_id_us_per_request": per_call_us(lambda: uuid.uuid4().hex),
              "calls": CALLS, "rounds": ROUNDS}
    out = Path(__file__).parent / "results" / "serving_counters.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

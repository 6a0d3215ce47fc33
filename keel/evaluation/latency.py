"""Latency and size of the whole preprocessing + model pipeline, as a caller sees it."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd

from keel.reports import html
from keel.spec.models import LatencySpec


def evaluate_latency(predict, frame: pd.DataFrame, model, spec: LatencySpec) -> dict:
    single = []
    for i in range(spec.single_row_calls):
        row = frame.iloc[[i % len(frame)]]
        started = time.perf_counter()
        predict(row)
        single.append((time.perf_counter() - started) * 1000)
    batch = frame.iloc[: spec.batch_size]
    if len(batch) < spec.batch_size:
        batch = batch.sample(spec.batch_size, replace=True, random_state=0)
    batch_ms = []
    for _ in range(spec.batch_calls):
        started = time.perf_counter()
        predict(batch)
        batch_ms.append((time.perf_counter() - started) * 1000)
    median_batch = float(np.median(batch_ms))
    return {
        "single_row_calls": spec.single_row_calls,
        "p50_latency_ms": float(np.percentile(single, 50)),
        "p95_latency_ms": float(np.percentile(single, 95)),
        "p99_latency_ms": float(np.percentile(single, 99)),
        "batch_size": spec.batch_size,
        "batch_p50_ms": median_batch,
        "batch_rows_per_second": spec.batch_size / (median_batch / 1000),
        "model_size_mb": len(pickle.dumps(model, protocol=5)) / 1e6,
    }


def latency_html(report: dict) -> str:
    return html.page("Latency and size (in process, full pipeline)", html.table(["measure", "value"], report.items()))

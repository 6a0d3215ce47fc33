"""Latency and size of the whole preprocessing + model pipeline, as a caller sees it.

A latency measured on a busy machine is mostly the machine. So the candidate and the champion are
measured in one process, call by call on the same rows (alternating which goes first), in rounds
until the interval of each one's p95 is tight; the ratio of their p95s is what the load cannot move
much, and the intervals show how far the absolute figures can be trusted."""

from __future__ import annotations

import pickle
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keel.reports import html
from keel.spec.evaluation import LatencySpec

PERCENTILES = (50, 95, 99)
STOPPED_TIGHT = "p95 interval tight"
STOPPED_AT_CAP = "round cap reached"
STOPPED_AT_TIME = "time budget reached"
NO_CHAMPION = "absent: no champion (production or staging version) to compare with"

Predict = Callable[[pd.DataFrame], object]


def percentile_interval(samples: Sequence[float], percentile: float, confidence: float) -> Tuple[float, float]:
    """Distribution-free interval of a percentile: the order statistics whose ranks bound it with
    probability `confidence` (binomial ranks), so no assumption about the latencies' shape. Few
    samples give the whole range (the interval is then honestly wide)."""
    from scipy.stats import binom

    ordered = np.sort(np.asarray(samples, dtype=float))
    n, quantile, alpha = len(ordered), percentile / 100, 1 - confidence
    low_rank = int(binom.ppf(alpha / 2, n, quantile))  # 1-based ranks
    high_rank = int(binom.ppf(1 - alpha / 2, n, quantile)) + 1
    return float(ordered[max(low_rank, 1) - 1]), float(ordered[min(high_rank, n) - 1])


def relative_width(samples: Sequence[float], percentile: float, confidence: float) -> float:
    """Width of the percentile's interval relative to the percentile itself (0 when all samples agree)."""
    low, high = percentile_interval(samples, percentile, confidence)
    estimate = float(np.percentile(samples, percentile))
    return (high - low) / estimate if estimate > 0 else (0.0 if high == low else float("inf"))


def stopping_reason(samples_by_model: Mapping[str, Sequence[float]], rounds_done: int,
                    spec: LatencySpec, seconds_spent: float = 0.0) -> Optional[str]:
    """Why measuring stops after `rounds_done` rounds taking `seconds_spent`, or None to measure another
    round: every model's p95 interval within `spec.p95_relative_width` of its p95, else the round cap,
    else the time budget."""
    if all(relative_width(samples, 95, spec.interval_confidence) <= spec.p95_relative_width
           for samples in samples_by_model.values()):
        return STOPPED_TIGHT
    if rounds_done >= spec.max_rounds:
        return STOPPED_AT_CAP
    if seconds_spent >= spec.max_seconds:
        return STOPPED_AT_TIME
    return None


def _timed(predict: Predict, frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    predict(frame)
    return (time.perf_counter() - started) * 1000


def measure_interleaved(predictors: Mapping[str, Predict], rows: Sequence[pd.DataFrame],
                        spec: LatencySpec) -> Tuple[Dict[str, List[float]], int, str]:
    """(milliseconds per call per model, rounds, why it stopped). Each row is scored by every model in
    turn, the order alternating row by row, so whatever else the machine does falls on all of them alike.
    At least one whole round is measured, whatever the time budget."""
    names = list(predictors)
    for name in names:  # first calls pay for lazy set-up, not for scoring
        predictors[name](rows[0])
    samples: Dict[str, List[float]] = {name: [] for name in names}
    rounds, started = 0, time.perf_counter()
    while True:
        for position, row in enumerate(rows):
            for name in (names if position % 2 == 0 else names[::-1]):
                samples[name].append(_timed(predictors[name], row))
        rounds += 1
        reason = stopping_reason(samples, rounds, spec, time.perf_counter() - started)
        if reason is not None:
            return samples, rounds, reason


def _percentiles(samples: Sequence[float], confidence: float) -> Tuple[Dict[str, float], Dict[str, List[float]]]:
    values = {f"p{p}_latency_ms": float(np.percentile(samples, p)) for p in PERCENTILES}
    intervals = {f"p{p}_latency_ms": list(percentile_interval(samples, p, confidence)) for p in PERCENTILES}
    return values, intervals


def evaluate_latency(predict: Predict, frame: pd.DataFrame, model, spec: LatencySpec,
                     champion_predict: Optional[Predict] = None, champion_name: Optional[str] = None) -> dict:
    """Single-row percentiles with their intervals, batch throughput and serialized size of `model`;
    with a champion, the same for it, measured interleaved, and the ratio of the p95s (challenger /
    champion). Without one, `p95_latency_ratio` is None and `ratio_note` says why."""
    rows = [frame.iloc[[i % len(frame)]] for i in range(spec.single_row_calls)]
    predictors = {"challenger": predict, **({"champion": champion_predict} if champion_predict else {})}
    samples, rounds, reason = measure_interleaved(predictors, rows, spec)

    batch = frame.iloc[: spec.batch_size]
    if len(batch) < spec.batch_size:
        batch = batch.sample(spec.batch_size, replace=True, random_state=0)
    batch_ms: Dict[str, List[float]] = {name: [] for name in predictors}
    for call in range(spec.batch_calls):
        for name in (list(predictors) if call % 2 == 0 else list(predictors)[::-1]):
            batch_ms[name].append(_timed(predictors[name], batch))

    confidence = spec.interval_confidence
    values, intervals = _percentiles(samples["challenger"], confidence)
    median_batch = float(np.median(batch_ms["challenger"]))
    report = {
        "measured": ("challenger and champion interleaved in one process on the same rows" if champion_predict
                     else "this model alone (no champion)"),
        "single_row_calls": spec.single_row_calls * rounds,
        "rounds": rounds, "stopped": reason, "interval_confidence": confidence,
        "p95_relative_width_target": spec.p95_relative_width,
        "p95_relative_width": relative_width(samples["challenger"], 95, confidence),
        **values, "intervals": intervals,
        "batch_size": spec.batch_size,
        "batch_p50_ms": median_batch,
        "batch_rows_per_second": spec.batch_size / (median_batch / 1000),
        "model_size_mb": len(pickle.dumps(model, protocol=5)) / 1e6,
        "champion": None, "p95_latency_ratio": None, "p95_latency_ratio_interval": None, "ratio_note": NO_CHAMPION,
    }
    if champion_predict is None:
        return report
    champion_values, champion_intervals = _percentiles(samples["champion"], confidence)
    (low, high), (champion_low, champion_high) = intervals["p95_latency_ms"], champion_intervals["p95_latency_ms"]
    report["champion"] = {"name": champion_name, **champion_values, "intervals": champion_intervals,
                          "p95_relative_width": relative_width(samples["champion"], 95, confidence),
                          "batch_p50_ms": float(np.median(batch_ms["champion"]))}
    report["p95_latency_ratio"] = values["p95_latency_ms"] / champion_values["p95_latency_ms"]
    # Conservative: the extremes of the two intervals against each other.
    report["p95_latency_ratio_interval"] = [low / champion_high, high / champion_low]
    report["ratio_note"] = f"challenger p95 / champion p95 ({champion_name}), measured interleaved"
    return report


def _with_interval(value: float, interval: Sequence[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def latency_html(report: dict) -> str:
    champion = report.get("champion")
    confidence = f"{report['interval_confidence']:.0%}"
    headers = ["measure", f"this model (value [{confidence} interval])"] + (
        [f"champion {champion['name']}"] if champion else [])
    rows = [(name, _with_interval(report[name], report["intervals"][name]))
            + ((_with_interval(champion[name], champion["intervals"][name]),) if champion else ())
            for name in report["intervals"]]
    rows.append(("batch p50 (ms)", f"{report['batch_p50_ms']:.3f}")
                + ((f"{champion['batch_p50_ms']:.3f}",) if champion else ()))
    ratio = report["p95_latency_ratio"]
    summary = {
        "measured": report["measured"],
        "single-row calls per model": f"{report['single_row_calls']} in {report['rounds']} round(s); "
                                      f"stopped: {report['stopped']}",
        "p95 interval width / p95": f"{report['p95_relative_width']:.3f} (target {report['p95_relative_width_target']:g})",
        "p95 ratio (challenger / champion)": (f"{ratio:.3f} [{report['p95_latency_ratio_interval'][0]:.3f}, "
                                              f"{report['p95_latency_ratio_interval'][1]:.3f}]" if ratio is not None
                                              else report["ratio_note"]),
        "batch rows per second": report["batch_rows_per_second"],
        "model size (MB)": report["model_size_mb"],
    }
    return html.page("Latency and size (in process, full pipeline)", html.key_values(summary),
                     html.table(headers, rows))

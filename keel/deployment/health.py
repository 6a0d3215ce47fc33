"""Health of a rollout stage, from the live prediction log: challenger against champion."""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from keel.spec.deployment import HealthSpec
from keel.spec.evaluation import ValueMatrix


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (quantile bins of the reference)."""
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def arm_stats(rows: List[dict], errors: List[dict], version: int, shadow: bool) -> Dict[str, float]:
    mine = [r for r in rows if r["model_version"] == version and bool(r["shadow"]) == shadow]
    failed = [e for e in errors if e["model_version"] == version]
    latencies = [r["latency_ms"] for r in mine] + [e["latency_ms"] for e in failed]
    calls = len(mine) + len(failed)
    return {"requests": calls, "served": len(mine), "errors": len(failed),
            "error_rate": len(failed) / calls if calls else float("nan"),
            "p95_latency_ms": float(np.percentile(latencies, 95)) if latencies else float("nan"),
            "scores": [r["score"] for r in mine]}


def judge_stage(rows: List[dict], errors: List[dict], challenger: int, champion: Optional[int],
                health: HealthSpec, challenger_is_shadow: bool = False) -> dict:
    """{healthy, breaches, not_judged, challenger, champion, score_psi}; too few challenger requests is a
    breach; too few scores for the PSI leaves it not judged, as the spec's min_scores_for_psi says, named
    under `not_judged`."""
    new = arm_stats(rows, errors, challenger, challenger_is_shadow)
    old = arm_stats(rows, errors, champion, False) if champion is not None else None
    breaches, notes = [], []
    if new["requests"] < health.min_requests:
        breaches.append(f"only {new['requests']} challenger requests (need {health.min_requests})")
    if new["requests"] and new["error_rate"] > health.max_error_rate:
        breaches.append(f"error rate {new['error_rate']:.3f} > {health.max_error_rate}")
    if new["served"] and new["p95_latency_ms"] > health.max_p95_latency_ms:
        breaches.append(f"p95 latency {new['p95_latency_ms']:.1f} ms > {health.max_p95_latency_ms} ms")
    score_psi = float("nan")
    if old is not None and old["served"] and new["served"]:
        ratio = new["p95_latency_ms"] / max(old["p95_latency_ms"], 1e-6)
        if ratio > health.max_p95_latency_ratio:
            breaches.append(f"p95 latency {ratio:.1f}x the champion's > {health.max_p95_latency_ratio}x")
        score_psi = psi(np.asarray(old["scores"]), np.asarray(new["scores"]))
        enough = min(len(old["scores"]), len(new["scores"])) >= health.min_scores_for_psi
        if enough and score_psi > health.max_score_psi:
            breaches.append(f"score PSI {score_psi:.3f} > {health.max_score_psi}")
        if not enough:  # reported, not judged (the spec's rule), and said so: "healthy" rests on less
            notes.append(f"score PSI {score_psi:.3f} not judged: {len(new['scores'])} challenger and "
                         f"{len(old['scores'])} champion scores (need {health.min_scores_for_psi} each)")
    strip = lambda stats: {k: v for k, v in stats.items() if k != "scores"}  # noqa: E731
    return {"healthy": not breaches, "breaches": breaches, "not_judged": notes, "challenger": strip(new),
            "champion": strip(old) if old else None, "score_psi": score_psi}


def arm_business_value(rows: List[dict], labels: Dict[str, int], values: ValueMatrix) -> Dict[str, float]:
    """Value per application of each arm's decisions where the outcome is known (A/B reporting)."""
    from keel.evaluation.decisions import value_per_application

    result = {}
    for arm in sorted({r["arm"] for r in rows}):
        known = [r for r in rows if r["arm"] == arm and r["entity_id"] in labels]
        if known:
            result[arm] = value_per_application([labels[r["entity_id"]] for r in known],
                                                [r["decision"] for r in known], values)
    return result

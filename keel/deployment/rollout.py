"""The rollout controller: walk the strategy's stages, probe, hold, judge health, roll back on a
breach. Works against any running keel service (it only changes the routing file and reads the
prediction log)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import pandas as pd

from keel.clock import utc_now
from keel.deployment.bundle import write_routing
from keel.deployment.health import arm_business_value, judge_stage
from keel.deployment.strategies import champion_only
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import RoutingTable
from keel.spec.models import DeploymentSpec, ValueMatrix
from keel.spec.monitoring import PROBE_ENTITY_PREFIX

Probe = Callable[[str, int], dict]


def replay_probe(url: str, rows: pd.DataFrame, post: Callable) -> Probe:
    """Send rows of held-out data, one request each, with entity ids unique to the stage. A stage
    that needs more requests than there are rows (a 5% canary on a 200-row test split) cycles
    through them; entity ids stay unique, so routing spreads the repeats like new applicants."""

    def probe(stage: str, count: int) -> dict:
        statuses: dict = {}
        chosen = rows.iloc[np.arange(count) % len(rows)] if count and len(rows) else rows.iloc[:0]
        records = json.loads(chosen.to_json(orient="records"))
        for index, record in enumerate(records):
            record["entity_id"] = f"{PROBE_ENTITY_PREFIX}{stage}-{index}"
            status, _ = post(f"{url}/predict", record)
            statuses[status] = statuses.get(status, 0) + 1
        return statuses

    return probe


def probe_count(table: RoutingTable, challenger: int, spec: DeploymentSpec) -> int:
    """Enough probes for the challenger's share to reach the evidence the health check needs."""
    if spec.probe_requests == 0:
        return 0
    share = 1.0 if table.shadow is not None else sum(a.weight for a in table.arms if a.version == challenger)
    needed = max(spec.health.min_requests, spec.health.min_scores_for_psi)
    return max(spec.probe_requests, math.ceil(needed / max(share, 1e-3)))


def run_rollout(folder: Path, stages: List[RoutingTable], spec: DeploymentSpec, log: PredictionLog,
                challenger: int, champion: Optional[int], probe: Probe,
                sleep: Callable[[float], None] = time.sleep, probe_labels: Optional[List[int]] = None,
                values: Optional[ValueMatrix] = None, on_routing: Callable[[RoutingTable], None] = lambda table: None) -> dict:
    """{outcome: completed | rolled back, stages: [evidence per stage], rolled_back_at?}

    With `probe_labels` (the known outcome of probe row i) and `values`, each stage also reports
    the business value per application of each arm's decisions (A/B's per-arm metric). `on_routing` is
    told of every routing table written (the audit trail records it)."""
    evidence = []
    for number, table in enumerate(stages, start=1):
        started = utc_now()
        write_routing(folder, table)
        on_routing(table)
        count = probe_count(table, challenger, spec)
        statuses = probe(f"{number}", count)
        sleep(spec.hold_seconds)
        rows = log.read(since=started)
        verdict = judge_stage(rows, log.read_errors(since=started), challenger, champion,
                              spec.health, challenger_is_shadow=table.shadow is not None)
        stage = {"stage": number, "strategy": table.strategy, "step": table.step, "routing": table.to_dict(),
                 "started": started.isoformat(), "probe_statuses": {str(k): v for k, v in statuses.items()},
                 **verdict}
        if probe_labels is not None and values is not None:
            # Probe i replays row i modulo the rows (see replay_probe), so its label is that row's.
            labels = {f"{PROBE_ENTITY_PREFIX}{number}-{i}": probe_labels[i % len(probe_labels)]
                      for i in range(count)} if probe_labels else {}
            stage["value_per_application_by_arm"] = arm_business_value(
                [r for r in rows if not r["shadow"]], labels, values)
        evidence.append(stage)
        if not verdict["healthy"]:
            if champion is not None:
                write_routing(folder, back := champion_only(champion, table.salt, f"rolled back at stage {number}"))
                on_routing(back)
            return {"outcome": "rolled back", "rolled_back_at": number, "stages": evidence,
                    "serving": champion}
    return {"outcome": "completed", "stages": evidence, "serving": challenger}

"""The rollout controller: walk the strategy's stages, probe, hold, judge health, roll back on a
breach. Works against any running keel service (it only changes the routing file and reads the
prediction log)."""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, TypedDict

import numpy as np
import pandas as pd
from typing_extensions import NotRequired

from keel.clock import utc_now
from keel.deployment.bundle import write_routing
from keel.deployment.health import arm_business_value, judge_stage
from keel.deployment.strategies import champion_only
from keel.serving import rollout_state
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import RoutingTable
from keel.spec.deployment import DeploymentSpec
from keel.spec.evaluation import ValueMatrix
from keel.spec.monitoring import PROBE_ENTITY_PREFIX

Probe = Callable[[str, int], dict]


class StageEvidence(TypedDict):
    stage: int
    strategy: str
    step: str
    routing: dict
    started: str
    probe_statuses: Dict[str, int]
    healthy: bool
    breaches: List[str]
    not_judged: NotRequired[List[str]]  # checks without enough evidence to judge (absent in older records)
    challenger: dict       # requests, served, errors, error_rate, p95_latency_ms
    champion: Optional[dict]
    score_psi: float
    value_per_application_by_arm: NotRequired[Dict[str, float]]


class RolloutEvidence(TypedDict):
    """What a rollout came to (the deployment pipeline's `rollout_evidence` artifact)."""

    outcome: str                  # completed (inside the controller), promoted, rolled back, awaiting approval, ...
    stages: List[StageEvidence]
    serving: Optional[int]        # the version answering live traffic afterwards
    rolled_back_at: NotRequired[int]
    reason: NotRequired[str]      # why it stopped short: the service took over, a settings change failed
    strategy: NotRequired[str]
    url: NotRequired[str]
    challenger: NotRequired[int]
    champion: NotRequired[Optional[int]]
    approval: NotRequired[object]
    archived: NotRequired[Optional[int]]
    by: NotRequired[str]
    redeploy: NotRequired[bool]   # the version was production before this deployment (no champion by design)


class ControllerLost(RuntimeError):
    """The service abandoned this rollout (its controller was silent past the timeout)."""


class RolloutController:
    """The controller's side of the rollout state (keel.serving.rollout_state): the state is written
    before every routing change, and a thread reports a heartbeat while the rollout runs, so a
    killed controller leaves a state the service's dead-man's switch and the next command resolve.
    Every write first checks that the service has not taken the rollout over (ControllerLost)."""

    def __init__(self, folder: Path, challenger: int, champion: Optional[int], timeout_seconds: float, who: str,
                 model: Optional[str] = None, trail: Optional[str] = None):
        """`trail`: the model's audit trail, when it is a local folder, where the service records a take-over."""
        now = time.time()
        self.folder = Path(folder)
        self.state: rollout_state.RolloutState = {
            "stage": rollout_state.IN_PROGRESS, "challenger": challenger, "champion": champion,
            "step": "before rollout", "controller_pid": os.getpid(), "controller": who,
            "started": rollout_state.iso(now), "heartbeat": now, "timeout_seconds": timeout_seconds,
            "model": model, "trail": trail}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, name="rollout-heartbeat", daemon=True)

    def __enter__(self) -> "RolloutController":
        self.folder.mkdir(parents=True, exist_ok=True)
        with rollout_state.locked(self.folder):
            rollout_state.write_state(self.folder, self.state)
        self._thread.start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        self._thread.join()
        if error is not None:  # a failure (or Ctrl+C) mid-rollout: back to the champion now, not at the timeout
            rollout_state.abandon(self.folder, failure=f"the controller of the rollout of v{self.state['challenger']} "
                                                       f"failed at {self.state['step']}: {type(error).__name__}: "
                                                       f"{str(error)[:1000]}")

    def _ours(self) -> rollout_state.RolloutState:
        """The state on disk, if it is still this controller's active rollout; ControllerLost otherwise."""
        found = rollout_state.read_state(self.folder)
        if found is None or found["started"] != self.state["started"] or found["stage"] not in rollout_state.ACTIVE:
            raise ControllerLost((found or {}).get("reason") or "the rollout state was replaced by another command")
        return found

    def _update(self, write: Callable[[], None] = lambda: None, **changes) -> None:
        with rollout_state.locked(self.folder):
            self._ours()
            write()
            self.state.update(changes, heartbeat=time.time())
            rollout_state.write_state(self.folder, self.state)

    def _report(self) -> None:
        interval = max(0.2, self.state["timeout_seconds"] / 4)
        while not self._stop.wait(interval):
            try:
                self._update()
            except ControllerLost:
                return

    def write(self, table: RoutingTable) -> None:
        """Write a stage's routing (the state names the step first, under the same lock)."""
        self._update(functools.partial(write_routing, self.folder, table), step=table.step)

    def promoting(self) -> None:
        self._update(stage=rollout_state.PROMOTING)

    def finish(self, outcome: str, table: Optional[RoutingTable] = None) -> None:
        """End the rollout: write the final routing (if any) and mark the state finished."""
        write = functools.partial(write_routing, self.folder, table) if table is not None else (lambda: None)
        self._update(write, stage=rollout_state.FINISHED, outcome=outcome,
                     step=table.step if table is not None else self.state["step"])


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


def probe_count(table: RoutingTable, challenger: int, spec: DeploymentSpec, stage: str = "1") -> int:
    """Enough probes for each arm to reach the evidence the health check needs: the challenger its
    requests and scores, the champion (where it keeps a share) the scores its PSI compares. Routing is a
    hash of the probe's entity id, so the count is found by routing the ids this stage's probes will
    carry: the share alone would leave an arm short half the time (helper-64: a 5% canary's challenger
    got 95 of the 100 scores the PSI needs, and the PSI was never judged)."""
    if spec.probe_requests == 0:
        return 0
    needed = max(spec.health.min_requests, spec.health.min_scores_for_psi)
    if table.shadow is not None:  # every request reaches the shadow too
        return max(spec.probe_requests, needed)
    wanted = {challenger: needed, **{arm.version: spec.health.min_scores_for_psi for arm in table.arms
                                      if arm.version != challenger and arm.weight > 0}}
    share = min(sum(a.weight for a in table.arms if a.version == version) for version in wanted)
    limit = math.ceil(4 * needed / max(share, 1e-3)) + spec.probe_requests  # an arm of no share never fills
    seen = dict.fromkeys(wanted, 0)
    count = 0
    while count < limit and any(seen[version] < wanted[version] for version in wanted):
        version = table.arm_for(f"{PROBE_ENTITY_PREFIX}{stage}-{count}").version
        if version in seen:
            seen[version] += 1
        count += 1
    return max(spec.probe_requests, count)


def run_rollout(folder: Path, stages: List[RoutingTable], spec: DeploymentSpec, log: PredictionLog,
                challenger: int, champion: Optional[int], probe: Probe,
                sleep: Callable[[float], None] = time.sleep, probe_labels: Optional[List[int]] = None,
                values: Optional[ValueMatrix] = None, on_routing: Callable[[RoutingTable], None] = lambda table: None,
                write: Optional[Callable[[RoutingTable], None]] = None) -> RolloutEvidence:
    """{outcome: completed | rolled back, stages: [evidence per stage], rolled_back_at?, reason?}

    With `probe_labels` (the known outcome of probe row i) and `values`, each stage also reports
    the business value per case of each arm's decisions (A/B's per-arm metric). `on_routing` is
    told of every routing table written (the audit trail records it). `write` writes a routing table
    (a RolloutController's `write`; default: straight to the folder's routing file). When the service
    has taken the rollout over (ControllerLost), it is rolled back at that stage, with the reason."""
    write = write or functools.partial(write_routing, folder)
    evidence: List[StageEvidence] = []
    try:
        return _walk(stages, spec, log, challenger, champion, probe, sleep, probe_labels, values, on_routing, write,
                     evidence)
    except ControllerLost as lost:
        return {"outcome": "rolled back", "rolled_back_at": len(evidence) + 1, "stages": evidence,
                "serving": champion, "reason": str(lost)}


def _walk(stages, spec, log, challenger, champion, probe, sleep, probe_labels, values, on_routing, write,
          evidence: List[StageEvidence]) -> RolloutEvidence:
    for number, table in enumerate(stages, start=1):
        started = utc_now()
        write(table)
        on_routing(table)
        count = probe_count(table, challenger, spec, f"{number}")
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
                write(back := champion_only(champion, table.salt, f"rolled back at stage {number}"))
                on_routing(back)
            return {"outcome": "rolled back", "rolled_back_at": number, "stages": evidence,
                    "serving": champion}
    return {"outcome": "completed", "stages": evidence, "serving": challenger}

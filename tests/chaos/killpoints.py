"""Where a chaos trial kills a command, and how the moment is seen from outside the process.

Two signals, both observed, never injected into the command:

- a step boundary: ZenML's local orchestrator logs "Step `<name>` has started." when a step's run is
  created, right after the previous step finished (zenml/orchestrators/step_launcher.py); "Initiating
  a new run for the pipeline: <name>." says which pipeline it belongs to (`monitor` runs four). The
  line reaches us on the command's output (unbuffered, ZENML_LOGGING_VERBOSITY=INFO).
- an audit event: the moment a record with that event (and routing step) appears in the audit trail,
  for points inside a step: the registration's two records, a rollout's stages, its promotion.

`after_seconds` kills that long after the signal (the issue's "0.6 s into register_model_step").
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Set

STEP_STARTED = re.compile(r"Step `?(?P<step>\w+)`? has started")
STEP_CACHED = re.compile(r"Using cached version of step `?(?P<step>\w+)`?")
PIPELINE_STARTED = re.compile(r"Initiating a new run for the pipeline: `?(?P<pipeline>\w+)`?")
PIPELINE_FINISHED = "Pipeline run has finished"
END = "end"  # the step name of the point after a pipeline's last step: its "Pipeline run has finished" line


@dataclass(frozen=True)
class KillPoint:
    command: str                        # train | evaluate | deploy | monitor
    step: Optional[str] = None          # kill when this step has started (END: when the pipeline finished)
    pipeline: Optional[str] = None      # ... of this pipeline (default: the command's own)
    event: Optional[str] = None         # or: when an audit record of this event appears
    routing_step: Optional[str] = None  # ... whose routing is at this step ("5%", "100%")
    after_seconds: float = 0.0
    base: Optional[str] = None          # the state the trial starts from (default: BASES[command])

    @property
    def start(self) -> str:
        return self.base or BASES[self.command]

    @property
    def args(self) -> List[str]:
        return [self.command]

    @property
    def id(self) -> str:
        where = self.step or f"{self.event}" + (f"@{self.routing_step}" if self.routing_step else "")
        pipeline = f"{self.pipeline.removesuffix('_pipeline')}." if self.pipeline else ""
        delay = f"+{self.after_seconds:g}s" if self.after_seconds else ""
        base = f"[{self.base}]" if self.base else ""
        return f"{self.command}{base}:{pipeline}{where}{delay}"

    def __str__(self) -> str:
        return self.id


# The state each command's trials start from (tests/chaos/test_chaos.py builds them):
#   empty     a project with its spec and an empty store
#   trained   v1 trained
#   evaluated v1 trained and evaluated (staging), nothing deployed
#   deployed  v1 in production, served (the service is started again by the command)
#   staged    v1 in production, v2 trained and evaluated (staging): the challenger of a canary
BASES = {"train": "empty", "evaluate": "trained", "deploy": "staged", "monitor": "deployed"}

PIPELINES = {"train": "training_pipeline", "evaluate": "evaluation_pipeline", "deploy": "deployment_pipeline",
             "monitor": "monitoring_pipeline"}


class Watcher:
    """Tells when a command reached a kill point: fed its output lines by a reader thread, and polling
    the audit trail's folder (found through `audit_folder`, which exists only after the first record)."""

    def __init__(self, point: Optional[KillPoint], audit_folder: Callable[[], Optional[Path]]):
        self.point = point
        self._audit_folder = audit_folder
        self._hit = threading.Event()
        self._pipeline: Optional[str] = None
        self.steps: List[str] = []  # "pipeline/step" of every step run or taken from the cache, and END
        self._known: Optional[Set[str]] = None
        if point is not None and point.event is not None:
            self._known = set(self._records())  # only records written after the command started count

    def saw_line(self, line: str) -> None:
        started = PIPELINE_STARTED.search(line)
        if started:
            self._pipeline = started.group("pipeline")
            return
        cached = STEP_CACHED.search(line)
        if cached:
            self.steps.append(f"{self._pipeline}/{cached.group('step')}")
            return
        step = STEP_STARTED.search(line)
        name = step.group("step") if step else (END if PIPELINE_FINISHED in line else None)
        if name is None:
            return
        self.steps.append(f"{self._pipeline}/{name}")
        point = self.point
        if point is not None and point.step == name and point.event is None:
            if self._pipeline == (point.pipeline or PIPELINES[point.command]):
                self._hit.set()

    def reached(self) -> bool:
        if self._hit.is_set():
            return True
        if self._known is not None:
            for name in self._records():
                if name not in self._known:
                    self._known.add(name)
                    if self._matches(name):
                        self._hit.set()
                        return True
        return False

    def _records(self) -> List[str]:
        folder = self._audit_folder()
        return sorted(p.name for p in folder.glob("*.json")) if folder is not None else []

    def _matches(self, name: str) -> bool:
        try:
            record = json.loads((self._audit_folder() / name).read_text())
        except (OSError, ValueError):  # being written: the next poll reads it whole
            self._known.discard(name)
            return False
        if record.get("event") != self.point.event:
            return False
        if self.point.routing_step is None:
            return True
        routing = (record.get("details") or {}).get("routing") or {}
        return routing.get("step") == self.point.routing_step


# --- the matrix ---------------------------------------------------------------------------------
# Every step of each command's pipeline (in the order the local orchestrator runs them), then points
# inside the steps where a kill does the most harm. `test_matrix_names_every_step` checks the step
# lists against what the commands really run.

TRAINING_STEPS = ["ingest_step", "validate_step", "split_step", "store_data_version_step", "fit_features_step",
                  "search_candidate_step", "train_baseline_step", "readiness_step", "select_model_step",
                  "register_model_step"]
EVALUATION_STEPS = ["begin_evaluation_step", "decision_threshold_step", "explainability_step", "calibration_step",
                    "champion_challenger_step", "fairness_step", "latency_step", "performance_step",
                    "reference_profiles_step", "robustness_step", "business_step", "link_references_step",
                    "gates_step", "model_card_step", "link_evidence_step", "record_decision_step"]
DEPLOYMENT_STEPS = ["rollout_step", "package_step", "registry_view_step", "curate_registry_view_step"]
MONITORING_STEPS = ["window_profile_step", "join_labels_step", "drift_step", "policy_step", "alert_step"]

STEPS = {"train": TRAINING_STEPS, "evaluate": EVALUATION_STEPS, "deploy": DEPLOYMENT_STEPS,
         "monitor": MONITORING_STEPS}


def full_matrix() -> List[KillPoint]:
    points = [KillPoint(command, step) for command, steps in STEPS.items() for step in [*steps, END]]
    points += [
        # registration: created and started, then all but its completion mark; and the timings
        KillPoint("train", event="registration_started"),
        KillPoint("train", event="training_run_registered"),
        KillPoint("train", "register_model_step", after_seconds=0.6),
        KillPoint("train", "register_model_step", after_seconds=1.2),
        # evaluation: the stage changed, the command not yet ended
        KillPoint("evaluate", event="stage_changed"),
        # a rollout: during the 5% canary, after the 100% stage, after the promoted routing, after the
        # registry's stage change
        KillPoint("deploy", event="deployment_step", routing_step="5%"),
        KillPoint("deploy", event="deployment_step", routing_step="100%"),
        KillPoint("deploy", event="routing_changed", routing_step="100%"),
        KillPoint("deploy", event="stage_changed"),
        # a first rollout (no champion to return to): as the registry promotes it, and after its 100% stage
        KillPoint("deploy", event="stage_changed", base="evaluated"),
        KillPoint("deploy", event="deployment_step", routing_step="100%", base="evaluated"),
        # monitor's retraining: its training, evaluation and canary
        KillPoint("monitor", "register_model_step", pipeline="training_pipeline"),
        KillPoint("monitor", "gates_step", pipeline="evaluation_pipeline"),
        KillPoint("monitor", event="deployment_step", routing_step="5%"),
        KillPoint("monitor", "package_step", pipeline="deployment_pipeline"),
    ]
    return points


# One kill point per command for CI, with the command run after it (None: the same command): the
# cases the issue found broken, in the order one project lives through them (each trial's next command
# leaves the state the following trial starts from).
CI_CHAIN = [
    (KillPoint("train", event="registration_started"), None),
    (KillPoint("evaluate", "gates_step"), None),
    # the first rollout (no champion), killed after its 100% stage
    (KillPoint("deploy", event="deployment_step", routing_step="100%"), None),
    # the retrained version's canary: the next deploy must finish the stranded rollout first
    (KillPoint("monitor", event="deployment_step", routing_step="5%"), ["deploy"]),
]

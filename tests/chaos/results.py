"""The record of chaos trials: one JSON line per trial in tests/chaos/results/trials-<worker>.jsonl
(or under $KEEL_CHAOS_RESULTS), each command's output under logs/<worker>/, and the summary quoted in
the closing note ("N trials, M invariants held, K failed: ..."). The folder is git-ignored; each run of
the module starts its worker's file afresh, and the summary reads every worker's file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

from tests.chaos.invariants import Check

RESULTS = Path(os.environ.get("KEEL_CHAOS_RESULTS") or Path(__file__).resolve().parent / "results")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
TRIALS = RESULTS / f"trials-{WORKER}.jsonl"
LOGS = RESULTS / "logs" / WORKER  # each command's output (Project._log)


@dataclass
class Trial:
    point: str
    mode: str                                # "ci" (the chain) or "full" (the matrix)
    killed_at: Optional[float] = None        # seconds into the command; None: the point was never reached
    seconds: float = 0.0                     # the whole trial: kill, checks, next command, checks
    checks: List[dict] = field(default_factory=list)   # {phase, name, held, detail}
    expected_gap: Optional[str] = None       # a known, reported gap this trial is marked xfail for

    def add(self, phase: str, checks: List[Check]) -> None:
        self.checks += [{"phase": phase, "name": c.name, "held": c.held, "detail": c.detail} for c in checks]

    @property
    def failed(self) -> List[dict]:
        return [c for c in self.checks if not c["held"]]

    def report(self) -> str:
        lines = [f"{self.point}: killed at {self.killed_at:.2f} s" if self.killed_at is not None
                 else f"{self.point}: kill point not reached"]
        lines += [f"  [{c['phase']}] {'held' if c['held'] else 'FAILED'}  {c['name']}: {c['detail']}"
                  for c in self.checks]
        return "\n".join(lines)


def start() -> None:
    import shutil

    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    TRIALS.write_text("")


def record(trial: Trial) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with TRIALS.open("a") as handle:
        handle.write(json.dumps(asdict(trial)) + "\n")


def files() -> List[Path]:
    return sorted(RESULTS.glob("trials-*.jsonl"))


def read() -> List[dict]:
    return [json.loads(line) for path in files() for line in path.read_text().splitlines() if line.strip()]


def summary(trials: List[dict]) -> str:
    """One line per trial, then the totals and every failed invariant."""
    if not trials:
        return "chaos: no trials recorded"
    checks = [c for t in trials for c in t["checks"]]
    failed = [(t["point"], c) for t in trials for c in t["checks"] if not c["held"]]
    width = max(len(t["point"]) for t in trials)
    lines = [f"chaos trials ({RESULTS}):"]
    for t in trials:
        held = sum(c["held"] for c in t["checks"])
        killed = f"{t['killed_at']:6.2f} s" if t["killed_at"] is not None else "  not reached"
        names = sorted({c["name"] for c in t["checks"] if not c["held"]})
        lines.append(f"  {t['point']:<{width}}  killed at {killed}  {held}/{len(t['checks'])} held"
                     + (f"  FAILED: {'; '.join(names)}" if names else "") + (" (known gap)" if t.get("expected_gap") else ""))
    lines.append(f"{len(trials)} trials, {len(checks) - len(failed)} invariants held, {len(failed)} failed"
                 + (":" if failed else ""))
    lines += [f"  {point} [{c['phase']}] {c['name']}: {c['detail'][:300]}" for point, c in failed]
    return "\n".join(lines)

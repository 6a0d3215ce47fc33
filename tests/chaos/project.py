"""One keel project for chaos trials: its folder, its own ZenML store and BentoML home, a small spec,
and the two ways a command runs here — to its end, or until a kill point where it gets SIGKILL.

Layout of a project root (everything a trial changes lives under it, so a copy of the root is a
complete snapshot of the project's state):

    <root>/project/               the working directory of every command (`.keel/`, `reports/`)
    <root>/project/configs/chaos.yaml
    <root>/zenml/                 ZENML_CONFIG_PATH: the SQLite store and the local artifact store
                                  (the audit trail lives there, under keel-audit/)
    <root>/bentoml/               BENTOML_HOME (the Bentos `deploy` builds)

ZenML records absolute paths (the artifact store's), so a snapshot is only ever restored to the root
it was taken from (`restore`), never copied elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import yaml

from tests.conftest import ROOT, _use_zenml_config, new_zenml_store
from tests.chaos.killpoints import KillPoint, Watcher
from tests.support.forked_commands import start_command

MODEL = "chaos"
# Small enough that a command takes seconds, real enough that every step does its work: a canary with
# a 5% stage (the stranded-canary case) and a short, spec-declared controller timeout.
SETTINGS = [
    f"problem.name={MODEL}", "data.source.rows=1500", "training.candidate.trials=1",
    "training.candidate.params.n_estimators=20",
    "evaluation.latency.single_row_calls=20", "evaluation.latency.batch_calls=1", "evaluation.latency.max_rounds=1",
    "evaluation.explainability.sample_size=50", "evaluation.comparison.bootstrap_samples=100",
    "evaluation.comparison.margin=0.5", "evaluation.gates=[{metric: roc_auc, min: 0.5}]",
    "deployment.strategy=canary", "deployment.canary_steps=[0.05, 1.0]", "deployment.hold_seconds=0",
    "deployment.probe_requests=40", "deployment.health.min_requests=5",
    "deployment.controller_timeout_seconds=4",
    # `monitor` retrains at once (the scheduled trigger), so a monitor trial reaches train, evaluate
    # and a canary rollout of the new version.
    "monitoring.retraining.schedule_hours=0.0001", "monitoring.retraining.cooldown_hours=0",
    "monitoring.retraining.max_retrains=1000",
    # Newer data for the retrain: on unchanged data the model is the champion's and is not rolled out.
    "monitoring.retraining.data_overrides=[data.source.seed=8]",
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMMAND_TIMEOUT = 420.0


@dataclass
class Ran:
    """A command's run: its exit code (None while killed before it ended on its own), its output."""

    args: List[str]
    returncode: Optional[int]
    output: str
    seconds: float
    killed_at: Optional[float] = None   # seconds after start; None when the kill point was never reached
    steps: List[str] = field(default_factory=list)  # "pipeline/step" of every step seen (Watcher.steps)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


class Project:
    def __init__(self, root: Path, port: int, logs: Path):
        self.root = Path(root)
        self.port = port
        self.logs = Path(logs)  # every command's output, one file each; outside the root: survives a restore
        self.dir = self.root / "project"
        self.spec_path = self.dir / "configs" / "chaos.yaml"
        self.zenml = self.root / "zenml"
        self.bentoml = self.root / "bentoml"

    # --- set-up ------------------------------------------------------------------------------
    def create(self) -> "Project":
        """A fresh project: the spec written, the ZenML store created (so no trial pays for it)."""
        from keel.spec.load import apply_overrides, read_spec_file, validate_spec

        self.spec_path.parent.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        raw = apply_overrides(read_spec_file(ROOT / "configs" / "credit_risk.yaml"),
                              [*SETTINGS, f"deployment.port={self.port}"])
        validate_spec(raw, str(self.spec_path))
        self.spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        new_zenml_store(self.zenml)  # the store, its default project and stack (a copy of the session's template)
        return self

    def spec(self):
        from keel.spec import load_spec

        return load_spec(self.spec_path)

    def deployment_folder(self) -> Path:
        return self.dir / ".keel" / "deployments" / MODEL

    def audit_folder(self) -> Optional[Path]:
        """Where the audit trail's records are (under the local artifact store), once one exists."""
        found = sorted(self.zenml.glob(f"local_stores/*/keel-audit/{MODEL}"))
        return found[0] if found else None

    def snapshot(self, to: Path) -> None:
        self.stop_service()
        shutil.rmtree(to, ignore_errors=True)
        shutil.copytree(self.root, to, symlinks=True)

    def restore(self, snapshot: Path) -> None:
        self.stop_service()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.copytree(snapshot, self.root, symlinks=True)

    def stop_service(self) -> None:
        from keel.deployment.server import stop_service

        if self.deployment_folder().exists():
            stop_service(self.deployment_folder(), kill=True)

    # --- commands in their own process --------------------------------------------------------
    def environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_STORE_", "ZENML_SERVER"))}
        env.update({"ZENML_CONFIG_PATH": str(self.zenml), "BENTOML_HOME": str(self.bentoml),
                    "KEEL_LAST_SPEC": str(self.dir / ".keel" / "last_spec"), "KEEL_ACTOR": "chaos-suite",
                    # the step lines ("Step `x` has started.") are ZenML's INFO logs; unbuffered, each
                    # reaches the watcher as it is printed
                    "ZENML_LOGGING_VERBOSITY": "INFO", "PYTHONUNBUFFERED": "1",
                    "ZENML_ANALYTICS_OPT_IN": "false", "WHYLOGS_NO_ANALYTICS": "True", "BENTOML_DO_NOT_TRACK": "True"})
        return env

    def command(self, *args: str) -> List[str]:
        return [sys.executable, str(ROOT / "run.py"), *args, "--config", str(self.spec_path)]

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Ran:
        """`run.py ARGS` to its end, as an operator runs it after whatever happened before."""
        return self._run(self.command(*args), None, timeout)

    def run_until(self, point: KillPoint, timeout: float = COMMAND_TIMEOUT) -> Ran:
        """`run.py <point.command>`, SIGKILLed (its whole process group) at the kill point."""
        return self._run(self.command(*point.args), point, timeout)

    def _run(self, command: List[str], point: Optional[KillPoint], timeout: float) -> Ran:
        started = time.monotonic()
        # Popen(stdin=DEVNULL, stdout=PIPE, stderr=STDOUT, start_new_session=True), forked where it can be.
        process = start_command(command, env=self.environment(), cwd=self.dir)
        watcher = Watcher(point, self.audit_folder)
        lines: List[str] = []

        def read() -> None:
            for raw in process.stdout:
                line = ANSI.sub("", raw.decode(errors="replace")).rstrip("\n")
                lines.append(line)
                watcher.saw_line(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        killed_at = None
        try:
            while process.poll() is None:
                if point is not None and watcher.reached():
                    time.sleep(point.after_seconds)
                    killed_at = time.monotonic() - started
                    os.killpg(process.pid, signal.SIGKILL)
                    break
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{' '.join(command[2:])} ran over {timeout:.0f} s:\n" + "\n".join(lines[-40:]))
                time.sleep(0.02)
        finally:
            if process.poll() is None and killed_at is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            reader.join(timeout=30)
        ran = Ran(command[2:], None if killed_at is not None else process.returncode, "\n".join(lines),
                  time.monotonic() - started, killed_at, list(watcher.steps))
        self._log(ran)
        return ran

    def _log(self, ran: Ran) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        label = "-".join(a if not a.startswith("(") else "inproc" for a in ran.args[:3] if not a.startswith(("--", "/")))
        name = f"{len(list(self.logs.iterdir())):03d}-{time.strftime('%H%M%S')}-{label}.log"
        outcome = f"killed at {ran.killed_at:.2f} s" if ran.killed_at is not None else f"exit {ran.returncode}"
        (self.logs / name).write_text(f"$ {' '.join(ran.args)}\n# {outcome}, {ran.seconds:.1f} s\n{ran.output}\n")

    # --- in this process ------------------------------------------------------------------------
    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """This process works on the project: its directory, its ZenML store (fresh client singletons,
        so nothing read before a restore is reused), its last-spec file. Restored afterwards."""
        saved_env = {k: os.environ.get(k) for k in ("ZENML_CONFIG_PATH", "KEEL_LAST_SPEC", "KEEL_ACTOR")}
        saved_cwd = os.getcwd()
        previous_store = Path(saved_env["ZENML_CONFIG_PATH"] or self.zenml)
        os.environ.update({"KEEL_LAST_SPEC": str(self.dir / ".keel" / "last_spec"), "KEEL_ACTOR": "chaos-suite"})
        _use_zenml_config(self.zenml)
        os.chdir(self.dir)
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            _use_zenml_config(previous_store)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def cli(self, *args: str) -> Ran:
        """`run.py ARGS` through keel's `main` in this process (what run.py calls): for the quick
        questions the invariants ask (audit verify, refusals), without a new interpreter each time."""
        from keel.cli.main import main

        out = io.StringIO()
        started = time.monotonic()
        with self.inside(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = main([*args, "--config", str(self.spec_path)])
            except SystemExit as exit_:  # argparse
                code = exit_.code if isinstance(exit_.code, int) else 2
        ran = Ran(["(in process)", *args], code, out.getvalue(), time.monotonic() - started)
        self._log(ran)
        return ran

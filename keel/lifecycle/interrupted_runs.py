"""Runs of killed processes: a ZenML run whose process died (SIGKILL, an OOM kill, a lost machine)
stays "running" for good, since nothing is left to finish it. On the local orchestrator the steps run in
the keel process itself, so each run it starts carries a tag naming that process (host; the machine's
boot and pid namespace, as containers may share a host name; pid and start time: a pid reused later is
another process), written with the run in the same call that creates it.
The next keel command that runs or lists pipelines marks the runs of this host whose process is gone
as interrupted, and says so: the steps they were running failed, the run itself is stopped with the
reason. (Not a failed run: under keel's continue-on-failure execution, ZenML counts a failed run whose
other steps never started as still in progress, with no end time; a stopped run is finished.) A run of
another host, or of a process still alive, is never touched; nor is a run of an orchestrator that runs
on its own (Kubernetes, a cloud), which is not tagged: its client's death does not end it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, List, Optional

from keel.clock import as_utc

TAG_PREFIX = "keel-process:"
START_TOLERANCE_SECONDS = 1.0  # two readings of one process's start time agree far better than this


@dataclass(frozen=True)
class RunProcess:
    """The process a run belongs to: the host, where on it (`machine`: its boot and pid namespace), its
    pid and when that process started (epoch s)."""

    host: str
    machine: str
    pid: int
    started: float

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}{self.host}:{self.machine}:{self.pid}:{self.started:.2f}"

    @classmethod
    def from_tag(cls, tag: str) -> Optional["RunProcess"]:
        if not tag.startswith(TAG_PREFIX):
            return None
        parts = tag[len(TAG_PREFIX):].rsplit(":", 3)
        if len(parts) != 4:
            return None
        host, machine, pid, started = parts
        try:
            return cls(host, machine, int(pid), float(started))
        except ValueError:
            return None

    def is_here(self) -> bool:
        """Whether its pid means a process of this machine and pid namespace (only then can we look)."""
        return (self.host, self.machine) == (socket.gethostname(), this_machine())


def this_machine() -> str:
    """This machine since its last boot, and this pid namespace: two containers named alike, or two
    machines, never share it. A short digest (the tag stays readable)."""
    import psutil

    try:
        boot = open("/proc/sys/kernel/random/boot_id", encoding="ascii").read().strip()
    except OSError:  # not Linux
        boot = str(psutil.boot_time())
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{boot}|{namespace}".encode()).hexdigest()[:12]


def this_process() -> RunProcess:
    import psutil

    return RunProcess(socket.gethostname(), this_machine(), os.getpid(), psutil.Process().create_time())


def is_running(process: RunProcess) -> bool:
    """Whether `process` (of this machine: `is_here`) still runs: its pid exists, is no zombie, and
    started when the run's process did. A process that cannot be inspected counts as running: never
    mark a live run."""
    import psutil

    try:
        found = psutil.Process(process.pid)
        if found.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(found.create_time() - process.started) < START_TOLERANCE_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def runs_in_this_process() -> bool:
    """Whether the active stack's orchestrator runs the steps in this process (ZenML's local one)."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    orchestrators = Client().active_stack_model.components.get(StackComponentType.ORCHESTRATOR) or []
    return bool(orchestrators) and orchestrators[0].flavor_name == "local"


def recorded(pipeline) -> Callable[..., Any]:
    """`pipeline`, tagged with this process when its steps will run here; called, it runs the pipeline
    and then drops the tag (a finished run needs no owner, and the store keeps no tag per process).
    If the process is killed the tag stays: that is what marks the run as one of a dead process."""
    if not runs_in_this_process():
        return pipeline
    tag = this_process().tag
    tagged = pipeline.with_options(tags=[tag])

    def run(*args, **kwargs):
        try:
            return tagged(*args, **kwargs)
        finally:
            _delete_tag(tag)

    return run


@dataclass(frozen=True)
class InterruptedRun:
    """A run marked interrupted because its process died."""

    name: str
    status: str  # what it was left at: running, initializing, ...
    process: RunProcess
    steps: List[str]  # the steps it was running, now failed
    started: Optional[datetime] = None  # the run's start (UTC)

    def describe(self) -> str:
        steps = f" in {', '.join(self.steps)}" if self.steps else ""
        since = f", started {as_utc(self.started):%Y-%m-%d %H:%M:%S} UTC" if self.started else ""
        return f"{self.name} (left {self.status}{steps}; pid {self.process.pid}{since})"


def mark_interrupted_runs(client) -> List[InterruptedRun]:
    """Mark interrupted every unfinished run of a process of this host that is gone, and drop that
    process's tag; returns what was marked. A run another keel command marked meanwhile is left to it."""
    from zenml.exceptions import AuthorizationException
    from zenml.utils.pagination_utils import depaginate

    marked = []
    here = f"{TAG_PREFIX}{socket.gethostname()}:{this_machine()}:"
    for tag in depaginate(client.list_tags, name=f"startswith:{here}"):
        process = RunProcess.from_tag(tag.name)
        if process is None or not process.is_here() or is_running(process):
            continue
        refused = False
        for run in depaginate(client.list_pipeline_runs, tags=tag.name, in_progress=True, hydrate=True):
            try:
                interrupted = _mark(client, run, process)
            except AuthorizationException:  # another user's run on a shared server: theirs to mark
                refused = True
                continue
            if interrupted is not None:
                marked.append(interrupted)
        if not refused:
            _delete_tag(tag.name, client)
    return marked


def _mark(client, run, process: RunProcess) -> Optional[InterruptedRun]:
    """The run stopped with the reason, the steps it was running failed. Stopping comes first: a step's
    update recomputes the run's status from its steps (a failed step would make it failed), and a
    stopping run whose steps have all finished becomes stopped."""
    from zenml.enums import ExecutionStatus
    from zenml.exceptions import IllegalOperationError
    from zenml.models import PipelineRunUpdate, StepRunUpdate
    from zenml.utils.time_utils import utc_now

    unfinished = [(name, step) for name, step in run.steps.items() if not step.status.is_finished]
    reason = (f"interrupted: its process (pid {process.pid} on {process.host}) ended without finishing the "
              f"run; marked by keel")
    try:
        client.zen_store.update_run(run.id, PipelineRunUpdate(status=ExecutionStatus.STOPPING, status_reason=reason))
        for _, step in unfinished:
            client.zen_store.update_run_step(step.id, StepRunUpdate(status=ExecutionStatus.FAILED, end_time=utc_now()))
    except IllegalOperationError:  # finished meanwhile (another command marked it)
        return None
    return InterruptedRun(run.name, str(run.status), process, [name for name, _ in unfinished], run.start_time)


def report_interrupted_runs(client=None) -> List[InterruptedRun]:
    """`mark_interrupted_runs` on the current store, said on stderr (a command's stdout stays its own)."""
    if client is None:
        from zenml.client import Client

        client = Client()
    marked = mark_interrupted_runs(client)
    if marked:
        print("\n".join([f"keel: marked {len(marked)} run(s) of dead processes as interrupted (ZenML status "
                         f"'stopped'; the steps they were running 'failed'):",
                         *(f"  - {run.describe()}" for run in marked)]), file=sys.stderr, flush=True)
    return marked


def _delete_tag(tag: str, client=None) -> None:
    """Drop a process tag; one already gone (another command dropped it) or a store that refuses is no
    reason to fail: a tag on a finished run is never looked at again."""
    from zenml.client import Client
    from zenml.exceptions import ZenMLBaseException

    try:
        (client or Client()).delete_tag(tag)
    except (KeyError, ZenMLBaseException):
        pass

"""The monitoring schedule: `check_every_seconds` as the nearest cron interval, and registering the
monitoring pipeline with it where the active orchestrator can keep schedules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from keel.spec.models import Spec

# Cron steps that divide their period evenly (`*/7` minutes would run at :56 and again at :00).
MINUTE_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)


@dataclass(frozen=True)
class CronInterval:
    """A cron expression for `check_every_seconds`; `seconds` is the interval it really keeps."""

    expression: str
    seconds: int
    requested: float

    @property
    def exact(self) -> bool:
        return abs(self.seconds - self.requested) < 1e-9

    def describe(self) -> str:
        every = (f"{self.seconds // 86400} day(s)" if self.seconds >= 86400 else
                 f"{self.seconds // 3600} hour(s)" if self.seconds >= 3600 else f"{self.seconds // 60} minute(s)")
        if self.exact:
            return f"every {every}"
        return (f"every {every} (monitoring.retraining.check_every_seconds={self.requested:.10g} is not a cron "
                f"interval; rounded to the nearest one)")


def _nearest(value: float, steps: Tuple[int, ...]) -> int:
    return min(steps, key=lambda step: (abs(step - value), step))


def cron_interval(seconds: float) -> CronInterval:
    """The cron expression closest to running every `seconds`: cron counts whole minutes (or hours, or
    days) that divide the hour (the day); anything else is rounded to the nearest such step."""
    minutes = seconds / 60
    if minutes < 45:  # nearer to some minute step than to one hour
        step = _nearest(minutes, MINUTE_STEPS)
        return CronInterval("* * * * *" if step == 1 else f"*/{step} * * * *", step * 60, seconds)
    hours = seconds / 3600
    if hours < 18:
        step = _nearest(hours, HOUR_STEPS)
        return CronInterval("0 * * * *" if step == 1 else f"0 */{step} * * *", step * 3600, seconds)
    if hours / 24 >= 4:  # nearer to a week than to a day; day-of-month steps would restart every month
        return CronInterval("0 0 * * 1", 7 * 86400, seconds)
    return CronInterval("0 0 * * *", 86400, seconds)


def monitoring_schedule(spec: Spec):
    """The ZenML schedule of the monitoring pipeline: a cron expression (what every schedulable
    orchestrator accepts, Kubernetes' only) from `check_every_seconds`, and the interval it keeps."""
    from zenml.config.schedule import Schedule

    interval = cron_interval(spec.monitoring.retraining.check_every_seconds)
    return Schedule(name=f"keel-monitor-{spec.problem.name}", cron_expression=interval.expression), interval


@dataclass
class ScheduleResult:
    """What `schedule_monitoring` did: `scheduled` on the active orchestrator (`flavor`) for `version`,
    or not (the orchestrator keeps no schedules: run the monitor from cron at `interval`), or `error`."""

    interval: CronInterval
    flavor: str
    scheduled: bool = False
    version: Optional[int] = None
    error: Optional[str] = None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else 1


def schedule_monitoring(spec: Spec) -> ScheduleResult:
    """Where the active orchestrator can schedule (Kubernetes, cloud), register the monitoring pipeline
    of the production version with the spec's interval as a ZenML cron schedule."""
    from zenml.client import Client

    from keel.registry import production_version

    orchestrator = Client().active_stack.orchestrator
    interval = cron_interval(spec.monitoring.retraining.check_every_seconds)
    result = ScheduleResult(interval, orchestrator.flavor)
    if not getattr(orchestrator.config, "is_schedulable", False):
        return result
    result.version = version = production_version(spec.problem.name)
    if version is None:
        result.error = f"keel: '{spec.problem.name}' has no production version to monitor"
        return result
    from pipelines.monitoring import monitoring_pipeline

    schedule, result.interval = monitoring_schedule(spec)
    monitoring_pipeline.with_options(schedule=schedule)(spec=spec, model_version=version)
    result.scheduled = True
    return result

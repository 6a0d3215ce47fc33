"""The `monitoring` section: profiling windows, drift thresholds, the continuous-training policy."""

from __future__ import annotations

from keel.spec.base import StrictModel


class MonitoringSpec(StrictModel):
    """How production is watched and when the model is retrained."""

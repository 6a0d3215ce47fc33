"""Importing keel first switches telemetry off before ZenML, whylogs or BentoML load."""

import keel  # noqa: F401

"""Transitional: moved to keel.lifecycle.pipeline_runs; this name stays until its importers move."""

from keel.lifecycle.pipeline_runs import (Outcome, exception_message, failed_step_message,  # noqa: F401
                                          run_for_version, run_pipeline)

"""A one-step pipeline for the two-writers test: asked to fail, its step first lets another process run
the same pipeline to the end (a second writer whose run starts after this one), then raises."""

import subprocess
import sys
from pathlib import Path

from zenml import pipeline, step

ROOT = Path(__file__).resolve().parents[2]  # not tests.conftest's: importing it in the other writer makes a new store

# ZenML takes its source root from the main module's file, which `python -c` has none of: as run.py's
# (the project root), the way conftest gives xdist workers one.
OTHER_WRITER = ("import __main__; __main__.__file__ = 'run.py'; "
                "from tests.support.two_writers import two_writers_pipeline; "
                "from keel.lifecycle.pipeline_runs import run_pipeline; "
                "outcome = run_pipeline(two_writers_pipeline, fail=False); "
                "print(outcome.error or outcome.run.name); raise SystemExit(outcome.error is not None)")


@step(enable_cache=False)
def judge_step(fail: bool) -> int:
    if not fail:
        return 1
    other = subprocess.run([sys.executable, "-c", OTHER_WRITER], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    if other.returncode != 0:
        raise RuntimeError(f"the other writer failed: {other.stdout[-2000:]} {other.stderr[-2000:]}")
    raise ValueError(f"this run's own failure; the other writer's run {other.stdout.split()[-1]} succeeded")


@pipeline(enable_cache=False)
def two_writers_pipeline(fail: bool) -> None:
    judge_step(fail=fail)

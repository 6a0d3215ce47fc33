"""The `deployment` section: the rollout strategy, its health checks, approval, and where the service
and its prediction log live."""

from __future__ import annotations

from pathlib import PurePath
from typing import List, Literal, Optional

from pydantic import Field, field_validator

from keel.spec.base import StrictModel, is_declared


class HealthSpec(StrictModel):
    """Checked between rollout steps on the live prediction log: challenger against champion."""

    max_error_rate: float = Field(0.01, ge=0.0, le=1.0)
    max_p95_latency_ms: float = Field(200.0, gt=0.0)
    max_p95_latency_ratio: float = Field(3.0, gt=0.0, description="challenger p95 / champion p95")
    max_score_psi: float = Field(0.25, gt=0.0, description="population stability index of the scores")
    min_requests: int = Field(30, ge=1, description="challenger requests per step, before judging")
    min_scores_for_psi: int = Field(100, ge=10, description="fewer scores per arm: the PSI is reported, not judged")


class ApprovalSpec(StrictModel):
    required: bool = True
    auto_approve: bool = False


class DeploymentSpec(StrictModel):
    strategy: Literal["all-at-once", "blue-green", "canary", "ab", "shadow"] = "canary"
    canary_steps: List[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 1.0])
    ab_split: float = Field(0.5, gt=0.0, lt=1.0)
    hold_seconds: float = Field(5.0, ge=0.0, le=86_400)
    probe_requests: int = Field(200, ge=0, le=100_000,
                                description="replayed test rows keel sends per step, so every step has evidence")
    health: HealthSpec = HealthSpec()
    approval: ApprovalSpec = ApprovalSpec()
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    allow_folder_outside_project: bool = Field(
        False, description="let `folder` be an absolute path or lead out of the project (the directory run.py is "
                           "started in) with `..`: deployments, their prediction log and the service's pid file "
                           "are then written outside the project, on purpose")
    folder: str = Field(".keel/deployments", description="where deployment bundles and the prediction log live, "
                                                          "relative to the project (the directory run.py is started "
                                                          "in)")
    prediction_log_url: Optional[str] = Field(
        None, description="SQLAlchemy URL of the prediction log; default: SQLite in the folder (one machine); "
                          "production: PostgreSQL, postgresql://user:password@host:5432/database (keel uses the "
                          "psycopg 3 driver for it: postgresql+psycopg://...)")
    api_key_env: Optional[str] = Field(None, description="name of the environment variable holding the API key")
    api_key_protects_docs_and_metrics: bool = Field(
        True, description="with an API key, /metrics, the index page and the API documents (/docs.json, "
                          "/openapi.json, /schema.json) want it too; false exposes them (probes stay open)")
    salt: str = "keel"
    controller_timeout_seconds: float = Field(
        30.0, gt=0.0, le=86_400, description="a rollout whose controller (deploy, rollback) has not reported for this "
                                             "long is abandoned: the service routes everything to the champion")
    workers: int = Field(1, ge=1, le=64, description="service worker processes, each a full copy of the models; "
                                                        "they share the port, the prediction log and the routing "
                                                        "(an entity reaches the same arm in every worker), and "
                                                        "/metrics adds up their counters")
    fast_path: bool = Field(True, description="score few rows with NumPy from the fitted pipeline's statistics, "
                                              "used only where it reproduces the pipeline's scores exactly")

    @field_validator("canary_steps")
    @classmethod
    def _increasing(cls, steps: List[float]) -> List[float]:
        if not steps or any(not 0 < s <= 1 for s in steps) or sorted(steps) != steps or steps[-1] != 1.0:
            raise ValueError("canary_steps must increase within (0, 1] and end at 1.0")
        return steps

    @field_validator("folder")
    @classmethod
    def _inside_project(cls, folder: str, info) -> str:
        if is_declared(info) and not info.data.get("allow_folder_outside_project") and leaves_project(folder):
            raise ValueError("the deployment folder must be inside the project: expected a path relative to the "
                             "directory run.py is started in (e.g. .keel/deployments), not leading out of it with "
                             "`..`; to write deployments elsewhere on purpose, declare "
                             "deployment.allow_folder_outside_project: true")
        return folder

    @field_validator("prediction_log_url")
    @classmethod
    def _sqlalchemy_url(cls, url: Optional[str]) -> Optional[str]:
        """The form of the URL only (dialect://...): whether the database and its driver are there is
        known only when the log is opened."""
        if url is None:
            return url
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError("not a SQLAlchemy database URL; give e.g. sqlite:////path/to/predictions.db or "
                             "postgresql://user@host/db") from None
        if parsed.drivername == "postgresql":  # SQLAlchemy's default there is psycopg2; keel ships psycopg 3
            return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return url


def leaves_project(folder: str) -> bool:
    """Whether `folder` is absolute or climbs out of the directory it is relative to (`a/../..`). The
    path alone decides, so a spec validates the same wherever it is checked."""
    path = PurePath(folder)
    if path.is_absolute() or path.drive:
        return True
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False

"""The `data.screening` section: features screened before training for leakage (they predict the
target too well, or were recorded after the outcome) and for proxies of a sensitive attribute."""

from __future__ import annotations

from typing import Dict, Optional

from pydantic import Field, model_validator

from keel.spec.base import StrictModel


class ScreeningSpec(StrictModel):
    leakage_auc: Optional[float] = Field(
        0.95, gt=0.5, le=1.0, description="a feature whose out-of-fold AUC for the target alone reaches this is "
                                          "a leakage suspect (none: not screened)")
    proxy_auc: Optional[float] = Field(
        0.8, gt=0.5, le=1.0, description="features that, alone or together, tell a sensitive group from the "
                                         "others with an out-of-fold AUC reaching this are proxies (none: not screened)")
    blocking: bool = Field(False, description="true: a leakage suspect or a proxy stops training (the readiness "
                                              "step fails naming them); false: they are reported only")
    outcome_time_column: Optional[str] = Field(
        None, description="when each row's outcome became known; with `recorded_at`, features recorded after "
                          "it are leakage suspects")
    recorded_at: Dict[str, str] = Field(
        default_factory=dict, description="feature -> the column holding when that feature's value was recorded")
    max_rows: int = Field(10_000, ge=100, description="screening runs on a seeded sample of at most this many rows")
    seed: int = 0

    @model_validator(mode="after")
    def _times_declared_together(self) -> "ScreeningSpec":
        if self.recorded_at and not self.outcome_time_column:
            raise ValueError("screening.recorded_at needs screening.outcome_time_column: the time each row's "
                             "outcome became known, to compare each feature's recording time with")
        return self

    @property
    def time_columns(self) -> list:
        """Columns that carry times for the screening only (kept by validation, never model inputs)."""
        return list(dict.fromkeys([c for c in [self.outcome_time_column, *self.recorded_at.values()] if c]))

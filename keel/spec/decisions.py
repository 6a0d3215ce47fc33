"""The `decisions` section: what a person told of an unfavourable decision is given as its principal
reasons, and which scores are referred to a person instead of decided by the model."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from pydantic import Field, field_validator

from keel.spec.base import StrictModel


class DecisionsSpec(StrictModel):
    reasons: Dict[str, str] = Field(
        default_factory=dict, description="feature -> the statement given when it is a principal reason, e.g. "
                                          "debt_to_income: Debt-to-income ratio too high (a feature without one is "
                                          "named by its column)")
    top_reasons: int = Field(4, ge=1, le=10, description="how many principal reasons an unfavourable decision gives")
    refer_band: Optional[Tuple[float, float]] = Field(
        None, description="[low, high): a score in it gets the decision `refer` (a person decides); none: the model "
                          "decides every case")

    @field_validator("refer_band")
    @classmethod
    def _a_band(cls, band: Optional[Tuple[float, float]]) -> Optional[Tuple[float, float]]:
        if band is not None and not 0.0 <= band[0] < band[1] <= 1.0:
            raise ValueError(f"refer_band {list(band)} must be [low, high) with 0 <= low < high <= 1")
        return band

    @field_validator("reasons")
    @classmethod
    def _statements_given(cls, reasons: Dict[str, str]) -> Dict[str, str]:
        empty = sorted(name for name, text in reasons.items() if not text.strip())
        if empty:
            raise ValueError(f"reasons for {empty} are empty: give the statement a person reads")
        return reasons

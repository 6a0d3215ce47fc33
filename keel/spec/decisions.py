"""The `decisions` section: what a person told of an unfavourable decision is given as its principal
reasons, and which scores are referred to a person instead of decided by the model."""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

from pydantic import Field, field_validator

from keel.spec.base import StrictModel


class SidedStatement(StrictModel):
    """A numeric feature's statement for each side of its typical value: a low amount can push a score
    toward decline as a high one can, and "Amount requested too high" would then be untrue."""

    higher: str = Field(description="given when the person's value is above the median of the version's "
                                    "background rows, e.g. Debt-to-income ratio too high")
    lower: str = Field(description="given when it is below that median, e.g. Debt-to-income ratio lower than typical")

    def for_side(self, side: Optional[str]) -> Optional[str]:
        """The statement of `side` ("higher"/"lower"); None for a value on the median or missing."""
        return {"higher": self.higher, "lower": self.lower}.get(side)


Statement = Union[str, SidedStatement]


class DecisionsSpec(StrictModel):
    reasons: Dict[str, Statement] = Field(
        default_factory=dict, description="feature -> the statement given when it is a principal reason: one text "
                                          "whatever the value (num_late_payments: Late payments in the last two "
                                          "years), or for a numeric feature {higher: ..., lower: ...}, chosen by "
                                          "the person's value against the median of the version's background rows "
                                          "(a value on the median or missing, and a feature without a statement, is "
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
    def _statements_given(cls, reasons: Dict[str, Statement]) -> Dict[str, Statement]:
        texts = {name: [text] if isinstance(text, str) else [text.higher, text.lower] for name, text in reasons.items()}
        empty = sorted(name for name, given in texts.items() if any(not text.strip() for text in given))
        if empty:
            raise ValueError(f"reasons for {empty} are empty: give the statement a person reads")
        return reasons

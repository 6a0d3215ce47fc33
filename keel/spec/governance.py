"""The `governance` section: audit trail and high-stakes handling."""

from __future__ import annotations

from pydantic import Field

from keel.spec.base import StrictModel


class GovernanceSpec(StrictModel):
    """What regulators will ask for, decided up front."""

    high_stakes: bool = Field(False, description="every prediction links to its model version and can be explained on request")

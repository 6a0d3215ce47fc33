"""The `governance` section: high-stakes handling and where the technical documentation goes."""

from __future__ import annotations

from pydantic import Field

from keel.spec.base import StrictModel


class GovernanceSpec(StrictModel):
    """What regulators will ask for, decided up front."""

    high_stakes: bool = Field(False, description="every prediction links to its model version and can be explained "
                                                 "on request; explanations come with the full lineage")
    explanation_top_features: int = Field(10, ge=1, le=500, description="contributions listed by `run.py explain`")
    explanation_background_rows: int = Field(200, ge=10, le=100_000,
                                             description="validation rows as the SHAP reference of linear models")
    documentation_folder: str = Field("reports", description="`run.py docs` writes <folder>/<model>/v<N>/")

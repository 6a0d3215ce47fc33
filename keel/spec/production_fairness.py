"""The `monitoring.fairness` section: fairness watched per window while the model runs."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from keel.spec.base import StrictModel
from keel.spec.reading import CsvReading


class GroupsFile(CsvReading):
    """Sensitive attributes kept apart from the features (e.g. by another team), one row per entity."""

    kind: Literal["csv"]
    id_column: str = Field("entity_id", description="the entity id the predictions were made for")


class ProductionFairnessSpec(StrictModel):
    groups_from: Literal["none", "request", "file"] = Field(
        "none", description="where each prediction's sensitive attributes come from: `request` (sent beside the "
                            "features, logged, never given to the model), `file` (`groups_file`, keyed by id), "
                            "`none` (fairness is not watched in production)")
    groups_file: Optional[GroupsFile] = None
    min_parity_ratio: Optional[float] = Field(
        None, gt=0.0, le=1.0, description="alert when a window's favourable-decision parity ratio of an attribute "
                                          "falls below this (none: reported, not judged)")
    max_tpr_gap: Optional[float] = Field(
        None, gt=0.0, le=1.0, description="alert when the true-positive-rate gap between judged groups exceeds "
                                          "this (needs labels; none: reported, not judged)")
    retrain: bool = Field(False, description="a breach also starts retraining (as a drift trigger does)")

    @model_validator(mode="after")
    def _file_when_from_file(self) -> "ProductionFairnessSpec":
        if (self.groups_from == "file") != (self.groups_file is not None):
            raise ValueError("monitoring.fairness.groups_file is required with groups_from: file, and only then")
        return self

    @property
    def watched(self) -> bool:
        return self.groups_from != "none"


"""The `batch` section: how `run.py score` reads, scores and judges a batch, and the portfolio the
main job scores in batch. Nothing here is specific to a domain."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from keel.spec.base import StrictModel


class BatchSpec(StrictModel):
    """Batch scoring (`run.py score`): rows are read and scored in chunks of `chunk_rows`, so memory
    does not grow with the input; a row that breaks the payload contract goes to the rejects file."""

    chunk_rows: int = Field(100_000, ge=1, le=10_000_000,
                            description="rows read and scored at a time (peak memory grows with it, not with the input)")
    max_reject_fraction: float = Field(
        0.0, ge=0.0, le=1.0,
        description="rejected rows over rows read above which `score` exits 3 (the good rows and the rejects are "
                    "still written, and the batch record says it is over the limit); 0: any rejected row")
    output_format: Literal["parquet", "csv"] = Field("parquet", description="of the scored output (`--format` overrides)")
    portfolio_rows: int = Field(5_000, ge=1, le=50_000_000,
                                description="rows of the portfolio the main job draws from the spec's generator "
                                            "and scores in batch (generator specs only)")

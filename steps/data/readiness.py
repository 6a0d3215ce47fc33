from typing import Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.data.readiness import ALL_ROWS, assess_readiness, readiness_html, readiness_summary
from keel.data.screening import screening_blocks
from keel.spec.models import Spec


@step
def readiness_step(validated_data: pd.DataFrame, baseline_summary: dict, spec: Spec,
                   rows_judged: str = ALL_ROWS) -> Tuple[
    Annotated[dict, Artifact.READINESS_REPORT],
    Annotated[HTMLString, Artifact.READINESS_REPORT_HTML],
]:
    """Rows, label balance, missingness, sensitive-group sizes, whether the baseline's validation score
    makes the spec's success criteria plausible, and leakage/proxy screening. Fails (no model version is
    registered) when the spec makes screening blocking and a suspect is found. `rows_judged`: which rows
    `validated_data` is, stated in the report."""
    report = assess_readiness(validated_data, spec, baseline_summary["validation_metrics"], rows_judged)
    print(readiness_summary(report))
    blocked = screening_blocks(report["screening"])
    if blocked:
        raise ScreeningBlocked(blocked)
    return report, HTMLString(readiness_html(report))


class ScreeningBlocked(RuntimeError):
    """Blocking screening found a leakage suspect or a proxy: training stops before registration."""

from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.evaluation.mitigation import mitigate, mitigation_html
from keel.spec.models import Spec


@step
def mitigation_step(model: Any, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame,
                    decision_threshold: dict, promotion_decision: dict, champion_comparison: dict,
                    robustness_report: dict, spec: Spec) -> Tuple[
    Annotated[dict, "mitigation_report"],
    Annotated[HTMLString, "mitigation_report_html"],
]:
    """Fairlearn mitigation as the spec asks, re-judged by the same gates, with the trade-off shown."""
    before = {"threshold": decision_threshold, "decision": promotion_decision,
              "comparison": champion_comparison, "robustness": robustness_report}
    report = mitigate(model, train, validation, test, spec, before)
    return report, HTMLString(mitigation_html(report))

from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.mitigation import mitigate, mitigation_html
from keel.spec.models import Spec


@step
def mitigation_step(model: Any, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame,
                    decision_threshold: dict, promotion_decision: dict, champion_comparison: dict,
                    robustness_report: dict, spec: Spec) -> Tuple[
    Annotated[dict, Artifact.MITIGATION_REPORT],
    Annotated[HTMLString, Artifact.MITIGATION_REPORT_HTML],
]:
    """The spec's mitigation analysed: fitted, re-judged by the same gates, every gate metric before
    and after. A mitigation that cannot be fitted is reported as not applied (never a pass).
    Ship it as its own version with `run.py mitigate`."""
    before = {"threshold": decision_threshold, "decision": promotion_decision,
              "comparison": champion_comparison, "robustness": robustness_report}
    report = mitigate(model, train, validation, test, spec, before)
    return report, HTMLString(mitigation_html(report))

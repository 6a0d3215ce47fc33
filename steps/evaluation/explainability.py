from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.data.groups import sensitive_groups
from keel.evaluation.explainability import evaluate_explainability, explainability_html
from keel.spec.models import Spec


@step
def explainability_step(model: Any, test: pd.DataFrame, validation: pd.DataFrame, spec: Spec) -> Tuple[
    Annotated[dict, Artifact.EXPLAINABILITY_REPORT],
    Annotated[HTMLString, Artifact.EXPLAINABILITY_REPORT_HTML],
]:
    """SHAP global importance, mean |SHAP| per sensitive group and local explanations (spec's sample)."""
    report = evaluate_explainability(model, test, sensitive_groups(test, spec.data), spec.data,
                                     spec.evaluation.explainability, validation)
    return report, HTMLString(explainability_html(report))

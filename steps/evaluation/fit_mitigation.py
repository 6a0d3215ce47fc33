from typing import Any, Tuple

import pandas as pd
from typing_extensions import Annotated
from zenml import step
from zenml.types import HTMLString

from keel.artifacts import Artifact
from keel.evaluation.mitigation import fit_mitigated_version, mitigation_html
from keel.registry import get_model_version_metadata
from keel.spec.models import Spec


@step
def fit_mitigation_step(model: Any, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame,
                        spec: Spec, model_version: int) -> Tuple[
    Annotated[Any, Artifact.MODEL],
    Annotated[dict, Artifact.MITIGATION_REPORT],
    Annotated[HTMLString, Artifact.MITIGATION_REPORT_HTML],
]:
    """Fit the spec's mitigation on `model_version`'s model and splits; every gate metric before and
    after on its test split. Fails (nothing to register) when the mitigation cannot be fitted or the
    version is itself mitigated. Out: the mitigated model, named `model` as every version's is."""
    metadata = get_model_version_metadata(spec.problem.name, model_version)
    mitigated, report = fit_mitigated_version(model, train, validation, test, spec, model_version, metadata)
    return mitigated, report, HTMLString(mitigation_html(report))

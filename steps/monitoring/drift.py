import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.monitoring.monitor import assess_window, production_report
from keel.monitoring.profiles import Profile
from keel.spec.models import Spec


@step(enable_cache=False)
def drift_step(window_profile: Profile, window: dict, reference_data_profile: Profile,
               reference_prediction_profile: Profile, reference_summary: dict,
               labelled_predictions: pd.DataFrame, label_report: dict,
               spec: Spec) -> Annotated[dict, Artifact.DRIFT_STATUS]:
    """The four kinds of drift for the window against the version's references, and what its decisions
    did to people: fairness per group, label coverage, referrals (machine-readable)."""
    status = assess_window(window_profile, window, reference_data_profile, reference_prediction_profile,
                           reference_summary, labelled_predictions, label_report, spec)
    return {**status, "production": production_report(spec, window)}

"""A model loaded from the registry carries the features its screening flagged as proxies, so neither
the service nor batch scoring gives them as principal reasons (issue 19)."""

import numpy as np
import pandas as pd

MODEL = "proxy_marked_model"


def test_a_loaded_version_carries_its_screened_proxies():
    from sklearn.linear_model import LogisticRegression
    from zenml import save_artifact

    from keel import registration as keys
    from keel.artifacts import Artifact
    from keel.registry import load_version_model, register_model_version

    frame = pd.DataFrame({"postcode_band": [0.0, 1.0, 2.0, 3.0], "tenure": [1.0, 0.0, 3.0, 2.0]})
    model = LogisticRegression().fit(frame, np.array([0, 1, 0, 1]))
    artifact = save_artifact(model, name=Artifact.MODEL)
    screening = {"rows_screened": 4, "leakage_auc": 0.95, "proxy_auc": 0.8, "leakage_suspects": [], "not_judged": [],
                 "blocking": False,
                 "proxies": ["postcode_band -> ethnicity: alone it tells a group from the rest with AUC 0.910 "
                             "(threshold 0.8)", "the model's features together -> ethnicity: AUC 0.930 (threshold 0.8)"]}
    version = register_model_version(MODEL, "proxies", {"model_family": "logistic_regression",
                                                        keys.SCREENING: screening}, [artifact.id], None)
    loaded = load_version_model(MODEL, version)
    assert loaded.reason_exclusions_ == ["postcode_band"]
    unscreened = register_model_version(MODEL, "no screening", {"model_family": "logistic_regression"},
                                        [save_artifact(model, name=Artifact.MODEL).id], None)
    assert load_version_model(MODEL, unscreened).reason_exclusions_ == []

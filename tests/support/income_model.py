"""A fitted model's interface (what batch scoring calls), without training one."""

import numpy as np


class IncomeModel:
    """The probability of the positive class falls with income."""

    def __init__(self, features):
        self.feature_names_in_ = np.array(features)
        self.reason_exclusions_ = []  # as keel.registry marks a loaded version: no proxies to withhold

    def predict_proba(self, frame):
        p = 1 / (1 + np.exp((frame["income"].to_numpy(dtype=float) - 40_000) / 15_000))
        return np.c_[1 - p, p]

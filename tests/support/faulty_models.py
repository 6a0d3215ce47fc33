"""Models that misbehave on purpose, importable by a serving process started from the project root."""

import time


class Raising:
    def __init__(self, columns):
        self.feature_names_in_ = columns

    def predict_proba(self, frame):
        raise RuntimeError("injected fault: this challenger always fails")


class Slow:
    def __init__(self, model, seconds=0.3):
        self.model, self.seconds = model, seconds
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, frame):
        time.sleep(self.seconds)
        return self.model.predict_proba(frame)

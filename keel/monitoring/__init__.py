"""Monitoring and continuous training: profiles (whylogs behind `profiles.py`), production windows from
the prediction log (`windows.py`), delayed labels (`labels.py`), the four kinds of drift (`drift.py`),
the retraining policy (`policy.py`), alerts, the drift report, reference profiles and the main job's
simulated production. Plain functions; no ZenML here."""

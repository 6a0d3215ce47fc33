"""Lifecycle orchestration: sequences of pipelines and records, returning typed results that the
CLI prints. ZenML is imported inside the functions."""

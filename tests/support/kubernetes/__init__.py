"""Kubernetes without a cluster: a recording stand-in for the API server and an offline schema check."""

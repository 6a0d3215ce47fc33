"""Governance: a tamper-evident audit trail, lineage, reproduction, data versions, technical
documentation and explanations of logged predictions. Pure logic; ZenML only inside functions."""

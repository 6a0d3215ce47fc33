"""How a recorded value reads in a document (model card, Annex IV): numbers to 4 significant
digits, nothing as '-', mappings and lists flattened onto one line."""

from __future__ import annotations


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) or "-"
    return "-" if value is None or value == "" else str(value)

"""How a recorded value reads in a document (model card, Annex IV): numbers to 4 significant
digits, nothing as '-', mappings and lists flattened onto one line; allowed values in a message."""

from __future__ import annotations

from typing import Sequence

LISTED = 12  # values named in a message before it says how many there are in all


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) or "-"
    return "-" if value is None or value == "" else str(value)


def listed(values: Sequence) -> str:
    """Values quoted and comma-separated, e.g. for the categories a column allows; past LISTED, the first
    ones and how many in all (a feature of 500 stores is not 500 names in every error)."""
    quoted = [repr(value) for value in values[:LISTED]]
    return ", ".join(quoted) + (f", ... ({len(values)} in all)" if len(values) > LISTED else "")

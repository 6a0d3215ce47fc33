"""Sensitive groups: the protected attribute of each row as a group label (numbers are binned)."""

from __future__ import annotations

import pandas as pd

from keel.spec.data import DataSpec


def sensitive_groups(frame: pd.DataFrame, data: DataSpec) -> pd.DataFrame:
    """One column per sensitive attribute, holding each row's group label as a string."""
    groups = {}
    for name, attribute in data.sensitive_attributes.items():
        if attribute.bins is not None:
            groups[name] = binned_groups(frame[name], attribute.bins)
        else:
            groups[name] = frame[name].astype("string")
    return pd.DataFrame(groups, index=frame.index).fillna("(missing)")


def binned_groups(values: pd.Series, edges) -> pd.Series:
    """Each value's bin `[low, high)` as "low-high"; values outside the bins are groups of their own
    ("<first", ">=last"), not missing: a spec's bins need not cover every value the data holds."""
    labels = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]
    binned = pd.cut(values, bins=edges, labels=labels, right=False).astype("string")
    numbers = pd.to_numeric(values, errors="coerce")
    return binned.mask(numbers < edges[0], f"<{edges[0]:g}").mask(numbers >= edges[-1], f">={edges[-1]:g}")

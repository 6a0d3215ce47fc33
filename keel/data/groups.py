"""Sensitive groups: the protected attribute of each row as a group label (numbers are binned)."""

from __future__ import annotations

import pandas as pd

from keel.spec.data import DataSpec


def sensitive_groups(frame: pd.DataFrame, data: DataSpec) -> pd.DataFrame:
    """One column per sensitive attribute, holding each row's group label as a string."""
    groups = {}
    for name, attribute in data.sensitive_attributes.items():
        if attribute.bins is not None:
            edges = attribute.bins
            labels = [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]
            groups[name] = pd.cut(frame[name], bins=edges, labels=labels, right=False).astype("string")
        else:
            groups[name] = frame[name].astype("string")
    return pd.DataFrame(groups, index=frame.index).fillna("(missing)")

"""Split rows into train, validation and test; no row lands in two parts."""

from __future__ import annotations

from typing import Tuple

import pandas as pd

from keel.spec.data import SplitSpec


def split_frame(frame: pd.DataFrame, split: SplitSpec, target: str,
                time_column: str | None = None) -> Tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random (optionally stratified by target) or time-ordered: train is oldest, test newest."""
    holdout = split.validation_fraction + split.test_fraction
    if len(frame) < 10:
        raise ValueError(f"{len(frame)} rows are too few to split into train, validation and test")
    if split.strategy == "time":
        ordered = frame.sort_values(time_column, kind="stable")
        n = len(ordered)
        train_end = int(round(n * (1 - holdout)))
        validation_end = int(round(n * (1 - split.test_fraction)))
        parts = ordered.iloc[:train_end], ordered.iloc[train_end:validation_end], ordered.iloc[validation_end:]
    else:
        from sklearn.model_selection import train_test_split

        stratify = frame[target] if split.stratify else None
        train, rest = train_test_split(frame, test_size=holdout, random_state=split.seed, stratify=stratify)
        stratify = rest[target] if split.stratify else None
        validation, test = train_test_split(rest, test_size=split.test_fraction / holdout,
                                            random_state=split.seed, stratify=stratify)
        parts = train, validation, test
    return tuple(part.reset_index(drop=True) for part in parts)

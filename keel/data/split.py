"""Split rows into train, validation and test; no row lands in two parts."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pandas as pd

from keel.spec.data import SplitSpec


class SplitError(ValueError):
    """The rows cannot be split into parts that can each be trained or judged on."""


def split_frame(frame: pd.DataFrame, split: SplitSpec, target: str,
                time_column: str | None = None) -> Tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random (optionally stratified by target) or time-ordered: train is oldest, test newest."""
    holdout = split.validation_fraction + split.test_fraction
    if len(frame) < 10:
        raise SplitError(f"{len(frame)} rows are too few to split into train, validation and test")
    if split.strategy == "time":
        ordered = frame.sort_values(time_column, kind="stable")
        times = ordered[time_column].to_numpy()
        n = len(ordered)
        train_end = _first_of_its_time(times, int(round(n * (1 - holdout))))
        validation_end = _first_of_its_time(times, max(train_end, int(round(n * (1 - split.test_fraction)))))
        parts = ordered.iloc[:train_end], ordered.iloc[train_end:validation_end], ordered.iloc[validation_end:]
        _no_empty_part(dict(zip(("train", "validation", "test"), parts)), times, time_column)
    else:
        from sklearn.model_selection import train_test_split

        try:
            stratify = frame[target] if split.stratify else None
            train, rest = train_test_split(frame, test_size=holdout, random_state=split.seed, stratify=stratify)
            stratify = rest[target] if split.stratify else None
            validation, test = train_test_split(rest, test_size=split.test_fraction / holdout,
                                                random_state=split.seed, stratify=stratify)
        except ValueError as error:  # scikit-learn's: a class too rare to stratify over the parts
            counts = {str(label): int(n) for label, n in frame[target].value_counts().items()}
            raise SplitError(f"the rows cannot be split with each part stratified by '{target}': rows per class "
                             f"{counts}; train, validation and test each need rows of both classes, so the "
                             f"rarer class needs several rows in all ({error})") from None
        parts = train, validation, test
    _each_part_has_both_classes(dict(zip(("train", "validation", "test"), parts)), split, target)
    return tuple(part.reset_index(drop=True) for part in parts)


def _first_of_its_time(times, position: int) -> int:
    """`position` moved back to the first row of the time found there: a time split cuts between times,
    never within one (rows on a cut time go to the later part, as the dask engine cuts), so that no row
    is judged against rows of its own time (one day's rows in both train and test)."""
    if 0 < position < len(times):
        return int(times.searchsorted(times[position], side="left"))
    return position


def _no_empty_part(parts: Dict[str, pd.DataFrame], times, time_column: str) -> None:
    empty = [name for name, part in parts.items() if part.empty]
    if empty:
        raise SplitError(f"split.strategy time: the {' and '.join(empty)} split(s) would be empty: the parts are cut "
                         f"between times, never within one, and {time_column!r} holds {len(set(times.tolist()))} "
                         f"distinct time(s) in {len(times)} rows (e.g. {times[-1]} for the last "
                         f"{int((times == times[-1]).sum())} rows). Use split.strategy: random, or times that tell "
                         "the rows apart")


def _each_part_has_both_classes(parts: Dict[str, pd.DataFrame], split: SplitSpec, target: str) -> None:
    """A part holding one class cannot be trained on (train) or judged on (validation: thresholds and
    readiness; test: every metric): said here, in words, before anything is fitted."""
    for name, part in parts.items():
        classes = part[target].dropna().unique()
        if len(classes) < 2:
            counts = ", ".join(f"{n}: {dict(p[target].value_counts())}" for n, p in parts.items())
            hint = ("the rows are ordered by time, so one class may fall all before or after the cut-off"
                    if split.strategy == "time" else
                    "stratify by the target (split.stratify: true)" if not split.stratify else
                    "the data holds too few rows of the rarer class for three parts")
            raise SplitError(f"the {name} split ({len(part)} rows) holds only one class of '{target}' "
                             f"({list(classes) or 'none'}); every part needs both. Rows of each class per part: "
                             f"{counts}. Hint: {hint}")


def split_periods(parts: Dict[str, pd.DataFrame], time_column: str) -> Dict[str, List[Optional[str]]]:
    """Each split's first and last time (ISO 8601; None for a split without a time): the period a model
    was trained, selected and tested on, which a time split orders and a random split mixes."""
    periods: Dict[str, List[Optional[str]]] = {}
    for name, part in parts.items():
        times = pd.to_datetime(part[time_column], utc=True, errors="coerce").dropna()
        periods[name] = [times.min().isoformat(), times.max().isoformat()] if len(times) else [None, None]
    return periods


def periods_text(periods: Optional[Dict[str, List[Optional[str]]]]) -> Optional[str]:
    """"train 2025-01-01 to 2025-08-08; validation ...; test ..." (None without recorded periods)."""
    if not periods:
        return None
    return "; ".join(f"{name} {first or '-'} to {last or '-'}" for name, (first, last) in periods.items())

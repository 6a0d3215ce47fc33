"""keel's one interface to whylogs: profile a frame, merge profiles, (de)serialize them in whylogs'
binary format, summarise columns and compare two profiles column by column.

Nothing else in keel imports whylogs, so replacing it (it is no longer actively maintained) means
rewriting this module only. whylogs is imported inside the functions: importing keel stays fast.

Speed: whylogs checks every float for infinity with a per-value Python call; keel hands it the
finite values of a float column as a "homogeneous" column (no per-value checks) and only the
missing or infinite values through the standard path, then merges the two profiles: the same
counts, types and sketches as `why.log` on the whole column, about 10x faster. Text is profiled as
pandas categories; a category column with missing values is split the same way (whylogs cannot
mask a category column holding NaN). Large frames are cut into chunks profiled in parallel
processes and merged.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from keel.clock import as_utc
from keel.spec.data import LARGEST_MAGNITUDE


@dataclass
class Profile:
    """A mergeable statistical profile of a frame (a whylogs `DatasetProfileView` inside)."""

    view: object

    @property
    def columns(self) -> List[str]:
        return sorted(self.view.get_columns())

    def rows(self) -> int:
        """Rows profiled (the largest column count; 0 for an empty profile)."""
        counts = [column_summary(self, name)["count"] for name in self.columns]
        return int(max(counts, default=0))


def _aware(moment: Optional[datetime]) -> Optional[datetime]:
    """whylogs requires timezone-aware timestamps; a naive one is taken as UTC."""
    return None if moment is None else as_utc(moment)


def _cheap_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Strings as pandas categories (whylogs handles them ~5x faster than `object`) — except a
    column with a single category: whylogs' type masks over it come back as a Categorical, which
    it cannot combine (TypeError), so such a column stays plain text."""
    changed = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
            categories = column.astype("category")
            if len(categories.cat.categories) > 1:
                changed[name] = categories
        elif isinstance(column.dtype, pd.CategoricalDtype) and len(column.cat.categories) < 2:
            changed[name] = column.astype(object)
    return frame.assign(**changed) if changed else frame  # already cheap: no copy


def profile_bytes(frame: pd.DataFrame, covers: Optional[datetime] = None) -> bytes:
    """Profile one chunk in this process; returns whylogs' binary format (crosses processes).
    `covers`: the start of the time the rows come from (the profile's dataset timestamp; whylogs
    would stamp it with the time of profiling, and merging keeps the earliest stamp)."""
    from whylogs.core import DatasetProfile, DatasetSchema
    from whylogs.core.preprocessing import ColumnProperties

    frame = _cheap_dtypes(frame)
    floats = [n for n in frame.columns if pd.api.types.is_float_dtype(frame[n].dtype)]
    categories_with_nulls = [n for n in frame.columns
                             if isinstance(frame[n].dtype, pd.CategoricalDtype) and frame[n].hasnans]
    others = [n for n in frame.columns if n not in floats and n not in categories_with_nulls]
    covers = _aware(covers)
    standard = DatasetProfile(DatasetSchema(), dataset_timestamp=covers)
    if others:
        standard.track(pandas=frame[others])
    views = [standard.view()]
    for name in categories_with_nulls:
        views.extend(_category_with_nulls_views(frame[name], covers))
    if floats:
        fast = DatasetProfile(DatasetSchema(types={n: (float, ColumnProperties.homogeneous) for n in floats}),
                              dataset_timestamp=covers)
        for name in floats:
            values = frame[name].to_numpy(dtype=float)
            # Beyond ±LARGEST_MAGNITUDE a square overflows when profiles merge (OverflowError): counted as
            # infinities. keel refuses such inputs now; a prediction log written before may hold them.
            huge = np.abs(values) > LARGEST_MAGNITUDE
            if huge.any():
                values = np.where(huge & np.isfinite(values), np.copysign(np.inf, values), values)
            finite = np.isfinite(values)
            if finite.any():
                fast.track(pandas=pd.DataFrame({name: values[finite]}))
            if not finite.all():  # nulls and infinities counted by whylogs' own path
                standard_rest = DatasetProfile(DatasetSchema(), dataset_timestamp=covers)
                standard_rest.track(pandas=pd.DataFrame({name: values[~finite]}))
                views.append(standard_rest.view())
        views.append(fast.view())
    merged = views[0]
    for view in views[1:]:
        merged = merged.merge(view)
    return merged.serialize()


def _category_with_nulls_views(column: pd.Series, covers: Optional[datetime]) -> list:
    """Profiles of one category column holding missing values, to be merged: its present values as
    categories, its missing ones as None objects. whylogs maps a category column value by value
    through its categories, NaN included, and cannot mask with the result (ValueError "Cannot mask
    with non-boolean array containing NA / NaN values"); split, each part is what whylogs handles,
    and the merge has the counts and frequencies `why.log` gives on the column as text."""
    from whylogs.core import DatasetProfile, DatasetSchema

    present = column.notna().to_numpy()
    views = []
    if present.any():
        values = DatasetProfile(DatasetSchema(), dataset_timestamp=covers)
        values.track(pandas=pd.DataFrame({column.name: column[present]}))
        views.append(values.view())
    missing = DatasetProfile(DatasetSchema(), dataset_timestamp=covers)
    missing.track(pandas=pd.DataFrame({column.name: pd.Series([None] * int((~present).sum()), dtype=object)}))
    views.append(missing.view())
    return views


def profile_frame(frame: pd.DataFrame, workers: int = 1, chunk_rows: int = 250_000,
                  parallel_from_rows: int = 200_000) -> Profile:
    """Profile every column of `frame`; big frames in `chunk_rows` chunks on `workers` processes."""
    return profile_frames([frame], workers, chunk_rows, parallel_from_rows)[0]


def profile_frames(frames: List[pd.DataFrame], workers: int = 1, chunk_rows: int = 250_000,
                   parallel_from_rows: int = 200_000) -> List[Profile]:
    """One profile per frame. With `workers` > 1 and at least `parallel_from_rows` rows in all, every
    frame is cut into chunks of at most `chunk_rows`, all chunks are profiled on a process pool,
    and each frame's chunk profiles are merged."""
    total = sum(len(frame) for frame in frames)
    parallel = workers > 1 and total >= parallel_from_rows
    size = max(1, min(chunk_rows, -(-total // workers))) if parallel else max(total, 1)  # a chunk per worker at least
    with ProfilePool(workers if parallel else 1) as pool:
        futures = [[pool.submit(frame.iloc[start:start + size]) for start in range(0, max(len(frame), 1), size)]
                   for frame in frames]
        return [merge_profiles(f.result() for f in parts) for parts in futures]


class ProfilePool:
    """Profiles frames as they are submitted: on `workers` forked processes, or in this process
    (workers=1). `submit` returns a future of the Profile."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def __enter__(self) -> "ProfilePool":
        if self.workers > 1:
            import gc
            import multiprocessing

            import whylogs.core  # noqa: F401  (imported once, here, before the children are forked)

            # fork: the children inherit the imported whylogs (a forkserver or spawned child pays ~4 s
            # of imports, more than profiling 1M rows gains). They only profile frames: no ZenML, no
            # store, and logging re-creates its locks after a fork. gc.freeze: the children's
            # collector leaves the inherited objects alone (no copy-on-write of the whole heap).
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            gc.freeze()
            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(method))
        return self

    def submit(self, frame: pd.DataFrame, covers: Optional[datetime] = None) -> "PendingProfile":
        """`covers`: the start of the period the rows come from (e.g. their hour), as the profile's
        dataset timestamp."""
        return PendingProfile(self.call(profile_bytes, _cheap_dtypes(frame), covers))  # categories pickle cheaper

    def call(self, function, *args) -> Future:
        """Run any picklable `function(*args)` on the pool (or here, with one worker)."""
        if self.pool is not None:
            return self.pool.submit(function, *args)
        done: Future = Future()
        done.set_result(function(*args))
        return done

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            import gc

            self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
            gc.unfreeze()


class PendingProfile:
    """A profile being made; `result()` waits for it (and reads whylogs' bytes in this process)."""

    def __init__(self, blob: Future):
        self._blob = blob

    def result(self) -> Profile:
        return deserialize(self._blob.result())


def empty_profile() -> Profile:
    from whylogs.core import DatasetProfile

    return Profile(DatasetProfile().view())


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """One profile of all the rows the given profiles saw (no raw rows needed)."""
    merged: Optional[Profile] = None
    for profile in profiles:
        merged = profile if merged is None else Profile(merged.view.merge(profile.view))
    return merged if merged is not None else empty_profile()


def serialize(profile: Profile) -> bytes:
    """whylogs' binary (protobuf) format, readable by any whylogs tool."""
    return profile.view.serialize()


def deserialize(blob: bytes) -> Profile:
    import logging

    from whylogs.core import DatasetProfileView

    # whylogs logs every message it reads at INFO ("Attempting to read profile file as delimited")
    logging.getLogger("whylogs").setLevel(logging.WARNING)

    return Profile(DatasetProfileView.deserialize(blob))


def _metric(column, name: str):
    return column.get_metric(name) if column is not None else None


def column_summary(profile: Profile, name: str) -> dict:
    """Count, nulls, mean, quantiles (numbers) and category frequencies (strings) of one column."""
    column = profile.view.get_column(name)
    counts = _metric(column, "counts")
    count = int(counts.n.value) if counts is not None else 0
    nulls = int(counts.null.value) if counts is not None else 0
    summary = {"count": count, "nulls": nulls, "null_fraction": (nulls / count) if count else None,
               "kind": "missing", "mean": None, "quantiles": None, "frequencies": None}
    distribution = _metric(column, "distribution")
    types = _metric(column, "types")
    numeric = types is not None and (types.integral.value + types.fractional.value) > 0
    strings = types is not None and types.string.value > 0
    if numeric and distribution is not None and not distribution.kll.value.is_empty():
        sketch = distribution.kll.value
        summary.update(kind="numeric", mean=float(distribution.mean.value),
                       quantiles={q: float(v) for q, v in zip((0.01, 0.25, 0.5, 0.75, 0.99),
                                                                sketch.get_quantiles([0.01, 0.25, 0.5, 0.75, 0.99]))})
    elif strings:
        summary.update(kind="categorical", frequencies=_frequencies(column))
    return summary


def _frequencies(column) -> Dict[str, int]:
    items = _metric(column, "frequent_items")
    if items is None:
        return {}
    return {str(item.value): int(item.est) for item in items.to_summary_dict().get("frequent_strings", [])}


def _category_distance(target: Dict[str, int], reference: Dict[str, int]) -> float:
    """Total variation distance between two category distributions (0 = same, 1 = disjoint)."""
    t_total, r_total = sum(target.values()), sum(reference.values())
    if not t_total or not r_total:
        return float("nan")
    keys = set(target) | set(reference)
    return 0.5 * sum(abs(target.get(k, 0) / t_total - reference.get(k, 0) / r_total) for k in keys)


def compare_columns(target: Profile, reference: Profile, columns: Iterable[str]) -> Dict[str, dict]:
    """Per column: the test applied (whylogs' KS on numbers' sketches; keel's two-sample chi-square on
    categories' counts, keel.monitoring.category_test), its p-value and statistic, the effect size keel
    judges with (KS distance or total variation distance), categories the reference never saw, and why a
    column could not be compared."""
    from whylogs.viz.drift.column_drift_algorithms import KS

    from keel.monitoring.category_test import category_test

    results: Dict[str, dict] = {}
    target_columns = target.view.get_columns()
    reference_columns = reference.view.get_columns()
    for name in columns:
        t_summary = column_summary(target, name) if name in target_columns else None
        r_summary = column_summary(reference, name) if name in reference_columns else None
        entry = {"test": None, "p_value": None, "statistic": None, "effect": None, "unseen_categories": [],
                 "target_rows": t_summary["count"] if t_summary else 0,
                 "target_null_fraction": t_summary["null_fraction"] if t_summary else None,
                 "reference_null_fraction": r_summary["null_fraction"] if r_summary else None,
                 "problem": None}
        if t_summary is None or r_summary is None:
            entry["problem"] = "not in the window" if t_summary is None else "not in the reference"
        elif t_summary["kind"] == "missing":
            entry["problem"] = "all values missing in the window" if t_summary["count"] else "no rows in the window"
        elif r_summary["kind"] == "missing":
            entry["problem"] = "all values missing in the reference"
        elif t_summary["kind"] != r_summary["kind"]:
            entry["problem"] = f"{t_summary['kind']} in the window, {r_summary['kind']} in the reference"
        elif t_summary["kind"] == "numeric":
            score = KS().calculate(target_columns[name], reference_columns[name])
            if score is not None:
                entry.update(test="ks", p_value=float(score.pvalue), statistic=float(score.statistic),
                             effect=float(score.statistic))
        else:
            t_freq, r_freq = t_summary["frequencies"], r_summary["frequencies"]
            entry["unseen_categories"] = sorted(set(t_freq) - set(r_freq))
            tested = category_test(t_freq, r_freq)
            if tested is None:
                entry["problem"] = "too few rows for its categories to test (fewer than two cells expected 5 times)"
            else:
                statistic, p_value, cells = tested
                entry.update(test="chi-square", p_value=p_value, statistic=statistic, cells=cells,
                             effect=_category_distance(t_freq, r_freq))
        results[name] = entry
    return results

"""Validate a batch against the schema the spec implies (pandera), and report failures readably.

The report says, per failure: which column, which check, how many rows, and a few example values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Union

import numpy as np
import pandas as pd

from keel.spec.data import CategoricalFeature, DataSpec, NumericFeature, TargetSpec

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class CheckFailure:
    column: str
    check: str
    failing_rows: int
    examples: List[str]


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    columns: int
    failures: List[CheckFailure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"passed": self.passed, **asdict(self)}

    def summary(self) -> str:
        if self.passed:
            return f"data validation passed: {self.rows} rows, {self.columns} columns"
        lines = [f"data validation failed: {len(self.failures)} check(s) on {self.rows} rows"]
        for failure in self.failures:
            examples = f"; e.g. {', '.join(map(shown_example, failure.examples))}" if failure.examples else ""
            counts = f" ({failure.failing_rows} row(s){examples})" if failure.failing_rows or failure.examples else ""
            lines.append(f"  - column {failure.column!r}: {failure.check}{counts}")
        return "\n".join(lines)


def shown_example(value: str) -> str:
    """A value as a message shows it: numbers bare, text quoted so that spaces show (`' Male'`)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return repr(value)
    return value if value == value.strip() else repr(value)


def validation_html(report: ValidationReport) -> str:
    from keel.reports import html

    status = html.verdict(report.passed, "passed" if report.passed else "failed")
    rows = [(f.column, f.check, f.failing_rows, ", ".join(map(shown_example, f.examples)))
            for f in report.failures]
    return html.page("Data validation", html.key_values(
        {"result": status, "rows": report.rows, "columns": report.columns}),
        html.table(["column", "check", "failing rows", "examples"], rows) if rows else "")


def _whole_numbers():
    import pandera.pandas as pa

    return pa.Check(lambda s: s.isna() | (s == s.round()), name="not a whole number")


def _bound(kind: str, limit: float):
    import pandera.pandas as pa

    if kind == "ge":
        return pa.Check(lambda s: s >= limit, name=f"below the minimum {limit:g}")
    return pa.Check(lambda s: s <= limit, name=f"above the maximum {limit:g}")


def build_schema(data: DataSpec):
    """A pandera DataFrameSchema for the spec's columns; other columns in the file are ignored."""
    import pandera.pandas as pa

    columns = {}
    for name, feature in data.features.items():
        if isinstance(feature, NumericFeature):
            low, high = feature.bounds  # never unbounded: see LARGEST_MAGNITUDE
            checks = [_bound("ge", low), _bound("le", high)]
            if feature.type == "integer":
                checks.append(_whole_numbers())
            columns[name] = pa.Column("float64", checks=checks, nullable=feature.nullable, coerce=True)
        else:
            columns[name] = _categorical_column(feature.categories, feature.nullable)
    for name, attribute in data.sensitive_attributes.items():
        if name not in columns:
            columns[name] = _categorical_column(attribute.categories, nullable=attribute.nullable)
    target = data.target
    columns[target.column] = pa.Column(  # accepts exactly what `encode_target` maps
        checks=[pa.Check(lambda s: target_codes(s, target.positive, target.negative).notna(),
                         name=f"target not {target.positive!r} or {target.negative!r}"),
                # A model needs examples of both classes; one class only fails here, not in training.
                pa.Check(lambda s: len(s) == 0 or target_codes(s, target.positive, target.negative).nunique() == 2,
                         name=f"the target must hold both classes, {target.positive!r} and {target.negative!r}; "
                              "it does not hold both (one class only, or neither)")],
        nullable=False)
    if data.id_column:
        columns[data.id_column] = pa.Column(nullable=False, unique=True)
    if data.time_column:
        columns[data.time_column] = pa.Column("datetime64[ns]", nullable=False, coerce=True)
    for name in data.screening.time_columns:  # a time not recorded is no evidence of leakage either way
        columns[name] = pa.Column("datetime64[ns]", nullable=True, coerce=True)
    has_rows = pa.Check(lambda frame: len(frame) > 0, name="the batch has no rows")
    return pa.DataFrameSchema(columns, checks=[has_rows], strict=False)


# How a class of a boolean target column may be declared: "True" (what `init` writes) or 1 (an unquoted YAML `true`
# is refused by the spec: it cannot be told from an unquoted `yes`).
_TRUTH = {"true": True, "1": True, "false": False, "0": False}


def _boolean_target_codes(values: pd.Series, positive, negative) -> pd.Series:
    """`target_codes` of a boolean column: each declared class read as the truth value it spells."""
    present = values.notna().to_numpy()
    flags = values.fillna(False).to_numpy(dtype=bool)
    codes = np.full(len(values), -1, dtype=np.int64)
    for value, code in ((positive, 1), (negative, 0)):
        wanted = _TRUTH.get(str(value).strip().lower())
        if wanted is not None:
            codes[present & (flags == wanted)] = code
    return pd.Series(pd.arrays.IntegerArray(np.maximum(codes, 0), codes < 0), index=values.index)


def target_codes(values: pd.Series, positive: Union[int, str], negative: Union[int, str]) -> pd.Series:
    """The one mapping of target values to classes, for training data and delayed labels alike:
    1 for the spec's positive class, 0 for its negative class, <NA> for anything else (missing
    included). Values are compared as text, so a file's 1 and a label file's "1" are the same class;
    a numeric class also matches its other numeric spellings (1.0, "1.0": CSV and SQL columns with
    a missing value come back as floats). Text is compared as given: stripping is the reader's call."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return _boolean_target_codes(values, positive, negative)
    present = values.notna().to_numpy()
    text = values.astype(str).to_numpy(dtype=object)
    codes = np.full(len(values), -1, dtype=np.int64)
    for value, code in ((positive, 1), (negative, 0)):
        codes[present & (text == str(value))] = code
    numeric = [(value, code) for value, code in ((positive, 1), (negative, 0))
               if isinstance(value, (int, float)) and not isinstance(value, bool)]
    rest = np.flatnonzero(present & (codes < 0))
    if numeric and len(rest):  # only the values matching neither spelling are parsed (~1 s per 1M)
        numbers = pd.to_numeric(pd.Series(text[rest]), errors="coerce").to_numpy(dtype=float)
        for value, code in numeric:
            codes[rest[numbers == value]] = code
    return pd.Series(pd.arrays.IntegerArray(np.maximum(codes, 0), codes < 0), index=values.index)


def encode_target(values: pd.Series, target: TargetSpec) -> pd.Series:
    """The target as int64, 1 = `target.positive`, 0 = `target.negative`: what training, evaluation,
    the monitoring reference and the delayed labels all count. Every value must be one of the two
    classes (validation checks it); anything else is a ValueError naming examples."""
    codes = target_codes(values, target.positive, target.negative)
    unknown = codes.isna()
    if unknown.any():
        examples = ", ".join(map(repr, pd.unique(values[unknown.to_numpy()])[:MAX_EXAMPLES]))
        raise ValueError(f"target column {target.column!r}: {int(unknown.sum())} value(s) are neither the "
                         f"positive class {target.positive!r} nor the negative class {target.negative!r} "
                         f"(e.g. {examples})")
    return codes.astype("int64")


def _categorical_column(categories, nullable: bool):
    import pandera.pandas as pa

    from keel.reports.values import listed

    allowed = list(categories)
    isin = pa.Check(lambda s: s.isna() | s.astype("string").isin(allowed),
                    name=f"unknown category (allowed: {listed(allowed)})")
    return pa.Column(checks=[isin], nullable=nullable)


MISSING_NOT_ALLOWED = ("missing values are not allowed (declare it `nullable: true` in the spec where a missing "
                       "value is valid)")


def failures_from(error, row_count: int) -> List[CheckFailure]:
    """One line per (column, check); checks that only failed because the type was wrong are dropped."""
    cases = error.failure_cases
    failures, wrong_type = {}, set()
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        check = str(check)
        values = group["failure_case"].dropna().astype(str)
        rows = int(group["index"].notna().sum())
        if check == "column_in_dataframe":
            for missing in values.unique():
                failures[(missing, "missing")] = CheckFailure(missing, "the column is missing", 0, [])
            continue
        column = "(whole batch)" if pd.isna(column) else str(column)
        if check.startswith(("coerce_dtype", "dtype(")):
            wrong_type.add(column)
            expected = check.split("(", 1)[-1].rstrip(")").strip("'")
            check = f"wrong type (expected {expected})"
        elif check == "not_nullable":
            check = MISSING_NOT_ALLOWED
        elif check == "field_uniqueness":
            check = "duplicate ids"
        elif set(values.unique()) <= {"False"}:  # a check on the whole column or batch
            values, rows = values.iloc[:0], row_count
        elif values.str.contains("Error\\(").any():
            continue  # a consequence of a wrong type, already reported
        key = (column, check.split(" (")[0])
        examples = list(values.unique()[:MAX_EXAMPLES])
        if key not in failures:
            failures[key] = CheckFailure(column, check, rows, examples)
    return [f for (column, _), f in failures.items()
            if not (column in wrong_type and f.check.startswith(("below", "above", "not a whole")))]


def validate_frame(frame: pd.DataFrame, data: DataSpec) -> tuple[pd.DataFrame, ValidationReport]:
    """Return (the frame with spec dtypes, the report); the frame is only usable if report.passed."""
    import pandera.errors

    schema = build_schema(data)
    try:
        validated = schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        failures = failures_from(error, len(frame))
        missing = [f.column for f in failures if f.check == "the column is missing"]
        if missing:  # once, on the first: what the data holds instead, and the likely reading mistake
            from keel.data.sources import columns_found_note

            first = next(i for i, f in enumerate(failures) if f.check == "the column is missing")
            failures[first] = CheckFailure(missing[0], "the column is missing; "
                                           + columns_found_note(frame.columns, missing), 0, [])
        return frame, ValidationReport(len(frame), frame.shape[1], failures)
    return with_spec_dtypes(validated, data), ValidationReport(len(frame), frame.shape[1])


def with_spec_dtypes(frame: pd.DataFrame, data: DataSpec) -> pd.DataFrame:
    """Keep the spec's columns only, categorical columns as pandas categories of the spec's levels."""
    keep = [c for c in [data.id_column, data.time_column, *data.screening.time_columns] if c]
    keep += list(data.features) + [n for n in data.sensitive_attributes if n not in data.features]
    keep.append(data.target.column)
    result = frame[keep].copy()
    for name, feature in data.features.items():
        if isinstance(feature, CategoricalFeature):
            result[name] = pd.Categorical(result[name].astype("string"), categories=feature.categories)
    for name, attribute in data.sensitive_attributes.items():
        if attribute.categories and name not in data.features:
            result[name] = pd.Categorical(result[name].astype("string"), categories=attribute.categories)
    result[data.target.column] = encode_target(result[data.target.column], data.target)
    return result

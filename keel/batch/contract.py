"""The online payload contract (keel/serving/payload.py), judged a whole chunk at a time.

The same rules as a scoring request: numbers only for numeric features (whole numbers for integer
ones), finite and within the spec's range; the spec's categories only; a missing value only where
the feature is nullable; an entity id of bounded length. The problems are worded as the service's
422 words them: each message is taken from the service's own request model, so the two cannot drift.

Where a table differs from a JSON request:
- other columns are ignored (a file carries more columns: the target, dates, notes); the service
  rejects an unknown field;
- a column a feature needs that is absent altogether is one error for the whole input
  (`MissingColumnsError`) before anything is scored; a nullable feature's absent column is missing
  in every row, as a request may leave a nullable field out;
- a NaN in a numeric column is a missing value (Parquet and pandas do not tell them apart);
- categories are compared as text, as training validated them (a Parquet integer column holding
  the categories "1" and "2" is accepted; JSON's `1` is refused by the service);
- ids are text, as the prediction log stores them;
- a sensitive attribute a mitigated version decides with is checked like a feature but may be
  missing (as online: such a row is decided as a group the version cannot judge).

A row with problems is rejected with each problem named (field, problem, found); the other rows are
returned converted as the model reads them (numbers as float64, categories as text, missing as
None/NaN), indexed by their input row number."""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from keel.data.sources import DataSourceError, columns_found_note
from keel.features.preprocessing import UNTRAINED_CATEGORY
from keel.serving.payload import LONE_SURROGATE, MAX_ENTITY_ID_LENGTH, _is_unicode, problem_text, record_model
from keel.spec.data import CategoricalFeature, DataSpec

REJECT_COLUMNS = ["row", "id", "field", "problem", "found"]
FOUND_CHARACTERS = 80  # as the service's 422 shows what it found


class MissingColumnsError(DataSourceError):
    """The input lacks columns every row needs: one error before scoring, not every row rejected."""


@dataclass(frozen=True)
class Rule:
    """What one column must hold, with the service's wording of each problem."""

    name: str
    kind: str                        # "numeric", "integer", "categorical"
    nullable: bool
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    categories: Tuple[str, ...] = ()
    problems: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Contract:
    rules: Tuple[Rule, ...]
    id_column: Optional[str]
    id_problems: Dict[str, str]


def _service_problem(model, name: str, value) -> Optional[str]:
    """The service's wording of what is wrong with `value` in field `name` (None: nothing)."""
    from pydantic import ValidationError

    try:
        model.model_validate({name: value})
    except ValidationError as error:
        for item in error.errors():
            if item["loc"] and item["loc"][0] == name:
                return problem_text(item)
    return None


def _numeric_rule(model, name: str, feature, nullable: bool) -> Rule:
    kind = feature.type
    problems = {"type": _service_problem(model, name, "not a number"),
                "finite": _service_problem(model, name, math.inf)}
    if not nullable:
        problems["missing"] = _service_problem(model, name, None)
    if kind == "integer":
        problems["whole"] = _service_problem(model, name, 0.5)
    low, high = feature.bounds
    below = math.nextafter(low, -math.inf)  # the nearest value out of range: a whole one for integers
    problems["below"] = _service_problem(model, name, float(math.floor(below)) if kind == "integer" else below)
    above = math.nextafter(high, math.inf)
    problems["above"] = _service_problem(model, name, float(math.ceil(above)) if kind == "integer" else above)
    return Rule(name, kind, nullable, low, high, problems=problems)


def _categorical_rule(model, name: str, categories: Sequence[str], nullable: bool) -> Rule:
    problem = _service_problem(model, name, None) if not nullable else None
    unknown = _service_problem(model, name, "\0 not a category")
    return Rule(name, "categorical", nullable, categories=tuple(categories),
                problems={"missing": problem, "category": unknown})


@functools.lru_cache(maxsize=16)
def _contract(data_json: str, decision_attributes: Tuple[str, ...]) -> Contract:
    data = DataSpec.model_validate_json(data_json)
    model = record_model(data, decision_attributes)
    rules: List[Rule] = []
    names = list(data.model_features) + [a for a in decision_attributes if a not in data.model_features]
    for name in names:
        is_attribute = name not in data.model_features
        # A decision attribute is optional in a request (a row without it is decided as a group the
        # version cannot judge), whatever the feature's own nullability.
        nullable = True if is_attribute else data.features[name].nullable
        feature = data.features.get(name)
        if feature is None:
            rules.append(_categorical_rule(model, name, data.sensitive_attributes[name].categories, nullable))
        elif isinstance(feature, CategoricalFeature):
            rules.append(_categorical_rule(model, name, feature.categories, nullable))
        else:
            rules.append(_numeric_rule(model, name, feature, nullable))
    id_problems = {"long": _service_problem(model, "entity_id", "x" * (MAX_ENTITY_ID_LENGTH + 1)),
                   "surrogate": _service_problem(model, "entity_id", "\ud800") or LONE_SURROGATE}
    return Contract(tuple(rules), data.id_column, id_problems)


def contract(data: DataSpec, decision_attributes: Sequence[str] = ()) -> Contract:
    """The rules a chunk is checked against (built once per spec and attributes)."""
    return _contract(data.model_dump_json(), tuple(decision_attributes))


# --- checking ------------------------------------------------------------------------------------


class _Problems:
    """Problems found in one chunk: (position, field, problem, found) as parallel lists of arrays."""

    def __init__(self):
        self.positions: List[np.ndarray] = []
        self.fields: List[np.ndarray] = []
        self.problems: List[np.ndarray] = []
        self.found: List[np.ndarray] = []
        self.order: List[np.ndarray] = []

    def add(self, order: int, name: str, mask: np.ndarray, problem: str, values) -> None:
        positions = np.flatnonzero(mask)
        if not len(positions):
            return
        shown = np.asarray(values, dtype=object)[positions] if values is not None else np.full(len(positions), None)
        self.positions.append(positions)
        self.fields.append(np.full(len(positions), name, dtype=object))
        self.problems.append(np.full(len(positions), problem, dtype=object))
        self.found.append(np.array([_shown(v) for v in shown], dtype=object))
        self.order.append(np.full(len(positions), order))

    def bad_positions(self, rows: int) -> np.ndarray:
        bad = np.zeros(rows, dtype=bool)
        for positions in self.positions:
            bad[positions] = True
        return bad

    def rejects(self, first_row: int, ids: Optional[np.ndarray]) -> pd.DataFrame:
        if not self.positions:
            return empty_rejects()
        long = pd.DataFrame({"position": np.concatenate(self.positions), "order": np.concatenate(self.order),
                             "field": np.concatenate(self.fields), "problem": np.concatenate(self.problems),
                             "found": np.concatenate(self.found)})
        long = long.sort_values(["position", "order"], kind="stable")
        repeated = long["position"].duplicated(keep=False).to_numpy()
        single = long[~repeated]
        rows = [pd.DataFrame({"position": single["position"].to_numpy(), "field": single["field"].to_numpy(),
                              "problem": single["problem"].to_numpy(), "found": single["found"].to_numpy()})]
        if repeated.any():
            several = long[repeated]
            named_problem = several["field"] + ": " + several["problem"]
            named_found = several["field"] + "=" + several["found"].fillna("null").astype(str)
            grouped = pd.DataFrame({"position": several["position"], "field": several["field"],
                                    "problem": named_problem, "found": named_found}).groupby("position", sort=True)
            rows.append(pd.DataFrame({"field": grouped["field"].agg(", ".join),
                                      "problem": grouped["problem"].agg("; ".join),
                                      "found": grouped["found"].agg("; ".join)}).reset_index())
        joined = pd.concat(rows, ignore_index=True).sort_values("position", kind="stable")
        positions = joined["position"].to_numpy()
        return pd.DataFrame({"row": (positions + first_row).astype("int64"),
                             "id": ids[positions] if ids is not None else np.full(len(positions), None, dtype=object),
                             "field": joined["field"].to_numpy(dtype=object),
                             "problem": joined["problem"].to_numpy(dtype=object),
                             "found": joined["found"].to_numpy(dtype=object)})


def empty_rejects() -> pd.DataFrame:
    """A chunk's rejects when it has none: the columns, typed."""
    return pd.DataFrame({name: pd.Series([], dtype="int64" if name == "row" else object) for name in REJECT_COLUMNS})


def _shown(value) -> Optional[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = value if isinstance(value, str) else str(value)
    text = text[:FOUND_CHARACTERS]
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_number_kind(value) -> bool:
    """A number, as JSON has them: not a boolean, not text. A database's DECIMAL is a number too."""
    return isinstance(value, (int, float, np.integer, np.floating, Decimal)) and not isinstance(value, (bool, np.bool_))


def _numbers(column: pd.Series) -> Tuple[np.ndarray, np.ndarray]:
    """(values as float64 with NaN where missing or not a number, mask of present values that are not
    numbers: text, booleans, anything else)."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        present = column.notna().to_numpy()
        return np.full(len(column), np.nan), present
    if pd.api.types.is_numeric_dtype(dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(column), dtype=bool)
    values = column.to_numpy(dtype=object)
    missing = pd.isna(column).to_numpy()
    kinds = np.fromiter((_is_number_kind(v) for v in values), dtype=bool, count=len(values))
    wrong = ~missing & ~kinds
    numbers = np.full(len(values), np.nan)
    if kinds.any():
        numbers[kinds] = np.array([float(v) for v in values[kinds]], dtype=np.float64)
    return numbers, wrong


def _check_numeric(rule: Rule, order: int, column: Optional[pd.Series], rows: int,
                   problems: _Problems) -> np.ndarray:
    if column is None:
        return np.full(rows, np.nan)
    numbers, wrong = _numbers(column)
    nan = np.isnan(numbers)
    missing = nan & ~wrong
    shown = column.to_numpy(dtype=object) if not pd.api.types.is_numeric_dtype(column.dtype) else numbers
    seen = wrong.copy()
    problems.add(order, rule.name, wrong, rule.problems["type"], shown)
    if not rule.nullable:
        problems.add(order, rule.name, missing, rule.problems["missing"], None)
    finite = np.isfinite(numbers)
    infinite = ~nan & ~finite
    problems.add(order, rule.name, infinite, rule.problems["finite"], shown)
    seen |= infinite
    if rule.kind == "integer":
        with np.errstate(invalid="ignore"):
            fractional = finite & (numbers != np.floor(numbers))
        problems.add(order, rule.name, fractional & ~seen, rule.problems["whole"], shown)
        seen |= fractional
    with np.errstate(invalid="ignore"):
        if rule.minimum is not None:
            below = finite & ~seen & (numbers < rule.minimum)
            problems.add(order, rule.name, below, rule.problems["below"], shown)
            seen |= below
        if rule.maximum is not None:
            above = finite & ~seen & (numbers > rule.maximum)
            problems.add(order, rule.name, above, rule.problems["above"], shown)
    return numbers


def _check_categorical(rule: Rule, order: int, column: Optional[pd.Series], rows: int,
                       problems: _Problems) -> np.ndarray:
    if column is None:
        return np.full(rows, None, dtype=object)
    if isinstance(column.dtype, pd.CategoricalDtype):  # Arrow dictionaries: judge each category once
        codes = column.cat.codes.to_numpy()
        missing = codes < 0
        labels = np.array([v if isinstance(v, str) else str(v) for v in column.cat.categories], dtype=object)
        allowed = pd.Series(labels, dtype=object).isin(rule.categories).to_numpy()
        values = np.append(labels, None)[codes]  # code -1 (missing) takes the last: None
        known = np.append(allowed, False)[codes]
    elif pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
        missing = pd.isna(column).to_numpy()
        values = column.to_numpy(dtype=object)
        known = column.isin(rule.categories).to_numpy()
        retry = ~known & ~missing
        if retry.any():  # non-text values (a number in an object column): compared as text
            text = np.array([v if isinstance(v, str) else str(v) for v in values[retry]], dtype=object)
            values = values.copy()
            values[retry] = text
            known[retry] = pd.Series(text).isin(rule.categories).to_numpy()
    else:  # a typed column (numbers, booleans): its values as text
        missing = pd.isna(column).to_numpy()
        values = column.astype(str).to_numpy(dtype=object)
        known = pd.Series(values).isin(rule.categories).to_numpy()
    if not rule.nullable:
        problems.add(order, rule.name, missing, rule.problems["missing"], None)
    problems.add(order, rule.name, ~missing & ~known, rule.problems["category"], values)
    if missing.any():  # one spelling of "missing" for the model: None, as the service passes it
        values = values.copy()
        values[missing] = None
    return values


def _id_text(column: pd.Series) -> np.ndarray:
    """The ids as text (None where missing), as the prediction log stores them."""
    missing = pd.isna(column).to_numpy()
    if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
        values = column.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            other = np.zeros(len(values), dtype=bool)
        else:  # numbers among text (an SQL column of mixed values)
            other = ~missing & np.fromiter((not isinstance(v, str) for v in values), dtype=bool, count=len(values))
        if other.any():
            values = values.copy()
            values[other] = [str(v) for v in values[other]]
    else:  # a typed column: integers read from an SQL query, say
        values = column.astype(str).to_numpy(dtype=object)
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values


def _check_ids(rules: Contract, column: pd.Series, rows: int, problems: _Problems) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _id_text(column)
    order = -1  # the id first, as the service validates it with the record
    try:  # Arrow refuses text that is not Unicode (a lone surrogate): one fast pass for the usual case
        lengths = pc.fill_null(pc.utf8_length(pa.array(values, type=pa.string(), from_pandas=True)), 0)
        lengths = lengths.to_numpy(zero_copy_only=False)
    except (pa.ArrowException, UnicodeEncodeError):
        lengths = np.fromiter((len(v) if isinstance(v, str) else 0 for v in values), dtype=np.int64, count=rows)
        broken = np.fromiter((isinstance(v, str) and not _is_unicode(v) for v in values), dtype=bool, count=rows)
        problems.add(order, rules.id_column, broken & (lengths <= MAX_ENTITY_ID_LENGTH),
                     rules.id_problems["surrogate"], values)
    problems.add(order, rules.id_column, lengths > MAX_ENTITY_ID_LENGTH, rules.id_problems["long"], values)
    return values


def missing_columns(columns: Sequence[str], data: DataSpec) -> List[str]:
    """The model features the input has no column for. A nullable one too: a row may leave its value
    empty, but a whole column absent is a misspelt or dropped header (`Savings` for `savings` scored every
    row as if its savings were unknown), as the service refuses an unknown field."""
    present = set(map(str, columns))
    return [name for name in data.model_features if name not in present]


def require_columns(columns: Sequence[str], data: DataSpec) -> None:
    """Raise MissingColumnsError naming the absent columns: the model features (missing_columns) and the
    spec's id column (a row may leave either empty; the input may not drop the column)."""
    absent = missing_columns(columns, data)
    if absent:
        raise MissingColumnsError(
            f"the input has no column {', '.join(map(repr, absent))} (a feature the model reads; a row may leave a "
            f"nullable one empty, the input may not drop its column); nothing was scored: "
            f"{columns_found_note(list(columns), absent, where='data.source')}")
    if data.id_column and data.id_column not in set(map(str, columns)):
        # Scores without ids could not be traced to a person, contested, or joined with their outcomes.
        raise MissingColumnsError(
            f"the input has no column {data.id_column!r} (the spec's data.id_column, each row's id); nothing was "
            f"scored: {columns_found_note(list(columns), [data.id_column], where='data.source')}")


def check_chunk(frame: pd.DataFrame, data: DataSpec, first_row: int, decision_attributes: Sequence[str] = (),
                untrained: Mapping[str, FrozenSet[str]] = MappingProxyType({})) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(good rows, rejects) of one chunk. Good rows: the model features and decision attributes as the
    model reads them, plus the id column (text) when the spec has one, indexed by input row number.
    Rejects: one row per rejected input row: row (input row number), id, field, problem, found (for
    several fields: `a, b`, `a: problem; b: problem`, `a=found; b=found`). Raises MissingColumnsError
    when a column every row needs is absent. `untrained`: per feature, the spec's categories the scoring
    version was not fitted with (keel.features.preprocessing.categories_unknown_to): rejected, as the
    service refuses them for that version."""
    rules = contract(data, decision_attributes)
    require_columns(frame.columns, data)
    rows = len(frame)
    problems = _Problems()
    converted: Dict[str, np.ndarray] = {}
    ids = _check_ids(rules, frame[rules.id_column], rows, problems) if rules.id_column else None
    for order, rule in enumerate(rules.rules):
        column = frame[rule.name] if rule.name in frame.columns else None
        check = _check_categorical if rule.kind == "categorical" else _check_numeric
        converted[rule.name] = check(rule, order, column, rows, problems)
        if rule.name in untrained:
            values = converted[rule.name]
            problems.add(order, rule.name, pd.Series(values, dtype=object).isin(untrained[rule.name]).to_numpy(),
                         UNTRAINED_CATEGORY, values)
    bad = problems.bad_positions(rows)
    index = pd.RangeIndex(first_row, first_row + rows)
    columns = ({rules.id_column: ids} if rules.id_column else {}) | converted
    if bad.any():
        keep = ~bad
        index, columns = index[keep], {name: values[keep] for name, values in columns.items()}
    return pd.DataFrame(columns, index=index, copy=False), problems.rejects(first_row, ids)

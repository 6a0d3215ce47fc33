"""`run.py init`: a starting spec written from a data file. The reading options (separator, encoding,
decimal mark, spaces after the separator, a missing header line, missing-value markers) are detected
unless given; each column becomes an integer, numeric or categorical feature with its observed range,
categories and missingness, or the id, time or target column. What only a person can decide is left
as comments to confirm: the sensitive attributes and which prediction is favourable to the person."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd
import yaml

from keel.data.sources import DataSourceError, _read_parquet, one_line, read_csv_arguments
from keel.spec.data import LARGEST_MAGNITUDE, FileSource

MAX_CATEGORIES = 50           # more distinct texts than this is not a category (names, free text)
MARKERS = ("?", "-", "--", ".", "n.a.", "missing", "unknown")   # spellings of "missing" beyond pandas' own
SENSITIVE = re.compile(r"(^|[_\W])(sex|gender|race|ethnic\w*|religion|age|marital[_\W]?status|nationality|"
                       r"native[_\W]?country|citizenship|disab\w*|pregnan\w*|orientation)(?=$|[_\W])", re.I)
ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key)$|^id[_\W]|identifier", re.I)
# "age" after a thing names the thing's age (card_age_days, account_age_months), no protected attribute.
AGE_OF_A_THING = re.compile(r"(^|[_\W])(card|account|acct|vehicle|car|device|loan|contract|policy|tenure|"
                            r"merchant|product|item|record|file|company|business|building|house|home)[_\W]?age($|[_\W])",
                            re.I)
SEPARATORS = (",", ";", "\t", "|")
THOUSANDS_MARKS = (",", ".", "'")   # not a space: "75 001" is as likely a postcode as a number


class InitError(ValueError):
    """`init` cannot write a spec from these arguments; the message says why and what to give."""


@dataclass
class Inferred:
    """What `init` found, besides the spec text: for the command's summary."""

    spec_text: str
    reading: Dict[str, Any]
    features: Dict[str, dict]
    id_column: Optional[str]
    time_column: Optional[str]
    time_format: Optional[str] = None  # strftime codes of the time column's text; None: ISO 8601
    left_out: Dict[str, str] = field(default_factory=dict)
    sensitive: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


# --- reading options -----------------------------------------------------------------------------


def _sample_text(path: Path, encoding: Optional[str]) -> Tuple[str, str]:
    raw = path.read_bytes()[:256 * 1024]
    if encoding:
        return raw.decode(encoding, errors="replace"), encoding
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        if error.start > len(raw) - 4:  # a character cut by the sample's end
            return raw[:error.start].decode("utf-8"), "utf-8"
        return raw.decode("latin-1"), "latin-1"


def _is_number(text: str, decimal: str = ".") -> bool:
    text = text.strip()
    if decimal != ".":
        text = text.replace(".", "\0").replace(decimal, ".")
    try:
        return math.isfinite(float(text)) and any(c.isdigit() for c in text)
    except ValueError:
        return False


def detect_reading(path: Path, given: Dict[str, Any]) -> Dict[str, Any]:
    """Reading options for a CSV file: the given ones, and the others detected from its first lines."""
    options = dict(given)
    text, encoding = _sample_text(path, options.get("encoding"))
    if encoding != "utf-8":
        options.setdefault("encoding", encoding)
    lines = [line for line in text.lstrip("\ufeff").splitlines()[options.get("skiprows", 0):] if line.strip()]
    lines = [line for line in lines if not (options.get("comment") and line.lstrip().startswith(options["comment"]))]
    lines = lines[:50]
    if "sep" not in options:
        options["sep"] = _separator(lines)
    sep = options["sep"]
    records = list(csv.reader(lines, delimiter=sep))
    if "skipinitialspace" not in options:
        later = [value for record in records for value in record[1:]]
        if later and sum(value.startswith(" ") for value in later) >= 0.5 * len(later):
            options["skipinitialspace"] = True
    if "decimal" not in options and sep != ",":
        values = [value.strip() for record in records[1:] for value in record]
        if any(re.fullmatch(r"-?\d+,\d+", v) for v in values) and not any(re.fullmatch(r"-?\d+\.\d+", v)
                                                                           for v in values):
            options["decimal"] = ","
    if "header" not in options and records:
        if any(_is_number(value, options.get("decimal", ".")) for value in records[0]):
            options["header"] = False  # numbers in the first line: data, not column names
            options.setdefault("names", [f"column_{i + 1}" for i in range(len(records[0]))])
    return {key: value for key, value in options.items()
            if FileSource.model_fields[key].get_default(call_default_factory=True) != value}


def _separator(lines: List[str]) -> str:
    """The candidate that splits the first lines into the same number (> 1) of fields most consistently."""
    best, best_score = ",", (0.0, 0)
    for sep in SEPARATORS:
        counts = [len(record) for record in csv.reader(lines[:20], delimiter=sep)]
        if not counts or max(counts) < 2:
            continue
        common = max(set(counts), key=counts.count)
        score = (counts.count(common) / len(counts), common)
        if common > 1 and score > best_score:
            best, best_score = sep, score
    return best


# --- columns -------------------------------------------------------------------------------------


def _read(source: FileSource, as_text: bool) -> pd.DataFrame:
    if source.kind == "parquet":
        frame = _read_parquet(source)
        return frame.astype({c: "string" for c in frame.columns if frame[c].dtype == bool}) if as_text else frame
    arguments = read_csv_arguments(source)
    try:
        return pd.read_csv(source.path, low_memory=False, **({"dtype": str} if as_text else {}), **arguments)
    except UnicodeDecodeError as error:
        raise DataSourceError(f"{source.path}: cannot be read as text in the encoding {source.encoding!r} "
                              f"({error.reason}); give it, e.g. --read encoding=latin-1") from None
    except (pd.errors.ParserError, ValueError, OSError) as error:
        raise DataSourceError(f"{source.path}: cannot be read as csv ({one_line(error)}); give the reading options, "
                              "e.g. --read sep=';'") from None


def _markers(text: pd.DataFrame, decimal: str, keep_default_na: bool) -> List[str]:
    """Spellings of "missing" in otherwise numeric columns (`?` in the UCI files; `NA` when pandas'
    default spellings are not read as missing)."""
    spellings = set(MARKERS) if keep_default_na else set(MARKERS) | _pandas_missing_spellings()
    found = set()
    for column in text.columns:
        values = text[column].dropna().str.strip()
        if values.empty:
            continue
        numeric = values.map(lambda v: _is_number(v, decimal))
        others = set(values[~numeric].unique())
        if numeric.mean() >= 0.5 and others and others <= spellings:
            found |= others
        elif "?" in others:  # a category "?" is a missing value (the UCI files' convention)
            found.add("?")
    return sorted(found)


def _thousands_mark(text: pd.DataFrame, decimal: str) -> Optional[str]:
    """The mark grouping thousands (`"1,234.5"`, `1.234,5`, `1'234`) when a column's values are
    all numbers once it is read so, some of them grouped; None when no column is."""
    for mark in [m for m in THOUSANDS_MARKS if m != decimal]:
        grouped = re.compile(rf"[+-]?\d{{1,3}}(?:{re.escape(mark)}\d{{3}})+(?:{re.escape(decimal)}\d+)?")
        for column in text.columns:
            values = text[column].dropna().str.strip()
            is_grouped = values.map(lambda v: grouped.fullmatch(v) is not None)
            if is_grouped.any() and (is_grouped | values.map(lambda v: _is_number(v, decimal))).all():
                return mark
    return None


def _pandas_missing_spellings() -> set:
    from pandas._libs.parsers import STR_NA_VALUES

    return set(STR_NA_VALUES) - {""}


def _text_columns_holding(text: pd.DataFrame, spellings: set, decimal: str) -> Dict[str, str]:
    """Text columns (mostly not numbers, besides `spellings`) where some of `spellings` stand among other
    values: {column: "'NA' (40 rows), ..."}."""
    found = {}
    for column in text.columns:
        values = text[column].dropna().str.strip()
        spelt = values[values.isin(spellings)]
        others = values[~values.isin(spellings)]
        if spelt.empty or others.empty or others.map(lambda v: _is_number(v, decimal)).mean() >= 0.5:
            continue
        found[str(column)] = ", ".join(f"{value!r} ({count} rows)" for value, count in spelt.value_counts().items())
    return found


def _markers_among_text(text: pd.DataFrame, markers: List[str], decimal: str) -> List[str]:
    """Warnings for text columns where a marker found in the numeric columns is also a value: `na_values`
    applies to every column, so that value is read as missing there too."""
    return [f"column {column!r}: {counts} read as missing: na_values (found in the numeric columns) applies to "
            "every column; if it is a category here, the file must spell the missing numbers otherwise (e.g. "
            "empty cells)" for column, counts in _text_columns_holding(text, set(markers) - {"?"}, decimal).items()]


def _spellings_of_missing_among_text(source: FileSource) -> List[str]:
    """Warnings for text columns where one of pandas' default spellings of missing ("NA", "None", ...)
    stands among other text. It is read as missing unless `keep_default_na: false`: only a person knows
    which it is (R writes NA for missing; "NA" is also North America)."""
    arguments = {**read_csv_arguments(source), "na_values": ["", *source.na_values], "keep_default_na": False}
    raw = pd.read_csv(source.path, low_memory=False, dtype=str, **arguments)
    found = _text_columns_holding(raw, _pandas_missing_spellings(), source.decimal)
    return [f"column {column!r}: {counts} read as missing (pandas' default spellings of missing); if it is a "
            "category here (e.g. 'NA' for North America), set keep_default_na: false under data.source (or --read "
            "keep_default_na=false)" for column, counts in found.items()]


def _as_number(value: float, integer: bool) -> Any:
    return int(value) if integer else float(value)


def _time_formats(values: pd.Series) -> List[Optional[str]]:
    """[None] for ISO 8601 text; else the day-first and month-first formats that read every value (two:
    ambiguous, as when no day is above 12)."""
    present = values.dropna().astype(str).str.strip()
    if pd.to_datetime(present, errors="coerce", format="ISO8601").notna().all():
        return [None]
    found = []
    for order in ("%d{0}%m{0}%Y", "%m{0}%d{0}%Y", "%d{0}%m{0}%y", "%m{0}%d{0}%y"):
        for separator in "/-.":
            for clock in ("", " %H:%M", " %H:%M:%S"):
                candidate = order.format(separator) + clock
                if pd.to_datetime(present, errors="coerce", format=candidate).notna().all():
                    found.append(candidate)
    return found or [None]


DATE_LIKE = r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}"
MOSTLY_DATES = 0.9  # this share of a text column reading as dates: dates with a few bad values, named as such


def _looks_like_time(values: pd.Series) -> bool:
    return not values.dropna().empty and not _not_times(values)


def _not_times(values: pd.Series) -> List[str]:
    """The distinct present values that do not read as a date or time."""
    present = values.dropna().astype(str)
    shaped = present[present.str.contains(DATE_LIKE)]
    readable = shaped[pd.to_datetime(shaped, errors="coerce", format="mixed").notna().to_numpy()]
    return present[~present.index.isin(readable.index)].unique().tolist()


def _mostly_times(values: pd.Series) -> bool:
    """All but a few of the present values read as dates: a time column with a few bad entries, not text."""
    present = values.dropna()
    readable = len(present) - int(present.isin(_not_times(values)).sum())
    return len(present) > 0 and readable >= MOSTLY_DATES * len(present)


# --- the spec text -------------------------------------------------------------------------------


def _flow(value: Any) -> str:
    """One YAML value on one line, quoted where YAML would misread it (`yes`, `1.0` as text, `: `)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=10 ** 9, allow_unicode=True,
                          sort_keys=False).strip()[1:-1]
    return text if "\n" not in text else json.dumps(value, ensure_ascii=False)  # JSON is YAML, on one line


def _problem_name(path: Path) -> str:
    stem = path.name.split(".")[0] if path.is_file() or "." in path.name else path.name
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", stem) or "problem"
    return (name if name[0].isalpha() else f"p_{name}")[:64]


def _bins(values: pd.Series) -> List[float]:
    """Edges at the quartiles (rounded), from below the smallest value to above the largest."""
    inner = [float(round(v)) for v in values.quantile([0.25, 0.5, 0.75]).tolist()]
    low, high = float(math.floor(values.min())), float(math.floor(values.max()) + 1)
    return sorted({low, high, *(edge for edge in inner if low < edge < high)})


def infer_spec(data: Path, target: str, given: Optional[Dict[str, Any]] = None) -> Inferred:
    """A starting spec (YAML text with comments) for the file `data` predicting `target`. `given`: reading
    options of data.source (as in the spec) that override detection."""
    data = Path(data)
    given = dict(given or {})
    parquet = data.suffix.lower() in (".parquet", ".pq") or data.is_dir() or any(c in str(data) for c in "*?[")
    if not parquet and not data.is_file():
        raise InitError(f"{data}: no such data file")
    if not parquet and data.stat().st_size == 0:
        raise InitError(f"{data}: the file is empty")
    if parquet and given:
        raise InitError(f"--read {', '.join(given)}: reading options apply to CSV files, not parquet")
    _source(data, parquet, given)  # the given options are checked before they are used
    reading = {} if parquet else detect_reading(data, given)
    source = _source(data, parquet, reading)
    text = _read(source, as_text=True)
    thousands = None if parquet or "thousands" in given else _thousands_mark(text, source.decimal)
    if thousands:
        reading["thousands"] = thousands
        source = _source(data, parquet, reading)
    markers = [] if parquet or "na_values" in given else _markers(text, source.decimal, source.keep_default_na)
    found_warnings = _markers_among_text(text, markers, source.decimal) if markers else []
    if markers:
        reading["na_values"] = markers
        source = _source(data, parquet, reading)
        text = _read(source, as_text=True)
    if not parquet and source.keep_default_na:
        found_warnings += _spellings_of_missing_among_text(source)
    typed = _read(source, as_text=False)
    if target not in typed.columns:
        raise InitError(_no_target(data, target, typed.columns, reading))
    inferred = Inferred("", reading, {}, None, None, warnings=found_warnings)
    if len(typed) == 0:
        raise InitError(f"{data}: the file has no rows")
    positive, negative, share = _classes(typed[target], target, data)
    if typed[target].isna().any():
        inferred.warnings.append(f"{int(typed[target].isna().sum())} row(s) have no value in the target column "
                                 f"{target!r}: validation rejects them; remove those rows from the file")
    rows = len(typed)
    for column in typed.columns:
        if column == target:
            continue
        _column(str(column), typed[column], text[column], rows, parquet, source.decimal, inferred)
    if not inferred.features:
        left_out = "; ".join(f"{c!r}: {why}" for c, why in inferred.left_out.items())
        raise InitError(f"{data}: no column besides the target can be a feature"
                        + (f" (left out: {left_out})" if left_out else ""))
    inferred.spec_text = _spec_text(data, source.kind, target, positive, negative, share, typed, inferred)
    return inferred


def _source(data: Path, parquet: bool, reading: Dict[str, Any]) -> FileSource:
    from pydantic import ValidationError

    try:
        return FileSource(kind="parquet" if parquet else "csv", path=data, **reading)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reading'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in error.errors())
        raise InitError(f"--read: {problems}") from None


def _no_target(data: Path, target: str, columns, reading: Dict[str, Any]) -> str:
    shown = ", ".join(repr(str(c)) for c in list(columns)[:30])
    message = f"{data}: no column {target!r} for --target; the columns are {shown}"
    if reading.get("header") is False and "names" in reading:
        message += (" (the first line looks like data, so the columns were numbered: give --target as one "
                    "of these, or name them with --read 'names=[a, b, ...]')")
    near = [str(c) for c in columns if str(c).strip().lower() == target.strip().lower()]
    if near:
        message += f"; did you mean {near[0]!r}?"
    return message


def _classes(values: pd.Series, target: str, data: Path) -> Tuple[Any, Any, float]:
    present = values.dropna()
    counts = present.value_counts()
    if len(counts) != 2:
        shown = ", ".join(repr(v) for v in counts.index[:8].tolist())
        raise InitError(f"{data}: the target column {target!r} holds {len(counts)} distinct value(s) ({shown}"
                        f"{', ...' if len(counts) > 8 else ''}); keel learns two classes: choose a column with "
                        "two values, or prepare the file so that it has two")
    classes = [_plain(v) for v in counts.index.tolist()]
    if set(classes) == {0, 1}:
        positive, negative = 1, 0
    else:  # the rarer outcome is usually the event predicted; the comment asks to confirm
        positive, negative = classes[1], classes[0]
    share = float((present.map(_plain) == positive).mean())
    return positive, negative, share


def _plain(value: Any) -> Any:
    """A class as the spec writes it: whole numbers as integers, text as text, numpy scalars as Python's."""
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _column(name: str, typed: pd.Series, text: pd.Series, rows: int, parquet: bool, decimal: str,
            inferred: Inferred) -> None:
    present = typed.dropna()
    nullable = bool(typed.isna().any())
    if name.startswith("Unnamed: ") or not name.strip():
        inferred.left_out[name] = "no name in the header line (a saved row index?)"
        return
    if present.empty:
        inferred.left_out[name] = "every value is missing"
        return
    # Times before ids: distinct dates are no id.
    if pd.api.types.is_datetime64_any_dtype(typed):
        _time_column(name, [None], nullable, inferred)
        return
    text_typed = pd.api.types.is_bool_dtype(typed) or not pd.api.types.is_numeric_dtype(typed)
    if text_typed and _looks_like_time(text.dropna()):
        formats = _time_formats(text.dropna())
        if parquet and formats != [None]:  # a Parquet column's text is not read with a time_format
            inferred.left_out[name] = ("dates as text other than ISO 8601: store them as Parquet timestamps (or "
                                       "ISO 8601 text) to use them as the time column")
        else:
            _time_column(name, formats, nullable, inferred)
        return
    if text_typed and _mostly_times(text.dropna()):
        bad = _not_times(text.dropna())
        count = int(text.dropna().isin(bad).sum())
        inferred.left_out[name] = (f"dates, but {count} value(s) do not read as one ({', '.join(map(repr, bad[:3]))}"
                                   f"{', ...' if len(bad) > 3 else ''}): correct or remove those rows to use it as "
                                   "the time column")
        return
    unique = present.nunique() == rows
    if inferred.id_column is None and unique and (ID_NAME.search(name) or not pd.api.types.is_numeric_dtype(typed)):
        inferred.id_column = name
        return
    if ID_NAME.search(name) and not unique and present.nunique() > rows // 2:
        repeated = int(present.duplicated().sum())
        inferred.left_out[name] = f"named like an id, but {repeated} value(s) repeat (duplicate rows?): not a feature"
        inferred.warnings.append(f"column {name!r} is named like an id but {repeated} of its values repeat: if the "
                                 "repeats are duplicate rows, remove them and declare it data.id_column (then "
                                 "validation refuses duplicates); a duplicate row can land in train and in test")
        return
    if text_typed:
        values = text.dropna()
        categories = sorted(values.astype(str).unique().tolist())
        if len(categories) > MAX_CATEGORIES or (unique and rows > MAX_CATEGORIES):
            inferred.left_out[name] = f"text with {len(categories)} distinct values (not a category)"
            return
        inferred.features[name] = {"type": "categorical", "categories": categories, **(
            {"nullable": True} if nullable else {})}
    else:
        if parquet:
            integer = pd.api.types.is_integer_dtype(typed)
        else:
            written = text.dropna().str.strip()
            integer = not written.str.contains(rf"[{re.escape(decimal)}eE]").any()
        usable = present[present.abs() <= LARGEST_MAGNITUDE]  # not inf, nor too large to compute with
        if len(usable) < len(present):
            shown = ", ".join(map(str, present[present.abs() > LARGEST_MAGNITUDE].unique()[:3]))
            inferred.warnings.append(f"column {name!r}: {len(present) - len(usable)} value(s) infinite or beyond "
                                     f"±{LARGEST_MAGNITUDE:g} (e.g. {shown}): validation refuses them; fix or remove "
                                     "those rows")
        if usable.empty:
            inferred.left_out[name] = f"no value is a finite number within ±{LARGEST_MAGNITUDE:g}"
            return
        inferred.features[name] = {"type": "integer" if integer else "numeric",
                                   "min": _as_number(usable.min(), integer), "max": _as_number(usable.max(), integer),
                                   **({"nullable": True} if nullable else {})}
    if names_a_personal_attribute(name):
        inferred.sensitive.append(name)


def names_a_personal_attribute(name: str) -> bool:
    """Whether a column's name says it is a person's protected attribute (a candidate sensitive attribute)."""
    found = {match.group(2).lower() for match in SENSITIVE.finditer(name)}
    return bool(found - {"age"}) or bool(found and not AGE_OF_A_THING.search(name))


def _time_column(name: str, formats: List[Optional[str]], nullable: bool, inferred: Inferred) -> None:
    """The first complete column of times that reads one way is the time column; others are left out."""
    if len(formats) > 1:
        inferred.left_out[name] = (f"dates that read as {' or as '.join(map(repr, formats))} (day and month "
                                   "cannot be told apart): declare time_column and time_format yourself")
    elif inferred.time_column is None and not nullable:
        inferred.time_column, inferred.time_format = name, formats[0]
    else:
        inferred.left_out[name] = "dates or times (a time column, not a feature)"


def _spec_text(data: Path, kind: str, target: str, positive: Any, negative: Any, share: float,
               typed: pd.DataFrame, inferred: Inferred) -> str:
    name = _problem_name(data)
    width = max(len(_flow(n)) for n in inferred.features) + 1
    out = [f"# A starting spec for {data}, written by `run.py init` from {len(typed)} rows. Check every line:",
           "# ranges and categories are what this file holds; CONFIRM the lines marked so.",
           "# Every key: docs/spec-reference.md (or `python run.py spec reference`).",
           "problem:",
           f"  name: {_flow(name)}",
           f"  objective: {_flow(f'Predict {target} = {positive} (to be described: what is decided with it)')}",
           "  business_metric: to be described (what a good decision is worth)",
           "  success_criteria:",
           "    - {metric: roc_auc, min: 0.7}   # the bar the model must clear: set yours",
           "",
           "evaluation:",
           "  # A version is promoted only if every gate passes (without gates, any version would be): the",
           "  # success criterion above as a gate. Add fairness gates once the sensitive attributes are declared.",
           "  gates:",
           "    - {metric: roc_auc, min: 0.7}",
           "",
           "data:",
           f"  source: {_flow({'kind': kind, 'path': str(data), **inferred.reading})}",
           "  # a relative path is read from the directory run.py is started in"]
    if inferred.reading:
        out.append(f"  # reading options detected from the file: {', '.join(inferred.reading)} (see the reference)")
    out += [f"  # CONFIRM: the positive class is the outcome the model predicts; here {positive!r} "
            f"({share:.0%} of the rows), {negative!r} is the other.",
            f"  target: {_flow({'column': target, 'positive': positive, 'negative': negative, 'positive_label': f'{target} is {positive}'})}",
            "  # CONFIRM, with the sensitive attributes below: data.target.favourable says which prediction",
            "  # benefits the person. `negative` when predicting the positive class harms them (credit: a predicted",
            "  # default declines the loan); `positive` when it helps (hiring: a predicted `hired`). It has no",
            "  # default and is required as soon as sensitive attributes are declared: add it to `target`, e.g.",
            "  #   target: {column: ..., positive: ..., negative: ..., favourable: negative}"]
    if inferred.id_column:
        out.append(f"  id_column: {_flow(inferred.id_column)}   # every value distinct: an id, not a feature")
    if inferred.time_column:
        out.append(f"  time_column: {_flow(inferred.time_column)}   # dates: needed for split.strategy time")
    if inferred.time_format:
        out.append(f"  time_format: {_flow(inferred.time_format)}   # how the file spells them (strftime codes)")
    out.append("  features:")
    for feature, spec in inferred.features.items():
        key = _flow(feature) + ":"
        out.append(f"    {key:<{width}} {_flow(spec)}")
    for column, why in inferred.left_out.items():
        out.append(f"    # {_flow(column)} left out: {why}")
    out += _sensitive_lines(inferred, typed)
    return "\n".join(out) + "\n"


def _sensitive_lines(inferred: Inferred, typed: pd.DataFrame) -> List[str]:
    out = ["  # CONFIRM the sensitive attributes: the protected characteristics whose groups fairness compares.",
           "  # keel cannot know them. Uncomment the ones that are (and add others), then set",
           "  # data.target.favourable above. A sensitive attribute stays out of the model's inputs unless",
           "  # `use_as_feature: true`."]
    candidates = [name for name in inferred.sensitive if name in inferred.features]
    if not candidates:
        return out + ["  # sensitive_attributes:", "  #   <column>: {categories: [<group>, ...]}"]
    out.append("  # sensitive_attributes:")
    for name in candidates:
        feature = inferred.features[name]
        if feature["type"] == "categorical":
            grouping: Dict[str, Any] = {"categories": feature["categories"]}
        else:
            grouping = {"bins": _bins(typed[name].dropna().astype(float)), "use_as_feature": True}
        out.append(f"  #   {_flow(name)}: {_flow(grouping)}")
    return out

"""Load the rows a spec names: the embedded generator, a CSV file (read with the spec's reading options),
Parquet (a file, a directory of partitions or a glob of files), or an SQL query."""

from __future__ import annotations

import csv
import glob
import hashlib
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import pandas as pd

from keel.spec.data import DataSpec, FileSource, GeneratorSource, SqlSource
from keel.spec.reading import CsvReading


class DataSourceError(ValueError):
    """The data source cannot be read; the message says which source and why."""


def one_line(error: object) -> str:
    """A library's error text on one line: readers' messages end in newlines, which cut a step's error
    short where only its last line is shown."""
    return " ".join(str(error).split())


def describe_source(data: DataSpec) -> str:
    source = data.source
    if isinstance(source, GeneratorSource):
        return (f"generator(rows={source.rows}, seed={source.seed}, "
                f"historical_bias={source.historical_bias}, covariate_shift={source.covariate_shift}, "
                f"concept_shift={source.concept_shift})")
    if isinstance(source, FileSource):
        options = source.given_options()
        shown = f" ({', '.join(f'{key}={value!r}' for key, value in options.items())})" if options else ""
        return f"{source.kind}:{Path(source.path).resolve()}{shown}"
    return f"sql:{redacted_url(source.url)} {source.query!r}"


def redacted_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported when it is used
        return "<unparsable url>"


def is_pattern(path: Path) -> bool:
    return any(character in str(path) for character in "*?[")


def pattern_base(pattern: Path) -> Path:
    """The directory a glob starts from (`data/year=*/part-*.parquet` -> `data`): partition folders are
    read below it."""
    text = str(pattern)
    first = min(text.index(c) for c in "*?[" if c in text)
    return Path(text[:first]).parent if not text[:first].endswith(("/", "\\")) else Path(text[:first])


def parquet_files(path: Path) -> List[Path]:
    """The files a parquet source names: itself, the files of a glob, or every file under a directory."""
    if is_pattern(path):
        return sorted(Path(match) for match in glob.glob(str(path), recursive=True) if Path(match).is_file())
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    return [path] if path.is_file() else []


def existing_parquet_files(path: Path) -> List[Path]:
    """`parquet_files`, or DataSourceError saying why there are none (no match, an empty directory, no file)."""
    files = parquet_files(path)
    if not files:
        if is_pattern(path):
            raise DataSourceError(f"{path}: no file matches the pattern")
        if path.is_dir():
            raise DataSourceError(f"{path}: the directory holds no parquet file")
        raise DataSourceError(f"{path}: no such data file")
    return files


def source_stamp(data: DataSpec) -> str:
    """Changes whenever the source's content changed; keys the ingest step's cache. A file source: the
    SHA-256 of its bytes (size and modification time are not enough: a file rewritten in place keeps both
    under `cp -p`, rsync or tar, and a cached read of the old rows would be trained on)."""
    import time

    source = data.source
    if isinstance(source, GeneratorSource):
        return "generator"  # the spec's parameters determine the rows
    if isinstance(source, FileSource):
        try:
            return fingerprint_files(source)
        except DataSourceError:  # no such file: not cached; the ingest step says what is missing
            return f"unreadable:{Path(source.path).resolve()}:{time.time_ns()}"
    return f"sql:{time.time_ns()}"  # a table can change at any time: never reuse a cached read


READ_BYTES = 1 << 20  # fingerprints stream files in 1 MiB reads


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as handle:
        while block := handle.read(READ_BYTES):
            digest.update(block)


def _relative_name(file: Path, base: Path) -> str:
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return file.as_posix()


def fingerprint_files(source: FileSource) -> str:
    """"sha256:<hex>" of a file source's bytes. A file: its bytes. A directory or glob of Parquet files:
    each file's name relative to it (sorted), size and bytes."""
    digest = hashlib.sha256()
    path = Path(source.path)
    try:
        if source.kind == "parquet" and (path.is_dir() or is_pattern(path)):
            base = path if path.is_dir() else pattern_base(path)
            files = parquet_files(path)
            if not files:
                raise DataSourceError(f"{path}: no parquet file to read")
            for file in files:
                digest.update(f"{_relative_name(file, base)}\0{file.stat().st_size}\0".encode())
                _hash_file(digest, file)
        else:
            _hash_file(digest, path)
    except OSError as error:
        raise DataSourceError(f"{path}: cannot be read ({one_line(error)})") from None
    return f"sha256:{digest.hexdigest()}"


# --- CSV -----------------------------------------------------------------------------------------


def read_csv_arguments(source: CsvReading) -> dict:
    """The spec's reading options as `pandas.read_csv` arguments. `index_col=False`: a line with more
    fields than there are columns is an error, not silently turned into an index."""
    missing = list(source.na_values) if source.keep_default_na else ["", *source.na_values]
    return {"sep": source.sep, "header": 0 if source.header else None, "names": source.names,
            "na_values": missing or None, "keep_default_na": source.keep_default_na,
            "skipinitialspace": source.skipinitialspace,
            "encoding": source.encoding, "comment": source.comment, "skiprows": source.skiprows,
            "decimal": source.decimal, "thousands": source.thousands, "index_col": False}


def first_records(source: CsvReading, count: int = 2) -> List[List[str]]:
    """The first `count` records of a CSV file as its reading options split them (the header line
    included when there is one), for the checks and hints that need no full read."""
    encoding = "utf-8-sig" if source.encoding.replace("_", "-").lower() in ("utf-8", "utf8") else source.encoding
    records: List[List[str]] = []
    with open(source.path, encoding=encoding, newline="") as handle:
        for _ in range(source.skiprows):
            if not handle.readline():
                break
        lines = (line for line in handle if line.strip() and not (source.comment and line.lstrip().startswith(
            source.comment)))
        reader = csv.reader(lines, delimiter=source.sep, skipinitialspace=source.skipinitialspace)
        for record in reader:
            if source.comment:
                record = _before_comment(record, source.comment)
            records.append(record)
            if len(records) == count:
                break
    return records


def _before_comment(record: List[str], comment: str) -> List[str]:
    for position, field in enumerate(record):
        if comment in field:
            return record[:position] + [field.split(comment, 1)[0]]
    return record


def check_names(source: CsvReading) -> None:
    """`names` must give one name per field: pandas would otherwise shift the columns without a word."""
    if not source.names:
        return
    records = first_records(source, 2)
    data = records[1:] if source.header else records[:1]
    if data and len(data[0]) != len(source.names):
        raise DataSourceError(
            f"{source.path}: `names` gives {len(source.names)} column(s) but the first data line has "
            f"{len(data[0])} field(s) ({', '.join(map(repr, data[0][:8]))}{', ...' if len(data[0]) > 8 else ''}); "
            f"give one name per field, in file order (sep is {source.sep!r})")


def check_header(source: CsvReading) -> None:
    """Each column named once in the header line: pandas would rename a repeat `x.1` and the file would
    be read with a column nobody declared. (With `names` given, the header line is replaced and
    `names` itself is checked unique by the spec; empty names are pandas' `Unnamed: N`, never repeats.)"""
    if not source.header or source.names:
        return
    try:
        records = first_records(source, 1)
    except (UnicodeDecodeError, csv.Error):  # not text, or not CSV: pandas' reading says so, as before
        return
    header = records[0] if records else []
    positions: dict = {}
    for position, name in enumerate(header, start=1):
        if name:
            positions.setdefault(name, []).append(position)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        shown = "; ".join(f"{name!r} at columns {', '.join(map(str, where))}" for name, where in repeated.items())
        raise DataSourceError(
            f"{source.path}: the header line names a column more than once ({shown}); each column needs its "
            f"own name: rename the repeats in the file, or declare the column `names` in file order under "
            f"data.source (they replace the header line)")


def _read_csv(source: FileSource, data: DataSpec) -> pd.DataFrame:
    path = Path(source.path)
    categorical = {n for n, f in data.features.items() if f.type == "categorical"}
    categorical |= {n for n, a in data.sensitive_attributes.items() if a.categories}
    dtypes = {name: "string" for name in categorical}
    if data.id_column:
        dtypes.setdefault(data.id_column, "string")
    try:
        check_names(source)
        check_header(source)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=dtypes, low_memory=False, **read_csv_arguments(source))
    except UnicodeDecodeError as error:
        raise DataSourceError(f"{path}: cannot be read as csv: not text in the encoding {source.encoding!r} "
                              f"({error.reason} at byte {error.start}); declare the file's `encoding` under "
                              "data.source, e.g. latin-1 or cp1252") from None
    except DataSourceError:  # the checks' own messages, not wrapped in "cannot be read"
        raise
    except pd.errors.ParserWarning as warning:
        raise DataSourceError(f"{path}: some lines have more fields than there are columns ({one_line(warning)}); check "
                              f"`sep` ({source.sep!r}) and `names`") from None
    except (pd.errors.ParserError, ValueError, OSError) as error:
        raise DataSourceError(f"{path}: cannot be read as csv ({one_line(error)})") from None
    return frame


def parse_times(values: pd.Series, time_format: str | None, where: str) -> pd.Series:
    """A time column's text as times: ISO 8601, or `time_format` when the spec declares one. A value that
    is neither is an error with examples (it used to become a missing value, and 13/01/2023 a complaint
    about missing values); an empty cell stays missing. Numbers are refused: 1704067200 would be read as
    nanoseconds after 1970 (1970-01-01 00:00:01.7), and keel does not guess their unit."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    if pd.api.types.is_numeric_dtype(values.dtype):
        examples = ", ".join(repr(v) for v in values.dropna().unique()[:3].tolist())
        raise DataSourceError(f"{where}: holds numbers (e.g. {examples}), not times: keel does not guess their "
                              "unit (seconds or milliseconds since 1970, a year?); store ISO 8601 text "
                              "(2024-01-01T00:00:00) or timestamps")
    if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
        return pd.to_datetime(values, errors="coerce")
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    parsed = pd.to_datetime(text.where(present), errors="coerce", format=time_format or "ISO8601")
    bad = text[present & parsed.isna()]
    if len(bad):
        examples = ", ".join(repr(v) for v in bad.unique()[:3])
        expected = f"times of the format {time_format!r} (data.time_format)" if time_format else "ISO 8601 times"
        hint = "" if time_format else (" (e.g. 2023-01-13 or 2023-01-13T05:00:00); declare how the file spells them "
                                        "as data.time_format, e.g. '%d/%m/%Y %H:%M' for 13/01/2023 05:00")
        raise DataSourceError(f"{where}: {len(bad)} value(s) are not {expected}: {examples}{hint}")
    return parsed


# --- Parquet -------------------------------------------------------------------------------------


def declared_columns(data: DataSpec) -> List[str]:
    """The columns a spec declares for training: the id, the features, the sensitive attributes, the
    target and the time column."""
    names = [data.id_column, *data.features, *data.sensitive_attributes, data.target.column, data.time_column]
    return list(dict.fromkeys(name for name in names if name))


def _hive_keys(file: Path, base: Path) -> List[str]:
    """The columns a file's partition folders give it (`year=2024/part-0.parquet` -> year)."""
    return [part.split("=", 1)[0] for part in Path(_relative_name(file, base)).parts[:-1] if "=" in part]


def file_columns(file: Path, base: Path) -> List[str]:
    """The columns one Parquet file holds (with its partition folders'), or DataSourceError naming the
    file: a truncated or corrupt file is refused, never left out of the rows read."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(file).names
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError and more for a file that is not parquet
        raise DataSourceError(f"{file}: cannot be read as parquet ({one_line(error)}); every file of the "
                              f"input is read, none is left out") from None
    return names + [key for key in _hive_keys(file, base) if key not in names]


def check_parquet_files(files: Sequence[Path], base: Path, declared: Iterable[str]) -> None:
    """Every file readable, and every declared column that any file holds held by all of them: pyarrow
    takes a dataset's columns from its first file and fills another file's missing column with nulls."""
    columns = {file: file_columns(file, base) for file in files}
    found = set().union(*columns.values())
    for file, names in columns.items():
        missing = [name for name in declared if name in found and name not in names]
        if missing:
            raise DataSourceError(
                f"{file}: has no column {', '.join(map(repr, missing))} (declared in the spec, held by the "
                f"input's other files); every file must hold the declared columns: "
                f"{columns_found_note(names, missing)}")


def parquet_dataset(path: Path, files: Sequence[Path], declared: Iterable[str] = ()):
    """The pyarrow dataset of a directory's or a glob's `files` (hive folders below it become columns),
    after `check_parquet_files`."""
    import pyarrow.dataset as ds

    base = path if path.is_dir() else (pattern_base(path) if is_pattern(path) else path.parent)
    check_parquet_files(files, base, list(declared))
    hive = "hive" if (path.is_dir() or is_pattern(path)) else None
    dataset = ds.dataset([str(f) for f in files], format="parquet", partitioning=hive, partition_base_dir=str(base))
    typed = _typed_where_first_file_is_null(dataset.schema, files)
    if typed is dataset.schema:
        return dataset
    return ds.dataset([str(f) for f in files], schema=typed, format="parquet", partitioning=hive,
                      partition_base_dir=str(base))


def _typed_where_first_file_is_null(schema, files: Sequence[Path]):
    """The dataset's schema (the first file's), with each column the first file holds only nulls in (type
    `null`: a nullable column empty there) given the first other file's type for it; `schema` itself when
    none is. Read as `null`, a later file's values of it could not be cast, and valid data was refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = [field.name for field in schema if pa.types.is_null(field.type)]
    if not empty:
        return schema
    found = {}
    for file in files[1:]:
        other = pq.read_schema(str(file))
        for name in empty:
            if name not in found and name in other.names and not pa.types.is_null(other.field(name).type):
                found[name] = other.field(name).type
        if len(found) == len(empty):
            break
    if not found:
        return schema
    return pa.schema([field.with_type(found[field.name]) if field.name in found else field for field in schema])


def _differing_columns(fragment, schema) -> List[str]:
    """The columns whose type here differs from the first file's and whose values do not convert to it
    (an integer column beside a float one reads fine and is not named); all differing ones when the file
    cannot be read to tell."""
    import pyarrow as pa

    differing = [field for field in fragment.physical_schema
                 if field.name in schema.names and schema.field(field.name).type != field.type]
    failing = []
    try:
        table = fragment.to_table(columns=[field.name for field in differing])
        for field in differing:
            try:
                table.column(field.name).cast(schema.field(field.name).type)
            except (pa.ArrowException, ValueError):
                failing.append(field)
    except (pa.ArrowException, OSError, ValueError):
        pass
    return [f"{field.name!r} ({field.type} here, {schema.field(field.name).type} in the input's first file)"
            for field in failing or differing]


def _kind(arrow_type) -> Optional[str]:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "numbers"
    return None


def _text_against_numbers(fragment, schema) -> List[str]:
    """The columns one file stores as text where the input's first file stores numbers, or the reverse:
    Arrow would cast "52000" to 52000.0 (and 52000 to "52000") and read the file as if it held the
    same data, hiding an export that changed a column's type."""
    own = fragment.physical_schema
    return [f"{field.name!r} ({_kind(field.type)} here, {_kind(schema.field(field.name).type)} in the input's "
            f"first file)" for field in own if field.name in schema.names
            and {_kind(field.type), _kind(schema.field(field.name).type)} == {"text", "numbers"}]


def fragment_table(fragment, schema):
    """One file (or row group) of a dataset in the dataset's `schema`, or DataSourceError naming the file
    and the column whose values do not fit the type the input's first file gives it, or that the file
    stores as text where the first file stores numbers (or the reverse)."""
    import pyarrow as pa

    mixed = _text_against_numbers(fragment, schema)
    if mixed:
        raise DataSourceError(f"{fragment.path}: cannot be read as parquet: column {', '.join(mixed)}; every "
                              f"file must store a column as the same kind of value")
    try:
        return fragment.to_table(schema=schema)
    except (pa.ArrowException, OSError, ValueError) as error:
        differing = _differing_columns(fragment, schema)
        column = f": column {', '.join(differing)}" if differing else ""
        raise DataSourceError(f"{fragment.path}: cannot be read as parquet{column} ({one_line(error)})") from None


def _read_parquet(source: FileSource, data: Optional[DataSpec] = None) -> pd.DataFrame:
    """A Parquet source's rows; with the spec (`data`), every file must hold its declared columns."""
    import pyarrow as pa

    path = Path(source.path)
    files = existing_parquet_files(path)
    if not is_pattern(path) and not path.is_dir():
        if path.stat().st_size == 0:
            raise DataSourceError(f"{path}: the file is empty")
    try:
        if len(files) == 1 and not path.is_dir():
            return pd.read_parquet(files[0])
        dataset = parquet_dataset(path, files, declared_columns(data) if data else ())
        tables = [fragment_table(fragment, dataset.schema) for fragment in dataset.get_fragments()]
        return pa.concat_tables(tables).to_pandas()
    except DataSourceError:
        raise
    except (pa.ArrowException, ValueError, OSError) as error:
        raise DataSourceError(f"{path}: cannot be read as parquet ({one_line(error)})") from None


def _read_file(source: FileSource, data: DataSpec) -> pd.DataFrame:
    path = Path(source.path)
    if source.kind == "parquet":
        return _read_parquet(source, data)
    if path.is_dir():
        raise DataSourceError(f"{path}: is a directory; a csv source reads one file (a directory of partitions: "
                              "kind parquet)")
    if not path.is_file():
        raise DataSourceError(f"{path}: no such data file")
    if path.stat().st_size == 0:
        raise DataSourceError(f"{path}: the file is empty")
    return _read_csv(source, data)


def _read_sql(source: SqlSource) -> pd.DataFrame:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(source.url)
        with engine.connect() as connection:
            return pd.read_sql_query(sqlalchemy.text(source.query), connection)
    except Exception as error:  # drivers raise many kinds; all mean "cannot read"
        raise DataSourceError(f"sql {redacted_url(source.url)}: cannot run the query ({one_line(error)})") from None


def load_frame(data: DataSpec) -> pd.DataFrame:
    """Read the spec's data source into a DataFrame, untouched apart from parsing."""
    source = data.source
    if isinstance(source, GeneratorSource):
        from keel.data.generator import generate_credit_applications

        return generate_credit_applications(source)
    if isinstance(source, FileSource):
        frame, where = _read_file(source, data), str(source.path)
    else:
        frame, where = _read_sql(source), f"sql {redacted_url(source.url)}"
    if data.time_column and data.time_column in frame:  # text times read one way, whatever the source
        frame[data.time_column] = parse_times(frame[data.time_column], data.time_format,
                                              f"{where}: column {data.time_column!r} (data.time_column)")
    return frame


# --- what was found, when columns are missing ----------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        float(text.strip().replace(",", "."))
    except ValueError:
        return False
    return True


def columns_found_note(found: Sequence[object], expected: Iterable[str], where: str = "data.source") -> str:
    """What to tell a user whose declared columns are missing: the columns found (quoted, so that spaces
    show) and, when the names give it away, the likely cause: a header-less file read with a header (data
    values as names), spaces after the separator, or a wrong separator. `where` is the spec key holding
    the reading options."""
    names = [str(name) for name in found]
    expected = list(expected)
    shown = ", ".join(repr(name) for name in names[:30]) + (f", ... ({len(names)} in all)" if len(names) > 30 else "")
    note = f"the columns found are {shown}" if names else "no columns were found"
    stripped = {name.strip(): name for name in names}
    spaced = [name for name in expected if name not in names and name in stripped and stripped[name] != name]
    numeric = [name for name in names if _is_number(name) and any(c.isdigit() for c in name)]
    if spaced:
        note += (f"; {repr(stripped[spaced[0]])} is {spaced[0]!r} with spaces around it: declare "
                 f"`skipinitialspace: true` under {where}")
    elif numeric and not set(expected) & set(names):
        note += (f"; the first line looks like data, not column names (e.g. {', '.join(map(repr, numeric[:3]))}): "
                 f"if the file has no header line, declare `header: false` and the column `names` in file "
                 f"order under {where}")
        if any(name != name.lstrip(" ") for name in names):
            note += " (the values start with a space after the separator: also `skipinitialspace: true`)"
    elif len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|", ",")):
        seps = [sep for sep in (";", "\t", "|", ",") if sep in names[0]]
        note += f"; one column whose name holds {seps[0]!r}: declare `sep: {seps[0]!r}` under {where}"
    return note

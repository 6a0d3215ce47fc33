"""Load the rows a spec names: the embedded generator, a CSV or Parquet file, or an SQL query."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from keel.spec.models import DataSpec, FileSource, GeneratorSource, SqlSource


class DataSourceError(ValueError):
    """The data source cannot be read; the message says which source and why."""


def describe_source(data: DataSpec) -> str:
    source = data.source
    if isinstance(source, GeneratorSource):
        return (f"generator(rows={source.rows}, seed={source.seed}, "
                f"historical_bias={source.historical_bias}, covariate_shift={source.covariate_shift}, "
                f"concept_shift={source.concept_shift})")
    if isinstance(source, FileSource):
        return f"{source.kind}:{Path(source.path).resolve()}"
    return f"sql:{_redacted(source.url)} {source.query!r}"


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported when it is used
        return "<unparsable url>"


def source_stamp(data: DataSpec) -> str:
    """Changes whenever the source's content may have changed; keys the ingest step's cache."""
    source = data.source
    if isinstance(source, GeneratorSource):
        return "generator"  # the spec's parameters determine the rows
    if isinstance(source, FileSource):
        path = Path(source.path)
        try:
            stat = path.stat()
        except OSError:
            return f"missing:{path.resolve()}"
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    import time

    return f"sql:{time.time_ns()}"  # a table can change at any time: never reuse a cached read


def _read_file(source: FileSource, data: DataSpec) -> pd.DataFrame:
    path = Path(source.path)
    if not path.is_file():
        raise DataSourceError(f"{path}: no such data file")
    if path.stat().st_size == 0:
        raise DataSourceError(f"{path}: the file is empty")
    try:
        if source.kind == "parquet":
            return pd.read_parquet(path)
        categorical = {n for n, f in data.features.items() if f.type == "categorical"}
        categorical |= {n for n, a in data.sensitive_attributes.items() if a.categories}
        dtypes = {name: "string" for name in categorical}
        if data.id_column:
            dtypes.setdefault(data.id_column, "string")
        frame = pd.read_csv(path, dtype=dtypes, low_memory=False)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as error:
        raise DataSourceError(f"{path}: cannot be read as {source.kind} ({error})") from None
    if data.time_column and data.time_column in frame:
        frame[data.time_column] = pd.to_datetime(frame[data.time_column], errors="coerce")
    return frame


def _read_sql(source: SqlSource) -> pd.DataFrame:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(source.url)
        with engine.connect() as connection:
            return pd.read_sql_query(sqlalchemy.text(source.query), connection)
    except Exception as error:  # drivers raise many kinds; all mean "cannot read"
        raise DataSourceError(f"sql {_redacted(source.url)}: cannot run the query ({error})") from None


def load_frame(data: DataSpec) -> pd.DataFrame:
    """Read the spec's data source into a DataFrame, untouched apart from parsing."""
    source = data.source
    if isinstance(source, GeneratorSource):
        from keel.data.generator import generate_credit_applications

        return generate_credit_applications(source)
    if isinstance(source, FileSource):
        return _read_file(source, data)
    return _read_sql(source)

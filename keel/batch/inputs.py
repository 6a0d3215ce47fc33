"""What a batch reads: the source a location names, its fingerprint, and its rows in bounded chunks.

The source models are the spec's own (`FileSource`, `SqlSource`), so a CSV batch is read with the
training data's reading options. Chunks come in input order and hold at most `chunk_rows` rows, so
memory does not grow with the input: Parquet is read as Arrow record batches (a directory or glob
part by part, in sorted file order), CSV with pandas' chunked reader, SQL with a streaming cursor."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
import pandas as pd

from keel.data.sources import (DataSourceError, redacted_url, check_header, check_names, existing_parquet_files,
                               fingerprint_files, is_pattern, one_line, parquet_dataset, parquet_files,
                               read_csv_arguments)
from keel.spec.data import CategoricalFeature, DataSpec, FileSource, SqlSource

DataSource = FileSource | SqlSource
SQL_FETCH_ROWS = 50_000  # rows per fetch when an SQL input is fingerprinted
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql", "duckdb", "snowflake",
               "redshift", "trino", "bigquery", "databricks", "cockroachdb", "db2", "teradata")


def _looks_like_url(location: str) -> bool:
    scheme = location.split("://", 1)[0] if "://" in location else ""
    return bool(scheme) and scheme.split("+", 1)[0].lower() in SQL_SCHEMES


def batch_source(location: str, data: DataSpec, query: Optional[str] = None) -> DataSource:
    """The source `location` names: a CSV or Parquet file, a directory or glob of Parquet files, or an
    SQLAlchemy URL (then `query` is required). A CSV is read with the reading options of the spec's
    own source when that is a CSV. One clear DataSourceError otherwise."""
    location = str(location)
    if _looks_like_url(location):
        if not query or not query.strip():
            raise DataSourceError(f"sql {redacted_url(location)}: a database input needs a query (the rows to score), "
                                  "e.g. --query 'SELECT * FROM applications'")
        return SqlSource(kind="sql", url=location, query=query)
    if query:
        raise DataSourceError(f"{location}: a query is only for a database input (an SQLAlchemy URL such as "
                              "sqlite:///applications.db); a file is read whole")
    path = Path(location)
    if is_pattern(path):
        if not parquet_files(path):
            raise DataSourceError(f"{path}: no file matches the pattern")
        return FileSource(kind="parquet", path=path)
    if path.is_dir():
        if not parquet_files(path):
            raise DataSourceError(f"{path}: the directory holds no parquet file")
        return FileSource(kind="parquet", path=path)
    if not path.is_file():
        raise DataSourceError(f"{path}: no such data file")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return FileSource(kind="parquet", path=path)
    if suffix in CSV_SUFFIXES:
        spec_source = data.source
        options = spec_source.given_options() if isinstance(spec_source, FileSource) and spec_source.kind == "csv" else {}
        return FileSource(kind="csv", path=path, **options)
    raise DataSourceError(f"{path}: unknown kind of file (suffix {path.suffix or 'none'!r}); a batch input is a "
                          f"CSV file ({', '.join(CSV_SUFFIXES)}), a Parquet file ({', '.join(PARQUET_SUFFIXES)}), a "
                          "directory or glob of Parquet files, or an SQLAlchemy URL with a query")


# --- fingerprint ---------------------------------------------------------------------------------


def fingerprint_input(source: DataSource) -> str:
    """"sha256:<hex>" of what a batch reads. A file, a directory or a glob: their bytes
    (keel.data.sources.fingerprint_files). An SQL query: the rows it returns, in the order it returns them
    (a query without ORDER BY may return the same rows in another order, hence another fingerprint)."""
    if isinstance(source, SqlSource):
        digest = hashlib.sha256()
        _hash_query(digest, source)
        return f"sha256:{digest.hexdigest()}"
    return fingerprint_files(source)


def _hash_query(digest, source: SqlSource) -> None:
    """The column names, then each row's values by their Python repr (1, 1.0, "1" and None differ),
    row by row: the same rows in the same order give the same hash whatever the fetch size."""
    with _sql_result(source) as result:
        digest.update(("\0".join(result.keys()) + "\n").encode())
        while rows := result.fetchmany(SQL_FETCH_ROWS):
            digest.update("".join(f"{tuple(row)!r}\n" for row in rows).encode("utf-8", "surrogatepass"))


# --- chunks --------------------------------------------------------------------------------------


def iter_chunks(source: DataSource, data: DataSpec, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The source's rows in input order, at most `chunk_rows` per frame. A source that cannot be read
    raises DataSourceError (at the first chunk, or where the reading fails)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, found {chunk_rows}")
    if isinstance(source, SqlSource):
        return _sql_chunks(source, chunk_rows)
    if source.kind == "parquet":
        return _parquet_chunks(source, data, chunk_rows)
    return _csv_chunks(source, data, chunk_rows)


def _text_columns(data: DataSpec) -> List[str]:
    """Columns read as text: categories are compared as text (as training validated them), ids are text."""
    names = [n for n, f in data.features.items() if isinstance(f, CategoricalFeature)]
    names += [n for n, a in data.sensitive_attributes.items() if a.categories and n not in names]
    return names + ([data.id_column] if data.id_column else [])


def _csv_chunks(source: FileSource, data: DataSpec, chunk_rows: int) -> Iterator[pd.DataFrame]:
    path = Path(source.path)
    if path.is_dir():
        raise DataSourceError(f"{path}: is a directory; a csv input is one file (a directory of parts: parquet)")
    if not path.is_file():
        raise DataSourceError(f"{path}: no such data file")
    if path.stat().st_size == 0:
        return
    dtypes = {name: "object" for name in _text_columns(data)}
    try:
        check_names(source)
        check_header(source)
        reader = pd.read_csv(path, dtype=dtypes, chunksize=chunk_rows, **read_csv_arguments(source))
    except DataSourceError:  # the checks' own messages, not wrapped in "cannot be read"
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError, UnicodeDecodeError) as error:
        raise _csv_error(source, error) from None
    with reader:
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    chunk = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, OSError, UnicodeDecodeError) as error:
                raise _csv_error(source, error) from None
            yield _numbers_from_text(chunk, data, source.decimal)


def _numbers_from_text(chunk: pd.DataFrame, data: DataSpec, decimal: str) -> pd.DataFrame:
    """A CSV cell is text: a numeric column that pandas left as text because some cells are not
    numbers gets its numbers back (read with the file's decimal mark), the other cells stay text for
    the contract to reject, instead of every row of the chunk being refused."""
    for name, feature in data.features.items():
        if isinstance(feature, CategoricalFeature) or name not in chunk.columns:
            continue
        column = chunk[name]
        if not pd.api.types.is_object_dtype(column.dtype):
            continue
        present = column.notna().to_numpy()
        text = column.where(present, None).astype(object)
        candidate = text[present].astype(str).str.strip()
        if decimal != ".":
            candidate = candidate.where(~candidate.str.contains(".", regex=False), "not a number")
            candidate = candidate.str.replace(decimal, ".", regex=False)
        numbers = pd.to_numeric(candidate, errors="coerce")
        values = text.to_numpy(dtype=object).copy()
        parsed = numbers.notna().to_numpy()
        positions = np.flatnonzero(present)[parsed]
        values[positions] = numbers.to_numpy()[parsed]
        chunk[name] = pd.Series(values, index=chunk.index, dtype=object)
    return chunk


def _csv_error(source: FileSource, error: Exception) -> DataSourceError:
    path = source.path
    if isinstance(error, UnicodeDecodeError):
        return DataSourceError(f"{path}: cannot be read as csv: not text in the encoding {source.encoding!r} "
                               f"({error.reason} at byte {error.start}); declare the file's `encoding` under "
                               "data.source, e.g. latin-1 or cp1252")
    if isinstance(error, pd.errors.ParserWarning):
        return DataSourceError(f"{path}: some lines have more fields than there are columns ({one_line(error)}); "
                               f"check `sep` ({source.sep!r}) and `names`")
    return DataSourceError(f"{path}: cannot be read as csv ({one_line(error)})")


def arrow_to_frame(batch, id_column: Optional[str]) -> pd.DataFrame:
    import pyarrow as pa

    if id_column and id_column in batch.schema.names:
        position = batch.schema.get_field_index(id_column)
        column = batch.column(position)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            # ids are text (as in the prediction log); cast in Arrow so that an integer id with gaps
            # stays "17", not the "17.0" of a float column.
            column = column.cast(pa.string())
            batch = _as_text_in_pandas_metadata(batch.set_column(position, id_column, column), id_column)
    return batch.to_pandas(split_blocks=True, self_destruct=False)


def _as_text_in_pandas_metadata(batch, column: str):
    """The batch with `column` recorded as text in the pandas metadata a file written by pandas carries:
    else `to_pandas` restores the column's original dtype (a nullable Int64 id) onto the text and fails."""
    import json

    metadata = dict(batch.schema.metadata or {})
    if b"pandas" not in metadata:
        return batch
    described = json.loads(metadata[b"pandas"])
    for entry in described.get("columns", []):
        if entry.get("name") == column:
            entry.update(pandas_type="unicode", numpy_type="object", metadata=None)
    metadata[b"pandas"] = json.dumps(described).encode()
    return batch.replace_schema_metadata(metadata)


def scoring_columns(data: DataSpec) -> List[str]:
    """The columns scoring can use: the features, the sensitive attributes, the id."""
    identity = [data.id_column] if data.id_column else []
    return list(dict.fromkeys([*data.features, *data.sensitive_attributes, *identity]))


def columns_to_read(names: List[str], data: DataSpec) -> Optional[List[str]]:
    """The columns scoring can use (features, sensitive attributes, the id), in file order; None (all)
    when some are absent, so that the error naming them can show every column found."""
    wanted = set(scoring_columns(data))
    if not wanted <= set(names):
        return None
    return [name for name in names if name in wanted]


def fragment_schema(fragment, schema):
    """The schema one file is read with: its own columns with its own types (a numeric column stored
    as text in this file stays text, so that a value that is no number is one row's reject, not a
    failed cast of the whole input), then the dataset's other columns (its partition folders')."""
    import pyarrow as pa

    own = fragment.physical_schema
    return pa.schema(list(own) + [field for field in schema if field.name not in own.names])


def parquet_chunk(batch, data: DataSpec) -> pd.DataFrame:
    """A Parquet record batch as a chunk to check: ids as text, and a numeric feature stored as text
    read as a CSV's is (its numbers back, the other values left for the contract to reject)."""
    return _numbers_from_text(arrow_to_frame(batch, data.id_column), data, ".")


def _parquet_chunks(source: FileSource, data: DataSpec, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(source.path)
    files = existing_parquet_files(path)
    try:
        if len(files) == 1 and not path.is_dir() and not is_pattern(path):
            if path.stat().st_size == 0:
                raise DataSourceError(f"{path}: the file is empty")
            parquet = pq.ParquetFile(path)
            batches = parquet.iter_batches(batch_size=chunk_rows,
                                           columns=columns_to_read(parquet.schema_arrow.names, data))
            for batch in batches:
                if batch.num_rows:
                    yield parquet_chunk(batch, data)
            return
        dataset = parquet_dataset(path, files, scoring_columns(data))
        # The files in sorted order, each read with its own types and its batches in its own order;
        # little read-ahead, so that memory stays a few chunks.
        for fragment in dataset.get_fragments():
            schema = fragment_schema(fragment, dataset.schema)
            try:
                batches = fragment.to_batches(schema=schema, columns=columns_to_read(schema.names, data),
                                              batch_size=chunk_rows, batch_readahead=1, fragment_readahead=1)
                for batch in batches:
                    if batch.num_rows:
                        yield parquet_chunk(batch, data)
            except (pa.ArrowException, ValueError, OSError) as error:
                raise DataSourceError(f"{fragment.path}: cannot be read as parquet ({one_line(error)})") from None
    except DataSourceError:
        raise
    except (pa.ArrowException, ValueError, OSError) as error:
        raise DataSourceError(f"{path}: cannot be read as parquet ({one_line(error)})") from None


class _sql_result:
    """A query's result streamed from the server (a server-side cursor where the driver has one)."""

    def __init__(self, source: SqlSource):
        self.source = source

    def __enter__(self):
        import sqlalchemy

        try:
            self.engine = sqlalchemy.create_engine(self.source.url)
            self.connection = self.engine.connect().execution_options(stream_results=True)
            return self.connection.execute(sqlalchemy.text(self.source.query))
        except Exception as error:  # drivers raise many kinds; all mean "cannot read"
            self.__exit__(None, None, None)
            raise _sql_error(self.source, error) from None

    def __exit__(self, *exc):
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.dispose()
        return False


def _sql_error(source: SqlSource, error: Exception) -> DataSourceError:
    return DataSourceError(f"sql {redacted_url(source.url)}: cannot run the query ({one_line(error)})")


def _sql_chunks(source: SqlSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with _sql_result(source) as result:
        columns = list(result.keys())
        while True:
            try:
                rows = result.fetchmany(chunk_rows)
            except Exception as error:
                raise _sql_error(source, error) from None
            if not rows:
                return
            # Typed per chunk from the values (the contract judges each value, whatever the type).
            yield pd.DataFrame.from_records(rows, columns=columns, coerce_float=False)

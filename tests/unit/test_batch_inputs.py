"""Batch inputs (keel.batch.inputs): each kind of source read in bounded chunks in input order, with
the spec's reading options, and fingerprinted independently of the chunk size."""

import hashlib
import sqlite3

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.batch import inputs
from keel.batch.inputs import batch_source, fingerprint_input, iter_chunks
from keel.data.sources import DataSourceError
from keel.spec.data import DataSpec, FileSource, SqlSource


def _data(source: dict) -> DataSpec:
    return DataSpec.model_validate({
        "source": source,
        "target": {"column": "label", "positive": "yes", "negative": "no"},
        "id_column": "key",
        "features": {"amount": {"type": "numeric", "min": 0},
                     "kind": {"type": "categorical", "categories": ["a b", "c"], "nullable": True}},
    })


CSV_DATA = _data({"kind": "csv", "path": "training.csv", "sep": ";", "decimal": ","})
PARQUET_DATA = _data({"kind": "parquet", "path": "training.parquet"})


def _frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"key": [f"k{i}" for i in range(start, start + rows)],
                         "amount": [i + 0.5 for i in range(start, start + rows)],
                         "kind": ["a b" if i % 3 else None for i in range(start, start + rows)],
                         "label": ["yes" if i % 2 else "no" for i in range(start, start + rows)]})


def _read(source, data, chunk_rows):
    chunks = list(iter_chunks(source, data, chunk_rows))
    assert all(0 < len(chunk) <= chunk_rows for chunk in chunks)
    return chunks, (pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame())


def test_a_csv_is_read_in_chunks_with_the_specs_reading_options(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("key;amount;kind;label\nk1;1,5;a b;no\nk2;2,25;;yes\nk3;oops;c;no\n007;4,0;c;yes\nk5;5,5;a b;no\n")
    source = batch_source(str(path), CSV_DATA)
    assert source.kind == "csv" and source.sep == ";" and source.decimal == ","
    chunks, frame = _read(source, CSV_DATA, 2)
    assert len(chunks) == 3
    # Numbers read with the decimal comma, even in the chunk where a cell is not a number.
    assert frame["amount"].tolist() == [1.5, 2.25, "oops", 4.0, 5.5]
    assert frame["key"].tolist() == ["k1", "k2", "k3", "007", "k5"]  # ids stay text ("007", not 7)
    assert frame["kind"][0] == "a b" and pd.isna(frame["kind"][1]) and frame["kind"][2] == "c"


def test_a_csv_without_the_specs_options_when_the_spec_reads_parquet(tmp_path):
    path = tmp_path / "batch.csv"
    _frame(0, 5).to_csv(path, index=False)
    source = batch_source(str(path), PARQUET_DATA)
    assert source.given_options() == {}
    assert _read(source, PARQUET_DATA, 100)[1]["amount"].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_a_parquet_file_is_read_in_bounded_chunks_in_order(tmp_path):
    path = tmp_path / "batch.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(0, 25), preserve_index=False), path, row_group_size=10)
    chunks, frame = _read(batch_source(str(path), PARQUET_DATA), PARQUET_DATA, 4)
    assert frame["key"].tolist() == [f"k{i}" for i in range(25)]
    assert len(chunks) >= 7


def test_a_parquet_id_of_pandas_nullable_integers_is_read_as_text(tmp_path):
    """pandas writes its dtype (Int64) into the file; restored onto the ids cast to text, it failed
    ("Expected array of Int64 type, got string instead") while training read the same file."""
    frame = _frame(0, 6).assign(key=pd.array([17, 2, None, 40, 5, 6], dtype="Int64"))
    frame.to_parquet(tmp_path / "batch.parquet", index=False)
    _, read = _read(batch_source(str(tmp_path / "batch.parquet"), PARQUET_DATA), PARQUET_DATA, 4)
    assert read["key"].tolist() == ["17", "2", None, "40", "5", "6"]
    assert read["amount"].tolist() == frame["amount"].tolist()


def _parts(folder, sizes):
    folder.mkdir()
    start = 0
    for number, size in enumerate(sizes):
        _frame(start, size).to_parquet(folder / f"part-{number:03d}.parquet", index=False)
        start += size
    return start


def test_a_directory_and_a_glob_of_parts_are_read_part_by_part_in_sorted_file_order(tmp_path):
    rows = _parts(tmp_path / "parts", [7, 1, 12, 3, 9, 5, 2, 11, 4, 6, 8, 10])
    (tmp_path / "parts" / "_SUCCESS").write_text("")  # markers are not data
    for location in (tmp_path / "parts", tmp_path / "parts" / "part-*.parquet"):
        source = batch_source(str(location), PARQUET_DATA)
        assert source.kind == "parquet"
        chunks, frame = _read(source, PARQUET_DATA, 5)
        assert frame["key"].tolist() == [f"k{i}" for i in range(rows)]


def test_hive_partition_folders_become_columns(tmp_path):
    for kind, start in (("a b", 0), ("c", 3)):
        folder = tmp_path / "parts" / f"kind={kind}"
        folder.mkdir(parents=True)
        _frame(start, 3).drop(columns=["kind"]).to_parquet(folder / "part-0.parquet", index=False)
    _, frame = _read(batch_source(str(tmp_path / "parts"), PARQUET_DATA), PARQUET_DATA, 2)
    assert frame["kind"].astype(str).tolist() == ["a b"] * 3 + ["c"] * 3


def test_an_sqlite_query_is_read_in_chunks_and_fingerprinted_by_its_rows(tmp_path, monkeypatch):
    database = tmp_path / "batch.db"
    with sqlite3.connect(database) as connection:
        _frame(0, 23).to_sql("applications", connection, index=False)
    url = f"sqlite:///{database}"
    source = batch_source(url, PARQUET_DATA, query="SELECT * FROM applications ORDER BY rowid")
    assert isinstance(source, SqlSource)
    chunks, frame = _read(source, PARQUET_DATA, 5)
    assert len(chunks) == 5 and frame["key"].tolist() == [f"k{i}" for i in range(23)]
    assert frame["amount"].dtype == "float64"
    whole = fingerprint_input(source)
    monkeypatch.setattr(inputs, "SQL_FETCH_ROWS", 3)
    assert fingerprint_input(source) == whole
    reversed_rows = SqlSource(kind="sql", url=url, query="SELECT * FROM applications ORDER BY rowid DESC")
    assert fingerprint_input(reversed_rows) != whole  # the query's row order is part of what was scored
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE applications SET amount = 1 WHERE key = 'k7'")
    assert fingerprint_input(source) != whole


def test_a_file_fingerprint_is_the_sha256_of_its_bytes_and_a_directory_covers_names_and_bytes(tmp_path):
    path = tmp_path / "batch.csv"
    _frame(0, 5).to_csv(path, index=False)
    assert fingerprint_input(batch_source(str(path), CSV_DATA)) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    _parts(tmp_path / "parts", [3, 4])
    source = batch_source(str(tmp_path / "parts"), PARQUET_DATA)
    first = fingerprint_input(source)
    assert first == fingerprint_input(source)
    (tmp_path / "parts" / "part-001.parquet").rename(tmp_path / "parts" / "part-009.parquet")
    assert fingerprint_input(source) != first  # a renamed part is another input (another order)
    moved = tmp_path / "elsewhere"
    (tmp_path / "parts").rename(moved)
    (moved / "part-009.parquet").rename(moved / "part-001.parquet")
    assert fingerprint_input(batch_source(str(moved), PARQUET_DATA)) == first  # where it lies does not count


@pytest.mark.parametrize("location, query, message", [
    ("missing.parquet", None, "no such data file"),
    ("notes.json", None, "unknown kind of file"),
    ("sqlite:///x.db", None, "needs a query"),
    ("batch.csv", "SELECT 1", "only for a database input"),
    ("empty_dir", None, "holds no parquet file"),
    ("nothing-*.parquet", None, "no file matches"),
])
def test_a_location_that_names_no_readable_input_is_one_clear_error(tmp_path, monkeypatch, location, query, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "batch.csv").write_text("a\n1\n")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataSourceError, match=message):
        batch_source(location, PARQUET_DATA, query=query)


def test_unreadable_content_is_a_data_source_error_not_a_crash(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataSourceError, match="cannot be read as parquet"):
        list(iter_chunks(FileSource(kind="parquet", path=broken), PARQUET_DATA, 10))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("key,amount,kind\nk\xe9,1,c\n".encode("latin-1"))
    with pytest.raises(DataSourceError, match="encoding"):
        list(iter_chunks(FileSource(kind="csv", path=latin), PARQUET_DATA, 10))
    with pytest.raises(DataSourceError, match="cannot run the query"):
        list(iter_chunks(SqlSource(kind="sql", url=f"sqlite:///{tmp_path / 'none.db'}", query="SELECT * FROM t"),
                         PARQUET_DATA, 10))


def test_the_specs_column_names_are_checked_against_the_file(tmp_path):
    data = _data({"kind": "csv", "path": "training.csv", "header": False, "names": ["key", "amount", "kind"]})
    path = tmp_path / "batch.csv"
    path.write_text("k1,1.5,c,surplus\n")
    with pytest.raises(DataSourceError, match="`names` gives 3 column"):
        list(iter_chunks(batch_source(str(path), data), data, 10))


def test_an_empty_file_and_a_header_only_file_give_no_rows(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert list(iter_chunks(FileSource(kind="csv", path=empty), PARQUET_DATA, 10)) == []
    header = tmp_path / "header.csv"
    header.write_text("key,amount,kind\n")
    assert sum(len(c) for c in iter_chunks(FileSource(kind="csv", path=header), PARQUET_DATA, 10)) == 0

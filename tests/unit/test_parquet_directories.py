"""A directory of Parquet files read by the local engine, for training (keel.data.sources.load_frame) and
for batch scoring (keel.batch.inputs.iter_chunks): every file is read or the input is refused naming the
file; a file lacking a declared column the others hold is refused naming the file and the column (pyarrow
would fill it with nulls); a numeric column stored as text in one file names the file and the column in
training, and in scoring its values that are no number are row rejects."""

import pandas as pd
import pytest

from keel.batch.contract import check_chunk
from keel.batch.inputs import batch_source, iter_chunks
from keel.data.sources import DataSourceError, load_frame
from keel.spec.data import DataSpec


def _data(path) -> DataSpec:
    return DataSpec.model_validate({
        "source": {"kind": "parquet", "path": str(path)},
        "target": {"column": "label", "positive": "yes", "negative": "no"},
        "id_column": "key",
        "features": {"amount": {"type": "numeric", "min": 0, "nullable": True},
                     "kind": {"type": "categorical", "categories": ["a", "c"], "nullable": True}},
    })


def _frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"key": [f"k{i}" for i in range(start, start + rows)],
                         "amount": [i + 0.5 for i in range(start, start + rows)],
                         "kind": ["a" if i % 3 else "c" for i in range(start, start + rows)],
                         "label": ["yes" if i % 2 else "no" for i in range(start, start + rows)]})


def _parts(folder, frames):
    folder.mkdir()
    for i, frame in enumerate(frames):
        frame.to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def _scored_rows(folder):
    data = _data(folder)
    return pd.concat(list(iter_chunks(batch_source(str(folder), data), data, 4)), ignore_index=True)


@pytest.fixture
def parts(tmp_path):
    return _parts(tmp_path / "parts", [_frame(0, 10), _frame(10, 10), _frame(20, 10)])


def _truncate(file):
    file.write_bytes(file.read_bytes()[:-40])


def test_a_truncated_file_refuses_training_naming_it(parts):
    _truncate(parts / "part-1.parquet")
    with pytest.raises(DataSourceError, match=r"part-1\.parquet: cannot be read as parquet"):
        load_frame(_data(parts))


def test_a_truncated_file_refuses_the_batch_naming_it(parts):
    _truncate(parts / "part-2.parquet")
    with pytest.raises(DataSourceError, match=r"part-2\.parquet: cannot be read as parquet"):
        _scored_rows(parts)


@pytest.mark.parametrize("file", ["part-0.parquet", "part-1.parquet"])  # the first file too: no luck of order
@pytest.mark.parametrize("column", ["kind", "label"])
def test_a_file_without_a_declared_column_refuses_training_naming_file_and_column(parts, file, column):
    pd.read_parquet(parts / file).drop(columns=column).to_parquet(parts / file, index=False)
    with pytest.raises(DataSourceError, match=rf"{file}: has no column '{column}'"):
        load_frame(_data(parts))


@pytest.mark.parametrize("file", ["part-0.parquet", "part-2.parquet"])
def test_a_file_without_a_declared_column_refuses_the_batch_naming_file_and_column(parts, file):
    pd.read_parquet(parts / file).drop(columns="kind").assign(extra=1).to_parquet(parts / file, index=False)
    with pytest.raises(DataSourceError, match=rf"{file}: has no column 'kind'"):
        _scored_rows(parts)


def test_an_undeclared_column_in_one_file_is_ignored(parts):
    pd.read_parquet(parts / "part-1.parquet").assign(note="x").to_parquet(parts / "part-1.parquet", index=False)
    assert len(load_frame(_data(parts))) == 30
    assert len(_scored_rows(parts)) == 30


def test_a_declared_column_from_partition_folders_is_held_by_every_file(tmp_path):
    folder = tmp_path / "parts"
    for i, kind in enumerate(["a", "c"]):
        (folder / f"kind={kind}").mkdir(parents=True)
        _frame(i * 10, 10).drop(columns="kind").to_parquet(folder / f"kind={kind}" / "part.parquet", index=False)
    assert sorted(load_frame(_data(folder))["kind"].astype(str).unique()) == ["a", "c"]


def _with_text_amounts(parts):
    text = pd.read_parquet(parts / "part-1.parquet")
    text["amount"] = [str(v) for v in text["amount"]]
    text.loc[[2, 5], "amount"] = "unknown"
    text.to_parquet(parts / "part-1.parquet", index=False)


def test_text_in_a_numeric_column_of_one_file_refuses_training_naming_file_and_column(parts):
    _with_text_amounts(parts)
    with pytest.raises(DataSourceError, match=r"part-1\.parquet: cannot be read as parquet: column 'amount'"):
        load_frame(_data(parts))


def test_text_in_a_numeric_column_of_one_file_rejects_only_its_rows_that_are_no_number(parts):
    _with_text_amounts(parts)
    rows = _scored_rows(parts)
    good, rejects = check_chunk(rows, _data(parts), 0)
    assert rejects["row"].tolist() == [12, 15] and set(rejects["field"]) == {"amount"}
    assert rejects["found"].tolist() == ["unknown", "unknown"]
    assert len(good) == 28 and good.loc[13, "amount"] == 13.5  # the file's other values are its numbers


@pytest.mark.parametrize("text_file", ["part-0", "part-1"])
def test_a_numeric_column_stored_as_text_in_one_file_refuses_training_though_every_value_is_a_number(parts, text_file):
    """helper-62: part-1 holding every amount as text ("10.5") was read as numbers (Arrow casts), though
    the README says a numeric column stored as text stops training. The reverse order (text in the first
    file) is refused alike; batch scoring still reads each file with its own types."""
    text = pd.read_parquet(parts / f"{text_file}.parquet")
    text["amount"] = [str(v) for v in text["amount"]]
    text.to_parquet(parts / f"{text_file}.parquet", index=False)
    other = "part-0" if text_file == "part-1" else "part-1"
    blamed, kinds = (text_file, "text here, numbers") if text_file == "part-1" else (other, "numbers here, text")
    with pytest.raises(DataSourceError, match=rf"{blamed}\.parquet: cannot be read as parquet: column 'amount' "
                                              rf"\({kinds} in the input's first file\)"):
        load_frame(_data(parts))
    assert len(_scored_rows(parts)) == 30


def test_a_column_that_cannot_be_read_is_named_without_the_harmless_differences_beside_it(tmp_path):
    """helper-62: the message listed every column typed differently, harmless ones first ('amount' int64
    here, double in the first file); it names the column whose values do not convert."""
    odd = _frame(10, 10).assign(amount=range(10, 20), kind=[["a"]] * 10)  # integers: read as the floats they are
    folder = _parts(tmp_path / "parts", [_frame(0, 10), odd])
    with pytest.raises(DataSourceError) as refused:
        load_frame(_data(folder))
    message = str(refused.value)
    assert message.startswith(f"{folder / 'part-1.parquet'}: cannot be read as parquet: column 'kind' (list<")
    assert "'amount'" not in message


def test_a_nullable_column_empty_throughout_the_first_file_takes_the_type_the_other_files_give_it(tmp_path):
    """helper-62: a nullable category all-null in part-0 (stored as type `null`) refused training, blaming
    the good part-1 ("string here, null in the input's first file"); the same rows in another file order
    trained. Training and batch scoring now read it whatever the order."""
    empty_first = _frame(0, 10).assign(kind=pd.Series([None] * 10, dtype=object),
                                       amount=pd.Series([None] * 10, dtype=object))
    folder = _parts(tmp_path / "parts", [empty_first, _frame(10, 10), _frame(20, 10)])
    frame = load_frame(_data(folder))
    assert len(frame) == 30 and frame["kind"].iloc[:10].isna().all() and frame["amount"].iloc[:10].isna().all()
    assert frame["kind"].iloc[10:].tolist() == _frame(10, 20)["kind"].tolist()
    assert frame["amount"].iloc[10:].tolist() == _frame(10, 20)["amount"].tolist()
    assert _scored_rows(folder)["kind"].iloc[10:].tolist() == _frame(10, 20)["kind"].tolist()

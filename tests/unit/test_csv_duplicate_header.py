"""A CSV header naming a column twice is refused when the file is read (pandas would rename the repeat
`x.1` and train on a column nobody declared), as the spec's reading options split the header line."""

import pytest

from keel.data.sources import DataSourceError, load_frame
from keel.spec import validate_spec

FEATURES = {"x": {"type": "numeric"}, "y": {"type": "numeric"}}
TARGET = {"column": "label", "positive": 1, "negative": 0}


def _data(source):
    raw = {"problem": {"name": "dup", "objective": "o", "business_metric": "b",
                       "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
           "data": {"source": source, "target": TARGET, "features": FEATURES}}
    return validate_spec(raw, "dup.yaml").data


def _load(tmp_path, text, written_as="utf-8", **options):
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode(written_as))
    return path, load_frame(_data({"kind": "csv", "path": str(path), **options}))


def test_a_repeated_header_column_is_refused_naming_the_file_the_column_and_where(tmp_path):
    with pytest.raises(DataSourceError) as raised:
        _load(tmp_path, "x,y,label,x\n1,2,0,3\n4,5,1,6\n")
    message = str(raised.value)
    assert str(tmp_path / "data.csv") in message
    assert "'x' at columns 1, 4" in message and "more than once" in message
    assert "cannot be read as csv" not in message  # the check's own words, not wrapped


def test_the_header_is_split_with_the_spec_reading_options(tmp_path):
    """Preamble lines, a comment line, `;` and spaces after the separator; a byte-order mark before the
    first name (without its handling '\ufeffx' and 'x' would differ); another encoding."""
    preamble = "exported 2026-01-01\n# columns follow\nx; y; label; x\n1; 2; 0; 3\n"
    with pytest.raises(DataSourceError, match=r"'x' at columns 1, 4"):
        _load(tmp_path, preamble, sep=";", skiprows=1, comment="#", skipinitialspace=True)
    with pytest.raises(DataSourceError, match=r"'x' at columns 1, 4"):
        _load(tmp_path, "\ufeffx;y;label;x\n1;2;0;3\n", sep=";")
    latin = "x;y;label;\u00e9t\u00e9;\u00e9t\u00e9\n1;2;0;3;4\n"
    with pytest.raises(DataSourceError, match="'\u00e9t\u00e9' at columns 4, 5"):
        _load(tmp_path, latin, written_as="latin-1", sep=";", encoding="latin-1")


def test_names_that_differ_as_pandas_reads_them_are_not_repeats(tmp_path):
    """Without skipinitialspace ' x' is another name than 'x' (pandas keeps both as they are); empty
    names are pandas' distinct `Unnamed: N` columns."""
    _, frame = _load(tmp_path, "x,y,label, x,,\n1,2,0,3,,\n")
    assert list(frame.columns[:4]) == ["x", "y", "label", " x"]


def test_a_headerless_file_and_declared_names_are_not_checked_against_the_first_line(tmp_path):
    """Header-less: the first line is data (repeated values are normal); header with `names`: the names
    replace the file's header line, repeats and all."""
    _, frame = _load(tmp_path, "1,1,0\n2,2,1\n", header=False, names=["x", "y", "label"])
    assert list(frame.columns) == ["x", "y", "label"] and frame["x"].tolist() == [1, 2]
    _, frame = _load(tmp_path, "a,a,a\n1,2,0\n", names=["x", "y", "label"])
    assert list(frame.columns) == ["x", "y", "label"] and frame["y"].tolist() == [2]

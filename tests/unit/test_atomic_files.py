"""keel.files.write_atomically: a reader sees the old content or the new, never part of either."""

import os

import pytest

from keel import files
from keel.files import write_atomically


def test_writes_bytes_and_text_and_replaces_old_content(tmp_path):
    target = tmp_path / "state.json"
    write_atomically(target, b'{"a": 1}')
    assert target.read_bytes() == b'{"a": 1}'
    write_atomically(target, "{\"b\": \"é\"}")
    assert target.read_text(encoding="utf-8") == "{\"b\": \"é\"}"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_crash_while_writing_leaves_the_old_content_and_no_debris(tmp_path, monkeypatch):
    target = tmp_path / "routing.json"
    target.write_bytes(b"old")

    def crash(descriptor):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_atomically(target, b"new content that never lands")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["routing.json"]


def test_a_crash_before_the_rename_leaves_the_old_content(tmp_path, monkeypatch):
    target = tmp_path / "routing.json"
    target.write_bytes(b"old")

    def crash(source, destination):
        raise OSError("killed before rename")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="killed before rename"):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["routing.json"]


def test_exclusive_creates_once_and_refuses_an_existing_name(tmp_path):
    target = tmp_path / "abc.parquet"
    write_atomically(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomically(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["abc.parquet"]

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


def test_a_local_data_version_is_created_once_without_debris(tmp_path):
    import pandas as pd

    from keel.governance.data_versions import load_data_version, store_data_version

    frame = pd.DataFrame({"x": [1, 2, 3]})
    uri, written = store_data_version(frame, "abc123", str(tmp_path))
    assert written and uri == f"{tmp_path}/abc123.parquet"
    assert store_data_version(frame, "abc123", str(tmp_path)) == (uri, False)
    assert load_data_version(uri).equals(frame)
    assert os.listdir(tmp_path) == ["abc123.parquet"]


def test_a_data_version_stored_meanwhile_by_another_run_is_kept(tmp_path, monkeypatch):
    import pandas as pd
    from zenml.io import fileio

    from keel.governance.data_versions import store_data_version

    (tmp_path / "abc123.parquet").write_bytes(b"the other run's bytes")
    monkeypatch.setattr(fileio, "exists", lambda path: False)  # the other run wrote after our check
    uri, written = store_data_version(pd.DataFrame({"x": [1]}), "abc123", str(tmp_path))
    assert not written
    assert (tmp_path / "abc123.parquet").read_bytes() == b"the other run's bytes"
    assert os.listdir(tmp_path) == ["abc123.parquet"]


def test_a_written_file_gets_the_mode_open_would_give_it_not_mkstemps_0600(tmp_path):
    """helper-57: audit records were 0600, so a second OS account (the approver under maker-checker on the
    local stack) got PermissionError from `approve` and `audit verify`."""
    import os

    from keel.files import write_atomically

    previous = os.umask(0o022)
    try:
        write_atomically(tmp_path / "record.json", "{}")
        write_atomically(tmp_path / "kept.json", "{}", exclusive=True)
        os.umask(0o077)
        write_atomically(tmp_path / "private.json", "{}")
    finally:
        os.umask(previous)
    assert oct((tmp_path / "record.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "kept.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "private.json").stat().st_mode & 0o777) == oct(0o600)

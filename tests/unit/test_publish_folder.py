"""keel.files.publish_folder: a finished folder takes its final name by one rename, replacing what was
there without ever mixing old and new files; the one way the batch outputs and batches publish."""

import os

import pytest

from keel import files
from keel.files import publish_folder


def _folder(path, names):
    path.mkdir()
    for name in names:
        (path / name).write_text(name)
    return path


def test_a_new_folder_takes_its_name(tmp_path):
    staged = _folder(tmp_path / ".out.partial", ["part-0.parquet", "part-1.parquet"])
    publish_folder(staged, tmp_path / "out", aside=tmp_path / ".out.old")
    assert sorted(os.listdir(tmp_path / "out")) == ["part-0.parquet", "part-1.parquet"]
    assert os.listdir(tmp_path) == ["out"]


def test_an_existing_folder_is_replaced_whole_and_its_aside_deleted(tmp_path):
    _folder(tmp_path / "out", ["part-0.parquet", "part-1.parquet", "part-2.parquet"])
    staged = _folder(tmp_path / ".out.partial", ["part-0.parquet"])
    publish_folder(staged, tmp_path / "out", aside=tmp_path / ".out.old")
    assert os.listdir(tmp_path / "out") == ["part-0.parquet"]  # no part of the old folder lingers
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_publish_leaves_the_old_folder_under_the_callers_aside_name(tmp_path, monkeypatch):
    _folder(tmp_path / "out", ["old"])
    staged = _folder(tmp_path / ".out.partial", ["new"])
    real_replace = os.replace

    def fail_second(source, target):
        if source == staged:
            raise OSError("killed")
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", fail_second)
    with pytest.raises(OSError, match="killed"):
        publish_folder(staged, tmp_path / "out", aside=tmp_path / ".out.old")
    assert os.listdir(tmp_path / ".out.old") == ["old"] and os.listdir(staged) == ["new"]
    assert not (tmp_path / "out").exists()

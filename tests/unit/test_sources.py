"""Every data source kind reads the same rows."""

import os

import sqlalchemy

from keel.data.fingerprint import fingerprint_frame
from keel.data.generator import generate_credit_applications
from keel.data.schema import validate_frame
from keel.data.sources import DataSourceError, describe_source, load_frame, source_stamp
from keel.spec import load_spec
from tests.conftest import ROOT


def _spec(source):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [f"data.source={source}", "monitoring.simulation=null"])


def test_csv_parquet_and_sql_give_the_same_validated_rows(tmp_path):
    frame = generate_credit_applications(_spec("{kind: generator, rows: 300, seed: 5}").data.source)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    frame.to_sql("applications", engine, index=False)
    fingerprints = set()
    for source in (f"{{kind: csv, path: '{tmp_path / 'a.csv'}'}}", f"{{kind: parquet, path: '{tmp_path / 'a.parquet'}'}}",
                   f"{{kind: sql, url: 'sqlite:///{tmp_path / 'a.db'}', query: 'select * from applications'}}"):
        spec = _spec(source)
        validated, report = validate_frame(load_frame(spec.data), spec.data)
        assert report.passed, (source, report.summary())
        validated["application_id"] = validated["application_id"].astype("int64")
        fingerprints.add(fingerprint_frame(validated.drop(columns=["application_date"])))
    assert len(fingerprints) == 1


def test_sql_errors_are_readable_and_hide_the_password(tmp_path):
    spec = _spec("{kind: sql, url: 'postgresql://keel:hunter2@127.0.0.1:1/db', query: 'select 1'}")
    assert "hunter2" not in describe_source(spec.data)
    try:
        load_frame(spec.data)
    except DataSourceError as error:
        assert "hunter2" not in str(error) and "cannot run the query" in str(error)
    else:
        raise AssertionError("an unreachable database must fail")


def test_the_cache_key_changes_when_a_file_changes(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    spec = _spec(f"{{kind: csv, path: '{path}'}}")
    before = source_stamp(spec.data)
    path.write_text("x\n1\n2\n")
    assert source_stamp(spec.data) != before
    # Rewritten in place with the same size and modification time (cp -p, rsync -t, tar): other rows all
    # the same. A stamp of size and time let training reuse the cached read of the old rows.
    stat, rewritten = path.stat(), source_stamp(spec.data)
    path.write_text("x\n7\n9\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert source_stamp(spec.data) != rewritten

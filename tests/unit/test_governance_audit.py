"""The audit trail: hash chain, create-only records, verify naming the first bad record, who-served."""

import json
import os
import threading
from datetime import datetime, timedelta, timezone

import pytest

from keel.governance.audit import append, read_records, record_name, verify
from keel.governance.store import FolderStore, RecordExists
from keel.governance.timeline import describe_split, parse_time, production_at, served_at


def _log(tmp_path, count=5):
    store = FolderStore(tmp_path / "audit")
    for number in range(count):
        append(store, event="evaluated", model="m", version=number, run_id=f"run-{number}",
               evidence=[f"artifact-{number}"], details={"gates": [{"gate": "roc_auc", "value": 0.8 + number / 100}]},
               actor="tester")
    return store


def test_an_untouched_log_verifies_and_chains(tmp_path):
    store = _log(tmp_path)
    result = verify(store)
    assert result.ok and result.records == 5 and result.problem is None
    records = read_records(store)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(records, records[1:]))
    assert result.head_hash == records[-1]["hash"] and records[0]["actor"] == "tester"


def test_one_edited_byte_is_found_and_named(tmp_path):
    store = _log(tmp_path)
    path = tmp_path / "audit" / record_name(3)
    payload = bytearray(path.read_bytes())
    at = payload.index(b"0.82")
    payload[at + 3] = ord("9")  # 0.82 -> 0.89
    path.write_bytes(bytes(payload))
    result = verify(store)
    assert not result.ok and result.bad_record == record_name(3) and "edited" in result.problem
    assert result.records == 2


def test_whitespace_added_to_a_record_is_an_edit(tmp_path):
    store = _log(tmp_path)
    path = tmp_path / "audit" / record_name(2)
    path.write_bytes(path.read_bytes().replace(b'"seq":2', b'"seq": 2'))
    assert verify(store).bad_record == record_name(2)


def test_a_deleted_record_is_named(tmp_path):
    store = _log(tmp_path)
    os.unlink(tmp_path / "audit" / record_name(2))
    result = verify(store)
    assert not result.ok and result.bad_record == record_name(2) and "deleted" in result.problem


def test_two_swapped_records_are_found(tmp_path):
    store = _log(tmp_path)
    second, fourth = tmp_path / "audit" / record_name(2), tmp_path / "audit" / record_name(4)
    a, b = second.read_bytes(), fourth.read_bytes()
    second.write_bytes(b)
    fourth.write_bytes(a)
    result = verify(store)
    assert not result.ok and result.bad_record == record_name(2) and "reordered" in result.problem


def test_an_inserted_record_is_found(tmp_path):
    """A forger who renumbers the later files and forges a well-formed record is caught by the chain."""
    store = _log(tmp_path, count=3)
    folder = tmp_path / "audit"
    for seq in (3, 2):  # make room at 2
        record = json.loads((folder / record_name(seq)).read_bytes())
        (folder / record_name(seq)).unlink()
        from keel.governance.audit import canonical, record_hash

        record["seq"] = seq + 1
        record["hash"] = record_hash(record)
        (folder / record_name(seq + 1)).write_bytes(canonical(record))
    first = json.loads((folder / record_name(1)).read_bytes())
    from keel.governance.audit import build_record, canonical

    forged = build_record(2, first["hash"], event="approved", model="m", version=1, run_id=None, evidence=[],
                          details={"reason": "forged"}, actor="mallory", time=datetime.now(timezone.utc))
    (folder / record_name(2)).write_bytes(canonical(forged))
    result = verify(store)
    assert not result.ok and result.bad_record == record_name(3) and "previous-record hash" in result.problem


def test_a_stray_file_in_the_log_is_named(tmp_path):
    store = _log(tmp_path, count=3)
    (tmp_path / "audit" / "0000000002b.json").write_bytes((tmp_path / "audit" / record_name(2)).read_bytes())
    result = verify(store)
    assert not result.ok and result.bad_record == "0000000002b.json"


def test_records_are_create_only(tmp_path):
    store = _log(tmp_path, count=1)
    before = (tmp_path / "audit" / record_name(1)).read_bytes()
    with pytest.raises(RecordExists):
        store.create(record_name(1), b"{}")
    assert (tmp_path / "audit" / record_name(1)).read_bytes() == before


def test_concurrent_writers_extend_one_chain(tmp_path):
    store = FolderStore(tmp_path / "audit")

    def write(worker):
        for number in range(10):
            append(store, event="deployment_step", model="m", version=worker, details={"n": number}, actor=f"w{worker}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify(store)
    assert result.ok and result.records == 40


def _routing(seq, at, arms, event="deployment_step"):
    return {"seq": seq, "time": at.isoformat(), "event": event, "version": arms[-1][1],
            "details": {"routing": {"arms": [{"name": n, "version": v, "weight": w} for n, v, w in arms],
                                    "shadow": None, "strategy": "canary", "step": ""}}}


def _stage(seq, at, version):
    return {"seq": seq, "time": at.isoformat(), "event": "stage_changed", "version": version,
            "details": {"stage": "production"}}


def test_who_served_across_a_canary_a_promotion_and_a_rollback():
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    minute = timedelta(minutes=1)
    records = [
        _routing(1, t0, [("challenger", 1, 1.0)]), _stage(2, t0 + 10 * timedelta(seconds=1), 1),
        _routing(3, t0 + 10 * minute, [("champion", 1, 1.0)], "routing_changed"),
        _routing(4, t0 + 11 * minute, [("champion", 1, 0.9), ("challenger", 2, 0.1)]),
        _routing(5, t0 + 12 * minute, [("challenger", 2, 1.0)]),
        _routing(6, t0 + 13 * minute, [("challenger", 2, 1.0)], "routing_changed"), _stage(7, t0 + 13 * minute, 2),
        _routing(8, t0 + 20 * minute, [("champion", 1, 1.0)], "rollback"), _stage(9, t0 + 20 * minute, 1),
    ]

    def versions(at):
        found = served_at(records, at)
        return None if found is None else {a["version"]: a["weight"] for a in found["arms"]}

    assert versions(t0 - minute) is None and production_at(records, t0 - minute) is None
    assert versions(t0 + 5 * minute) == {1: 1.0} and production_at(records, t0 + 5 * minute) == 1
    assert versions(t0 + 11 * minute + timedelta(seconds=30)) == {1: 0.9, 2: 0.1}   # during the canary
    assert production_at(records, t0 + 11 * minute + timedelta(seconds=30)) == 1
    assert versions(t0 + 15 * minute) == {2: 1.0} and production_at(records, t0 + 15 * minute) == 2
    assert versions(t0 + 20 * minute) == {1: 1.0}                                    # at the rollback
    assert served_at(records, t0 + 30 * minute)["event"] == "rollback"
    assert production_at(records, t0 + 30 * minute) == 1


def test_times_without_a_zone_are_utc_and_bad_times_are_named():
    assert parse_time("2026-01-01T12:00:00") == datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    assert parse_time("2026-01-01T13:00:00+01:00") == datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday")


def test_records_with_nan_and_odd_types_are_plain_json(tmp_path):
    """An evaluation with a NaN fairness value (no judgeable group) or a numpy number is still recorded."""
    import numpy as np

    store = FolderStore(tmp_path / "audit")
    record = append(store, event="evaluated", model="m", version=1, actor="t",
                    details={"gates": [{"value": float("nan")}, {"value": float("inf")}], "n": np.int64(3),
                             "pair": (1, 2)})
    assert record["details"] == {"gates": [{"value": "NaN"}, {"value": "Infinity"}], "n": 3, "pair": [1, 2]}
    assert verify(store).ok


def test_the_registry_cross_check_reads_nan_alike():
    from keel.governance.audit import missing_from_trail

    versions = [{"number": 1, "metadata": {"evaluation": {"value": float("nan")}}}]
    records = [{"seq": 1, "event": "training_run_registered", "version": 1, "details": {}},
               {"seq": 2, "event": "evaluated", "version": 1, "details": {"value": "NaN"}}]
    assert missing_from_trail(records, versions) == []


def test_a_routing_with_no_arms_reads_as_nothing_served():
    # An interrupted first rollout records a routing with no arms: `audit log` and `who-served` say so.
    assert describe_split([]) == "nothing served"
    assert describe_split([{"version": 3, "weight": 0.05, "name": "challenger"},
                           {"version": 2, "weight": 0.95, "name": "champion"}]) == "v3 5% (challenger) / v2 95% (champion)"

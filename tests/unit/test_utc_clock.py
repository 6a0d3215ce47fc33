"""keel.clock is the one place a moment becomes UTC: an epoch (a file's mtime, a rollout heartbeat)
and a naive or foreign-zone datetime (an audit record's time) read the same wherever they are recorded."""

import os
from datetime import datetime, timedelta, timezone

from keel.clock import as_utc, utc_from_epoch
from keel.governance.audit import build_record
from keel.serving.rollout_state import iso

EPOCH = 1_780_000_000.25  # 2026-05-28T20:26:40.25Z


def test_an_epoch_is_a_utc_moment_in_every_record():
    moment = utc_from_epoch(EPOCH)
    assert moment.tzinfo == timezone.utc and moment == datetime(2026, 5, 28, 20, 26, 40, 250000, timezone.utc)
    assert iso(EPOCH) == "2026-05-28T20:26:40.250000+00:00"


def test_an_audit_record_time_is_written_in_utc_whatever_the_zone_given(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")  # a naive time is UTC, never the machine's zone
    if hasattr(os, "tzset"):
        os.tzset()
    try:
        def written(time):
            return build_record(1, "0" * 64, event="approved", model="m", version=1, run_id=None, evidence=[],
                                details={}, actor="tester", time=time)["time"]

        tokyo = datetime(2026, 5, 29, 5, 26, 40, tzinfo=timezone(timedelta(hours=9)))
        assert written(tokyo) == written(datetime(2026, 5, 28, 20, 26, 40)) == "2026-05-28T20:26:40+00:00"
        assert as_utc(tokyo) == utc_from_epoch(1_780_000_000)
    finally:
        monkeypatch.delenv("TZ")
        if hasattr(os, "tzset"):
            os.tzset()

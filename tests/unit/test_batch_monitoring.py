"""Batch traffic in the monitoring windows (issue 16.5), without ZenML: rows scored in batch are
profiled as they are scored, by the prediction log's profiling code, land in the window of the hour
they were scored in once the batch is published (never before), are kept apart from served traffic
(`--traffic online|batch|both`), and delayed labels join them by id."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from keel.monitoring.batch_traffic import (BatchProfiler, batch_window_profiles, published_batches,
                                           read_batch_predictions, remove_abandoned, unrecorded_same_input)
from keel.monitoring.monitor import labelled_window, monitoring_folder, update_window
from keel.monitoring.profiles import column_summary, profile_frame
from keel.monitoring.windows import monitored_columns
from keel.serving.prediction_log import PredictionLog
from keel.spec import load_spec
from tests.conftest import ROOT

UTC = timezone.utc
DAY = datetime(2026, 3, 2, tzinfo=UTC)


class Clock:
    """The time a chunk is scored at, moved by the test."""

    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


@pytest.fixture
def spec(tmp_path):
    labels = tmp_path / "labels.csv"
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        f"deployment.folder={tmp_path / 'deployments'}", "deployment.allow_folder_outside_project=true",
        f"monitoring.labels.source={{kind: csv, path: {labels}}}"])


def _scored(spec, rows, seed, first_id=0):
    """Rows as score_batch hands them to on_chunk: the model features, the id, score and decision."""
    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=rows, seed=seed))
    rng = np.random.default_rng(seed)
    frame = frame[spec.data.model_features].copy()
    frame.insert(0, spec.data.id_column, [f"A{first_id + i:05d}" for i in range(rows)])
    frame["score"] = rng.random(rows)
    frame["decision"] = (frame["score"] >= 0.5).astype(int)
    return frame.reset_index(drop=True)


def _profiler(spec, batch_id, clock, key=None, version=1):
    return BatchProfiler(monitoring_folder(spec), batch_id, version, spec.data.model_features, spec.data.id_column,
                         key or {"input_fingerprint": f"sha256:{batch_id}", "model_version": version, "spec": "s"},
                         clock=clock)


def _serve(spec, frame, moment):
    """What the service would have logged for `frame` at `moment`."""
    from keel.deployment.deploy import deployment_folder, prediction_log_url

    deployment_folder(spec).mkdir(parents=True, exist_ok=True)
    features = spec.data.model_features
    PredictionLog(prediction_log_url(spec)).append(
        {"request_id": f"r{i}", "row": 0, "entity_id": row[spec.data.id_column], "time": moment, "model_name": "m",
         "model_version": 1, "arm": "champion", "shadow": False,
         "inputs": {k: (None if pd.isna(row[k]) else row[k]) for k in features},
         "score": float(row["score"]), "decision": int(row["decision"]), "latency_ms": 1.0}
        for i, row in enumerate(frame.to_dict(orient="records")))


def test_chunks_land_in_the_hour_they_were_scored_profiled_as_the_log_is(spec):
    clock = Clock(DAY + timedelta(hours=10, minutes=50))
    profiler = _profiler(spec, "b1", clock)
    first, second = _scored(spec, 300, seed=1), _scored(spec, 200, seed=2, first_id=300)
    profiler(first)
    clock.moment = DAY + timedelta(hours=11, minutes=5)
    profiler(second)
    folder = monitoring_folder(spec)
    assert batch_window_profiles(folder, 1, DAY, DAY + timedelta(days=1)) == []  # nothing before it is published
    profiler.publish()

    ten = batch_window_profiles(folder, 1, DAY + timedelta(hours=10), DAY + timedelta(hours=11))
    eleven = batch_window_profiles(folder, 1, DAY + timedelta(hours=11), DAY + timedelta(hours=12))
    assert [p.rows() for p in ten] == [300] and [p.rows() for p in eleven] == [200]
    assert batch_window_profiles(folder, 2, DAY, DAY + timedelta(days=1)) == []  # another version's window
    # The prediction log's profiling code on the same columns: the same columns and statistics.
    expected = profile_frame(monitored_columns(first, spec.data.model_features))
    assert ten[0].columns == expected.columns == sorted([*spec.data.model_features, "score", "decision"])
    for column in ("income", "score", "decision"):
        assert column_summary(ten[0], column)["mean"] == pytest.approx(column_summary(expected, column)["mean"])
    assert column_summary(ten[0], "region")["frequencies"] == column_summary(expected, "region")["frequencies"]


def test_traffic_selects_online_batch_or_both(spec):
    online, batch = _scored(spec, 250, seed=3), _scored(spec, 400, seed=4, first_id=1000)
    _serve(spec, online, DAY + timedelta(hours=9))
    profiler = _profiler(spec, "b2", Clock(DAY + timedelta(hours=12)))
    profiler(batch)
    profiler.publish()

    _, facts = update_window(spec, 1, traffic="online")
    assert (facts["rows"], facts["online_rows"], facts["batch_rows"], facts["traffic"]) == (250, 250, 0, "online")
    profile, facts = update_window(spec, 1, traffic="batch")
    assert (facts["rows"], facts["batch_rows"], facts["new_rows"]) == (400, 400, 400)
    assert column_summary(profile, "income")["mean"] == pytest.approx(batch["income"].mean())
    _, facts = update_window(spec, 1, traffic="both")
    assert (facts["rows"], facts["online_rows"], facts["batch_rows"]) == (650, 250, 400)
    assert facts["start"] == DAY.isoformat() and facts["new_rows"] == 0  # both counted by the passes before
    with pytest.raises(ValueError, match="unknown traffic"):
        update_window(spec, 1, traffic="stream")


def test_batch_only_window_starts_at_the_newest_batch(spec):
    profiler = _profiler(spec, "b3", Clock(DAY + timedelta(days=3, hours=1)))
    profiler(_scored(spec, 50, seed=5))
    profiler.publish()
    _, facts = update_window(spec, 1, traffic="batch")
    assert facts["start"] == (DAY + timedelta(days=3)).isoformat() and facts["rows"] == 50
    _, facts = update_window(spec, 1, traffic="online")  # no served traffic at all
    assert facts["start"] is None and facts["rows"] == 0


def test_delayed_labels_join_batch_rows_by_id(spec, tmp_path):
    batch = _scored(spec, 120, seed=6)
    profiler = _profiler(spec, "b4", Clock(DAY + timedelta(hours=8)))
    profiler(batch.iloc[:70])
    profiler(batch.iloc[70:])
    profiler.publish()
    labelled_ids = batch[spec.data.id_column].iloc[::2].tolist()  # half the portfolio labelled, two days later
    (tmp_path / "labels.csv").write_text("entity_id,label,time\n" + "".join(
        f"{entity},{i % 2},{(DAY + timedelta(days=2)).isoformat()}\n" for i, entity in enumerate(labelled_ids)))
    window = {"window": "day", "start": (DAY + timedelta(days=2)).isoformat(),
              "end": (DAY + timedelta(days=3)).isoformat(), "rows": 0, "new_rows": 0, "model_version": 1,
              "added": {}, "traffic": "batch"}

    labelled, report = labelled_window(spec, window, None)
    assert report["matched"] == 60 and report["unknown_ids"] == 0
    scores = batch.set_index(spec.data.id_column)["score"]
    assert labelled["score"].tolist() == pytest.approx(scores.loc[labelled["entity_id"]].tolist())
    _, online_only = labelled_window(spec, {**window, "traffic": "online"}, None)
    assert online_only["matched"] == 0 and online_only["unknown_ids"] == 60  # batch rows are not in the log


def test_rows_without_an_id_column_are_named_by_batch_and_row(tmp_path):
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [
        f"deployment.folder={tmp_path}", "deployment.allow_folder_outside_project=true", "data.id_column=null"])
    frame = _scored(load_spec(ROOT / "configs" / "credit_risk.yaml"), 5, seed=7).drop(columns="application_id")
    frame.insert(0, "row", range(10, 15))
    profiler = BatchProfiler(monitoring_folder(spec), "b5", 1, spec.data.model_features, None, {}, clock=Clock(DAY))
    profiler(frame)
    profiler.publish()
    assert read_batch_predictions(monitoring_folder(spec))["entity_id"].tolist() == [f"b5:{r}" for r in range(10, 15)]


def test_a_killed_batch_leaves_nothing_in_the_windows_and_its_rerun_counts_once(spec):
    folder = monitoring_folder(spec)
    key = {"input_fingerprint": "sha256:same", "model_version": 1, "spec": "s"}
    killed = _profiler(spec, "killed", Clock(DAY), key)
    killed(_scored(spec, 80, seed=8))  # the process dies here: never published
    assert published_batches(folder) == [] and read_batch_predictions(folder).empty
    # A partial folder of a process that is gone is removed by the next batch; a live one's stays.
    dead = folder / "batches" / ".ghost.999999999.partial"
    dead.mkdir()
    assert "ghost" in remove_abandoned(folder / "batches")
    assert killed.staging.exists()

    # Published, then killed before its batch record: the re-run (same input) replaces it.
    first = _profiler(spec, "first", Clock(DAY), key)
    first(_scored(spec, 80, seed=8))
    first.publish()
    rerun = _profiler(spec, "rerun", Clock(DAY + timedelta(minutes=5)), key)
    rerun(_scored(spec, 80, seed=8))
    assert unrecorded_same_input(folder, key, recorded_ids=[]) == ["first"]
    assert unrecorded_same_input(folder, key, recorded_ids=["first"]) == []
    rerun.publish(superseded=unrecorded_same_input(folder, key, recorded_ids=[]))
    assert [m["batch_id"] for m in published_batches(folder)] == ["rerun"]
    _, facts = update_window(spec, 1, traffic="batch")
    assert facts["rows"] == 80
    killed.abandon()
    assert not killed.staging.exists()

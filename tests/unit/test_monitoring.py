"""Monitoring without ZenML: profiles, windows, the four kinds of drift, labels, the policy, alerts."""

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest

from keel.data.generator import generate_credit_applications
from keel.monitoring.alerts import alert_message, send_alert
from keel.monitoring.drift import assess
from keel.monitoring.labels import LabelsError, join_labels, read_labels
from keel.monitoring.policy import append_record, decide, read_history
from keel.monitoring.profiles import (column_summary, compare_columns, deserialize, merge_profiles, profile_frame,
                                      serialize)
from keel.monitoring.windows import WindowStore, read_predictions, window_start
from keel.serving.prediction_log import PredictionLog
from keel.spec import load_spec
from keel.spec.monitoring import AlerterSpec, LabelsSpec, RetrainingSpec
from tests.conftest import ROOT

UTC = timezone.utc


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "configs" / "credit_risk.yaml")


class _World:
    """A reference (training rows, a fitted scorer, its test predictions) and production windows
    drawn from the generator with its drift knobs."""

    def __init__(self, spec):
        from sklearn.linear_model import LogisticRegression

        from keel.training.metrics import score

        self.spec = spec
        self.features = spec.data.model_features
        source = spec.data.source
        self.source = source
        train = generate_credit_applications(source.model_copy(update={"rows": 12_000, "seed": 42}))
        self.numeric = [f for f in self.features if train[f].dtype != "category"]
        x = train[self.numeric].fillna(0)
        self.mean, self.std = x.mean(), x.std()
        self.model = LogisticRegression(max_iter=2000).fit((x - self.mean) / self.std, train["default"])
        test = generate_credit_applications(source.model_copy(update={"rows": 4000, "seed": 43}))
        scores = self.scores(test)
        self.threshold = 0.2
        self.reference_data = profile_frame(train[self.features].assign(default=train["default"]))
        self.reference_predictions = profile_frame(pd.DataFrame({"score": scores,
                                                                 "decision": (scores >= self.threshold).astype(int)}))
        self.reference = {"threshold": self.threshold, "decision_rate": float((scores >= self.threshold).mean()),
                          "label_rate": float(train["default"].mean()), "label_rows": len(train),
                          "metrics": score(test["default"], scores, self.threshold)}

    def scores(self, frame):
        if frame.empty:
            return np.array([], dtype=float)
        return self.model.predict_proba((frame[self.numeric].fillna(0) - self.mean) / self.std)[:, 1]

    def status(self, seed, rows=3000, frame=None, with_labels=True, **knobs):
        if frame is None:
            frame = generate_credit_applications(self.source.model_copy(update={"rows": rows, "seed": seed, **knobs}))
        scores = self.scores(frame)
        window = frame[self.features].assign(score=scores, decision=(scores >= self.threshold).astype(int))
        profile = profile_frame(window)
        comparisons = compare_columns(profile, self.reference_data, self.features)
        score = compare_columns(profile, self.reference_predictions, ["score"])["score"]
        decision_rate = column_summary(profile, "decision")["mean"] if len(frame) else None
        labels = frame["default"].to_numpy() if with_labels else np.array([], dtype=int)
        return assess(comparisons, score, decision_rate, self.reference, labels,
                      scores if with_labels else np.array([]), len(frame), self.spec.monitoring.drift)


@pytest.fixture(scope="module")
def world(spec):
    return _World(spec)


# --- profiles ------------------------------------------------------------------------------------


def test_fast_profile_matches_whylogs_counts_and_round_trips():
    import whylogs as why

    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[:300] = np.nan
    values[300:302] = np.inf
    frame = pd.DataFrame({"x": values, "n": rng.integers(0, 9, 5000), "c": rng.choice(["a", "b"], 5000)})
    ours = profile_frame(frame)
    theirs = why.log(pandas=frame).view()
    for name in frame.columns:
        mine, reference = ours.view.get_column(name), theirs.get_column(name)
        assert mine.get_metric("counts").n.value == reference.get_metric("counts").n.value
        assert mine.get_metric("counts").null.value == reference.get_metric("counts").null.value
    assert ours.view.get_column("x").get_metric("counts").inf.value == 2
    assert column_summary(ours, "x")["nulls"] == 300
    again = deserialize(serialize(ours))
    assert column_summary(again, "c")["frequencies"] == column_summary(ours, "c")["frequencies"]
    assert merge_profiles([ours, again]).rows() == 10_000


def test_parallel_chunks_merge_to_the_same_counts():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=6000), "c": pd.Categorical(rng.choice(["a", "b", "c"], 6000))})
    whole = profile_frame(frame)
    chunked = profile_frame(frame, workers=2, chunk_rows=1500, parallel_from_rows=1000)
    assert chunked.rows() == whole.rows() == 6000
    assert column_summary(chunked, "c")["frequencies"] == column_summary(whole, "c")["frequencies"]
    assert column_summary(chunked, "x")["mean"] == pytest.approx(column_summary(whole, "x")["mean"])


# --- drift, the four kinds -----------------------------------------------------------------------


def test_same_distribution_raises_no_alarm_on_at_least_19_of_20_seeds(world):
    alarms = [seed for seed in range(100, 120) if world.status(seed)["verdict"]["alarm"]]
    assert len(alarms) <= 1, alarms


def test_covariate_shift_flags_those_features_and_only_those(world):
    for shifted in (["income", "savings_balance"], ["credit_history_years", "employment_years"]):
        status = world.status(7, covariate_shift=2.0, shifted_features=shifted)
        assert status["features"]["drifted"] == sorted(shifted)
        assert "data" in status["verdict"]["kinds"] and not status["verdict"]["concept_drift"]


def test_concept_shift_is_detected_through_performance_and_reported_as_concept_drift(world):
    unlabelled = world.status(7, concept_shift=0.8, with_labels=False)
    assert not unlabelled["verdict"]["alarm"]  # inputs unchanged: nothing to see before labels arrive
    status = world.status(7, concept_shift=0.8)
    assert status["features"]["drifted"] == []
    assert status["performance"]["drifted"] and status["verdict"]["concept_drift"]
    assert "concept" in status["verdict"]["kinds"] and "concept drift" in status["verdict"]["summary"]


def test_label_drift_when_the_positive_rate_moves(world):
    frame = generate_credit_applications(world.source.model_copy(update={"rows": 3000, "seed": 9}))
    frame["default"] = (np.random.default_rng(0).random(3000) < 0.5).astype(int)
    status = world.status(9, frame=frame)
    assert status["label"]["drifted"] and "label" in status["verdict"]["kinds"]


def test_empty_window_unseen_categories_and_all_null_columns_are_reported(world):
    empty = world.status(1, rows=0, frame=generate_credit_applications(
        world.source.model_copy(update={"rows": 1, "seed": 1})).iloc[0:0])
    assert not empty["judged"] and "fewer than" in empty["reason"] and not empty["verdict"]["alarm"]
    frame = generate_credit_applications(world.source.model_copy(update={"rows": 2000, "seed": 11}))
    frame["region"] = frame["region"].astype(object)
    frame.loc[:99, "region"] = "atlantis"
    frame["savings_balance"] = np.nan
    status = world.status(11, frame=frame)
    features = status["features"]
    assert features["unseen_categories"] == {"region": ["atlantis"]}
    assert features["problems"]["savings_balance"] == "all values missing in the window"
    assert not features["features"]["savings_balance"]["drifted"]


# --- windows from the prediction log -------------------------------------------------------------


def _log_rows(times, versions=None, entity_prefix="e"):
    rows = []
    for i, moment in enumerate(times):
        rows.append({"request_id": f"r{i}-{moment.timestamp()}", "row": 0, "entity_id": f"{entity_prefix}{i}",
                     "time": moment, "model_name": "m", "model_version": (versions or [1] * len(times))[i],
                     "arm": "champion", "shadow": False, "inputs": {"income": 1000.0 + i, "region": "north"},
                     "score": 0.1 + 0.001 * (i % 100), "decision": i % 2, "latency_ms": 1.0})
    return rows


def test_read_predictions_parses_inputs_and_skips_probes_and_shadows(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    rows = _log_rows([start + timedelta(minutes=i) for i in range(5)])
    rows += _log_rows([start + timedelta(minutes=10)], entity_prefix="probe-1-")
    shadow = _log_rows([start + timedelta(minutes=11)])[0] | {"request_id": "s", "shadow": True}
    log.append(rows + [shadow])
    frame = read_predictions(f"sqlite:///{tmp_path / 'p.db'}", exclude_entity_prefixes=["probe-"],
                             features=["income", "region", "loan_amount"])
    assert len(frame) == 5 and frame["income"].tolist() == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    assert frame["loan_amount"].isna().all() and str(frame["time"].dt.tz) == "UTC"
    assert read_predictions(f"sqlite:///{tmp_path / 'none.db'}").empty  # no log yet: empty, no crash


def test_a_window_where_a_category_column_holds_one_value_is_profiled():
    # whylogs raised TypeError on a categorical column with a single category (an hour of one region)
    frame = pd.DataFrame({"region": pd.Categorical(["north"] * 5), "purpose": ["car"] * 4 + [None],
                          "income": [1.0, 2.0, 3.0, 4.0, 5.0]})
    profile = profile_frame(frame)
    assert profile.rows() == 5
    assert column_summary(profile, "region")["count"] == 5 and column_summary(profile, "purpose")["nulls"] == 1


def test_a_large_pass_read_by_worker_processes_equals_one_read_here(tmp_path):
    """Workers reading their own time ranges of the log store the same hours as a read in this
    process: the same rows per hour and the same counts; a second pass adds only what is new."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    log = PredictionLog(url)
    start = datetime(2026, 1, 5, 10, 7, tzinfo=UTC)
    times = [start + timedelta(minutes=7 * i) for i in range(120)]  # 14 hours
    log.append(_log_rows(times, versions=[1 + (i % 3 == 0) for i in range(120)])
               + _log_rows([start + timedelta(minutes=30)], entity_prefix="probe-"))
    here = WindowStore(tmp_path / "here", workers=1)
    workers = WindowStore(tmp_path / "workers", workers=2, parallel_from_rows=50)
    added = here.add_from_log(url, ["income", "region"], ["probe-"], batch_rows=40)
    assert workers.add_from_log(url, ["income", "region"], ["probe-"], batch_rows=40) == added
    assert sum(added.values()) == 120 and workers.watermark() == here.watermark() == times[-1]
    for version in (1, 2):
        for hour in range(10, 25):
            moment = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(hours=hour)
            mine, theirs = (store.window_profile(version, "hour", moment) for store in (here, workers))
            assert mine.rows() == theirs.rows()
            assert column_summary(mine, "income")["mean"] == pytest.approx(column_summary(theirs, "income")["mean"],
                                                                           nan_ok=True)
    later = [times[-1] + timedelta(minutes=m) for m in (1, 2, 3)]
    log.append(_log_rows(later, entity_prefix="n"))
    assert workers.add_from_log(url, ["income", "region"], ["probe-"]) == {"v1 2026-01-06T00": 3}
    assert workers.watermark() == later[-1]


def _serve(log, frame):
    """Append `frame`'s rows (time, entity_id, model_version, score, decision, inputs) to the log, as
    the scorer would."""
    fixed = ["time", "entity_id", "model_version", "score", "decision"]
    log.append({"request_id": f"r-{row['entity_id']}-{row['time'].isoformat()}", "row": 0,
                "entity_id": row["entity_id"], "time": row["time"].to_pydatetime(), "model_name": "m",
                "model_version": int(row["model_version"]), "arm": "champion", "shadow": False,
                "inputs": {k: (None if pd.isna(v) else v) for k, v in row.items() if k not in fixed},
                "score": float(row["score"]), "decision": int(row["decision"]), "latency_ms": 1.0}
               for row in frame.to_dict(orient="records"))


def test_hours_merge_into_days_and_weeks_without_rereading_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    log = PredictionLog(url)
    store = WindowStore(tmp_path / "monitoring")
    monday = datetime(2026, 1, 5, tzinfo=UTC)
    times = [monday + timedelta(hours=h, minutes=5) for h in range(0, 24 * 3, 5)]
    frame = pd.DataFrame({"time": pd.to_datetime(times, utc=True), "entity_id": [str(i) for i in range(len(times))],
                          "model_version": 1, "score": np.linspace(0, 1, len(times)), "decision": 1,
                          "income": np.arange(len(times), dtype=float)})
    first, second = frame.iloc[:7], frame.iloc[7:]
    _serve(log, first)
    assert sum(store.add_from_log(url, ["income"]).values()) == 7
    _serve(log, second)
    assert sum(store.add_from_log(url, ["income"]).values()) == len(second)  # incremental: the watermark moved on
    assert store.watermark() == times[-1]
    day_one = store.window_profile(1, "day", monday)
    assert day_one.rows() == sum(t < monday + timedelta(days=1) for t in times)
    # Complete days are stored once; the hours are not needed again.
    for path in (tmp_path / "monitoring" / "hours").rglob("2026-01-05T*.bin"):
        path.unlink()
    assert store.window_profile(1, "day", monday).rows() == day_one.rows()
    assert store.window_profile(1, "week", monday + timedelta(days=2)).rows() == len(times)
    assert store.window_profile(2, "week", monday).rows() == 0  # another version: empty, no crash
    assert window_start(datetime(2026, 1, 7, 13, 30, tzinfo=UTC), "week") == monday


def test_profiles_are_stamped_with_the_time_they_cover(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    log = PredictionLog(url)
    here = WindowStore(tmp_path / "monitoring", workers=1)
    on_workers = WindowStore(tmp_path / "monitoring", workers=2, parallel_from_rows=1)  # the same folder
    monday = datetime(2026, 1, 5, tzinfo=UTC)
    times = [monday + timedelta(hours=3, minutes=m) for m in range(0, 120, 10)]
    frame = pd.DataFrame({"time": pd.to_datetime(times, utc=True), "entity_id": [str(i) for i in range(len(times))],
                          "model_version": 1, "score": 0.5, "decision": 1, "income": np.nan})
    for weeks, store in ((0, here), (1, on_workers), (2, here)):  # in this process and on forked workers
        _serve(log, frame.assign(time=frame["time"] + pd.Timedelta(days=7 * weeks),
                                 entity_id=frame["entity_id"] + f"-w{weeks}"))
        assert sum(store.add_from_log(url, ["income"]).values()) == len(frame)
    hour = deserialize((tmp_path / "monitoring" / "hours" / "v1" / "2026-01-05T04.bin").read_bytes())
    assert hour.view.dataset_timestamp == monday + timedelta(hours=4)  # not the time it was profiled
    assert here.window_profile(1, "hour", monday + timedelta(hours=3)).view.dataset_timestamp == \
        monday + timedelta(hours=3)
    assert here.window_profile(1, "day", monday + timedelta(hours=5)).view.dataset_timestamp == monday
    later = here.window_profile(1, "week", monday + timedelta(days=7))
    assert later.view.dataset_timestamp == monday + timedelta(days=7) and later.rows() == len(times)
    empty = here.window_profile(1, "day", monday + timedelta(days=1))  # nothing served: still that day
    assert empty.view.dataset_timestamp == monday + timedelta(days=1) and empty.rows() == 0


# --- labels --------------------------------------------------------------------------------------


def test_labels_join_reports_unknown_ids_early_and_duplicate_labels(tmp_path):
    start = pd.Timestamp("2026-01-05 10:00", tz="UTC")
    predictions = pd.DataFrame({"time": [start, start, start], "entity_id": ["a", "b", "c"], "model_version": 1,
                                "score": [0.1, 0.9, 0.5], "decision": [0, 1, 1]})
    path = tmp_path / "labels.csv"
    path.write_text("entity_id,label,time\n"
                    "a,0,2026-01-06T00:00:00Z\nb,1,2026-01-06T00:00:00Z\nb,0,2026-01-07T00:00:00Z\n"
                    "c,1,2026-01-01T00:00:00Z\nghost,1,2026-01-06T00:00:00Z\nx,1,not-a-time\n")
    labels = read_labels(LabelsSpec(source={"kind": "csv", "path": path}))
    joined, report = join_labels(predictions, labels, new_since=datetime(2026, 1, 5, 23, tzinfo=UTC))
    assert joined["entity_id"].tolist() == ["a", "b"] and joined["label"].tolist() == [0, 1]
    assert report["unknown_ids"] == 1 and report["unknown_examples"] == ["ghost"]
    assert report["before_prediction"] == 1 and report["duplicates"] == 1 and report["unreadable_times"] == 1
    assert report["new_labelled_rows"] == 2


def test_labels_source_errors_name_the_key(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label,time\n1,0,2026-01-01\n")
    with pytest.raises(LabelsError, match="monitoring.labels.id_column"):
        read_labels(LabelsSpec(source={"kind": "csv", "path": path}))
    with pytest.raises(LabelsError, match="no such file"):
        read_labels(LabelsSpec(source={"kind": "csv", "path": tmp_path / "missing.csv"}))


def test_labels_from_a_sql_table(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'labels.db'}"
    engine = sa.create_engine(url)
    pd.DataFrame({"entity_id": ["7"], "outcome": [1], "known_at": ["2026-02-01T00:00:00"]}).to_sql("outcomes", engine)
    labels = read_labels(LabelsSpec(source={"kind": "sql", "url": url, "query": "SELECT * FROM outcomes"},
                                    label_column="outcome", time_column="known_at"))
    assert labels["entity_id"].tolist() == ["7"] and labels["label"].tolist() == [1]


# --- the continuous-training policy --------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
QUIET = {"features": {"drifted": []}, "prediction": {"drifted": False},
         "performance": {"metric": "roc_auc", "judged": True, "value": 0.80, "rows": 1000}}


def _policy(**changes):
    base = {"schedule_hours": None, "min_new_labelled_rows": None, "performance": None, "drift": None,
            "cooldown_hours": 0, "max_retrains": 100, "per_hours": 24}
    return RetrainingSpec(**{**base, **changes})


def _fired(status, policy, new_rows=0, since=NOW - timedelta(hours=1), history=()):
    return decide(NOW, status, new_rows, since, list(history), policy)


def test_each_trigger_fires_exactly_when_its_condition_holds():
    scheduled = _policy(schedule_hours=2)
    assert _fired(QUIET, scheduled, since=NOW - timedelta(hours=1.99))["fired"] == []
    assert _fired(QUIET, scheduled, since=NOW - timedelta(hours=2))["fired"] == ["scheduled"]
    volume = _policy(min_new_labelled_rows=500)
    assert _fired(QUIET, volume, new_rows=499)["fired"] == []
    assert _fired(QUIET, volume, new_rows=500)["fired"] == ["data_volume"]
    performance = _policy(performance={"metric": "roc_auc", "min": 0.8, "max_drop": None})
    assert _fired(QUIET, performance)["fired"] == []
    low = {**QUIET, "performance": {**QUIET["performance"], "value": 0.7999}}
    assert _fired(low, performance)["fired"] == ["performance"]
    unjudged = {**QUIET, "performance": {"metric": "roc_auc", "judged": False, "value": None, "rows": 10}}
    assert _fired(unjudged, performance)["fired"] == []
    drift = _policy(drift={"min_drifted_features": 2, "on_prediction_drift": False})
    one = {**QUIET, "features": {"drifted": ["income"]}, "prediction": {"drifted": True}}
    assert _fired(one, drift)["fired"] == []
    assert _fired({**one, "features": {"drifted": ["income", "age"]}}, drift)["fired"] == ["drift"]
    assert _fired(one, _policy(drift={"min_drifted_features": 2, "on_prediction_drift": True}))["fired"] == ["drift"]
    decision = _fired(low, performance)
    assert decision["retrain"] and decision["suppressed_by"] is None
    evidence = {t["trigger"]: t["evidence"] for t in decision["triggers"]}
    assert evidence["performance"] == {"metric": "roc_auc", "value": 0.7999, "min": 0.8, "max_drop": None,
                                       "reference": None, "drop": None, "labelled_rows": 1000,
                                       "fires_when": "a drop of more than max_drop below the test value, or below min"}
    # Lower is better for brier and log_loss: the trigger fires above the bound, not below it.
    brier = _policy(performance={"metric": "brier", "min": 0.2, "max_drop": None})
    good = {**QUIET, "performance": {"metric": "brier", "judged": True, "value": 0.12, "rows": 1000}}
    bad = {**QUIET, "performance": {**good["performance"], "value": 0.2001}}
    assert _fired(good, brier)["fired"] == []
    assert _fired(bad, brier)["fired"] == ["performance"]
    evidence = {t["trigger"]: t["evidence"] for t in _fired(bad, brier)["triggers"]}
    assert evidence["performance"]["fires_when"].endswith("above min")


def test_the_default_performance_trigger_is_relative_to_the_versions_own_test_value():
    """A problem whose normal AUC is 0.72 (no absolute floor declared) is not 'degraded' every run; a
    drop of more than 0.05 below its own test value is."""
    default = _policy(performance={"metric": "roc_auc"})
    assert default.performance.max_drop == 0.05 and default.performance.min is None
    normal = {**QUIET, "performance": {"metric": "roc_auc", "judged": True, "value": 0.71, "reference": 0.72,
                                       "drop": 0.01, "rows": 1000}}
    assert _fired(normal, default)["fired"] == []
    fallen = {**QUIET, "performance": {**normal["performance"], "value": 0.66, "drop": 0.06}}
    assert _fired(fallen, default)["fired"] == ["performance"]
    # An absolute floor fires only where declared, and then beside the relative rule.
    floor = _policy(performance={"metric": "roc_auc", "min": 0.75})
    assert _fired(normal, floor)["fired"] == ["performance"]
    with pytest.raises(ValueError, match="give max_drop"):
        _policy(performance={"metric": "roc_auc", "max_drop": None})


def test_cooldown_and_maximum_frequency_are_respected(tmp_path):
    policy = _policy(min_new_labelled_rows=1, cooldown_hours=6, max_retrains=2, per_hours=24)

    def retrained(hours_ago):
        return {"kind": "decision", "retrain": True, "time": (NOW - timedelta(hours=hours_ago)).isoformat()}

    cooling = _fired(QUIET, policy, new_rows=5, history=[retrained(5.9)])
    assert cooling["fired"] == ["data_volume"] and not cooling["retrain"] and cooling["suppressed_by"].startswith("cooldown")
    assert _fired(QUIET, policy, new_rows=5, history=[retrained(6)])["retrain"]
    busy = _fired(QUIET, policy, new_rows=5, history=[retrained(20), retrained(10)])
    assert not busy["retrain"] and busy["suppressed_by"].startswith("maximum frequency")
    assert _fired(QUIET, policy, new_rows=5, history=[retrained(30), retrained(10)])["retrain"]
    disabled = _fired(QUIET, _policy(min_new_labelled_rows=1, enabled=False), new_rows=5)
    assert not disabled["retrain"] and disabled["suppressed_by"] == "retraining disabled in the spec"
    # The scheduled trigger counts from the last retrain, not from the version's creation.
    scheduled = _fired(QUIET, _policy(schedule_hours=8), since=NOW - timedelta(days=3), history=[retrained(7)])
    assert scheduled["fired"] == []
    # Records survive in the decisions file, one JSON object a line; a torn line is skipped.
    append_record(tmp_path, cooling)
    (tmp_path / "decisions.jsonl").open("a").write("{torn\n")
    append_record(tmp_path, {"kind": "retraining", "outcome": "rejected"})
    assert [r["kind"] for r in read_history(tmp_path)] == ["decision", "retraining"]


# --- alerts --------------------------------------------------------------------------------------


def _webhook():
    """A real HTTP endpoint on 127.0.0.1 that answers 204 and keeps what was POSTed: (server, received)."""
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_alerts_go_to_the_log_or_a_webhook_and_a_dead_webhook_is_reported(caplog):
    server, received = _webhook()
    status = {"verdict": {"alarm": True, "kinds": ["data"], "summary": "1 feature(s) drifted"},
              "features": {"drifted": ["income"]}}
    message = alert_message("m", 3, status, {"fired": [], "retrain": False})
    assert alert_message("m", 3, {"verdict": {"alarm": False}}, {"fired": []}) is None
    with caplog.at_level("WARNING", logger="keel.monitoring"):
        assert send_alert(message, AlerterSpec())["sent"]
    assert "1 feature(s) drifted" in caplog.text
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    assert send_alert(message, AlerterSpec(kind="webhook", url=url)) == {"sent": True, "channel": "webhook", "status": 204}
    assert received[0]["drifted_features"] == ["income"]
    server.shutdown()
    server.server_close()
    dead = send_alert(message, AlerterSpec(kind="webhook", url=url, timeout_seconds=1))
    assert not dead["sent"] and "error" in dead


def test_an_alert_saying_what_the_last_delivered_one_said_is_held_back_until_its_repeat_time(tmp_path):
    """`monitor --watch` checks every 5 minutes: the same drift posted the same alert to the webhook each
    time. Held back now, for monitoring.alerter.repeat_after_hours; a new problem, a new version, a failed
    delivery or an unreadable record sends it."""
    from keel.monitoring.alerts import deliver_alert

    server, received = _webhook()
    hook = AlerterSpec(kind="webhook", url=f"http://127.0.0.1:{server.server_address[1]}/hook", repeat_after_hours=6)
    last = tmp_path / "monitoring" / "last_alert.json"
    status = {"verdict": {"alarm": True, "kinds": ["data"], "summary": "1 feature(s) drifted"},
              "features": {"drifted": ["income"]}, "window": {"rows": 500}}
    first = alert_message("m", 3, status, {"fired": [], "retrain": False})
    grown = alert_message("m", 3, {**status, "window": {"rows": 900}}, {"fired": [], "retrain": False})
    assert deliver_alert(first, hook, last, NOW)["sent"] and len(received) == 1
    held = deliver_alert(grown, hook, last, NOW + timedelta(minutes=5))  # more rows, the same problem
    assert not held["sent"] and "repeat_after_hours" in held["reason"] and len(received) == 1
    assert deliver_alert(grown, hook, last, NOW + timedelta(hours=6))["sent"] and len(received) == 2
    worse = alert_message("m", 3, {**status, "features": {"drifted": ["income", "age"]}}, {"fired": [], "retrain": False})
    assert deliver_alert(worse, hook, last, NOW + timedelta(hours=6, minutes=5))["sent"] and len(received) == 3
    other_version = alert_message("m", 4, {**status, "features": {"drifted": ["income", "age"]}},
                                  {"fired": [], "retrain": False})
    assert deliver_alert(other_version, hook, last, NOW + timedelta(hours=6, minutes=10))["sent"]
    every_time = hook.model_copy(update={"repeat_after_hours": 0.0})
    assert deliver_alert(other_version, every_time, last, NOW + timedelta(hours=6, minutes=11))["sent"]
    last.write_text("{not json")
    assert deliver_alert(other_version, hook, last, NOW + timedelta(hours=6, minutes=12))["sent"]
    assert len(received) == 6
    server.shutdown()
    server.server_close()
    # Not delivered (the webhook is gone): not recorded, so the next run tries again.
    assert not deliver_alert(first, hook, last, NOW + timedelta(hours=7))["sent"]
    assert json.loads(last.read_text())["sent_at"] == (NOW + timedelta(hours=6, minutes=12)).isoformat()


def test_spec_section_validates_and_rejects_a_webhook_without_url(spec):
    from keel.spec import SpecError

    assert spec.monitoring.window in ("hour", "day", "week")
    with pytest.raises(SpecError, match="monitoring.alerter"):
        load_spec(ROOT / "configs" / "credit_risk.yaml", ["monitoring.alerter.kind=webhook"])
    with pytest.raises(SpecError, match="must be the metric the monitor measures"):
        load_spec(ROOT / "configs" / "credit_risk.yaml", ["monitoring.retraining.performance.metric=pr_auc"])


def test_drift_report_and_profile_view_are_static_html(world):
    from keel.monitoring.report import drift_report_html, profile_html

    status = world.status(7, covariate_shift=2.0, shifted_features=["income", "savings_balance"])
    status.update(model="credit_risk", model_version=3, labels={"labels": 0, "matched": 0, "unknown_ids": 0},
                  window={"window": "day", "start": "2026-01-05", "end": "2026-01-06", "rows": 3000, "new_rows": 3000})
    decision = decide(NOW, status, 0, NOW - timedelta(hours=1), [], _policy(drift={"min_drifted_features": 2}))
    page = drift_report_html(status, decision)
    assert "<script" not in page and "<svg" in page and "Continuous-training decision" in page
    assert page.count(">DRIFT<") >= 2 and "FIRED" in page
    view = profile_html(world.reference_data)
    assert "<script" not in view and "income" in view and "12000 rows" in view


def test_a_worse_metric_is_said_to_fall_or_rise_as_it_points():
    """Brier rising from 0.14 to 0.52 was reported as 'brier fell by 0.379'."""
    from keel.monitoring.drift import _worsened

    assert _worsened({"metric": "brier", "drop": 0.379}) == "brier rose by 0.379"
    assert _worsened({"metric": "roc_auc", "drop": 0.086}) == "roc_auc fell by 0.086"


def test_performance_is_not_judged_on_fewer_than_min_outcomes_of_a_class():
    """helper-60: on 400 fraud labels holding one positive, roc_auc 0.56 against 0.76 was called DRIFT and
    fired the performance trigger (and 'stable' with three): noise, not evidence."""
    from keel.monitoring.drift import performance_drift
    from keel.monitoring.policy import performance_trigger
    from keel.spec.monitoring import PerformanceDriftSpec, PerformanceTrigger

    rng = np.random.default_rng(60)
    scores = rng.random(400)
    one_fraud = np.zeros(400, dtype=int)
    one_fraud[int(np.argmin(scores))] = 1  # the lowest score: AUC far below the reference
    spec = PerformanceDriftSpec(metric="roc_auc", max_drop=0.05)
    performance = performance_drift(one_fraud, scores, 0.5, {"roc_auc": 0.76}, spec, 300, min_outcomes=5)
    assert not performance["judged"] and not performance["drifted"] and performance["value"] is None
    assert performance["reason"] == ("1 positive and 399 negative labelled rows: fewer than 5 of each "
                                     "(data.min_group_outcomes)")
    assert not performance_trigger(performance, PerformanceTrigger(metric="roc_auc", max_drop=0.05))["fired"]
    five = one_fraud.copy()
    five[np.argsort(scores)[:5]] = 1
    judged = performance_drift(five, scores, 0.5, {"roc_auc": 0.76}, spec, 300, min_outcomes=5)
    assert judged["judged"] and judged["drifted"] and judged["value"] < 0.1


def test_a_performance_verdict_on_few_positives_is_given_with_its_interval_and_said_uncertain():
    """helper-64: 6 frauds among 306 labels gave "roc_auc 0.6178 vs test 0.7026: DRIFT" with no word of its
    uncertainty; a fifth of such label sets would say so by chance. The verdict stands (as evaluation's
    gates: "pass, but uncertain"), now with its bootstrap interval and "but uncertain" where the interval
    crosses the allowed drop; on 3,000 labels the same drop is certain."""
    from keel.monitoring.drift import performance_drift, performance_verdict
    from keel.monitoring.report import drift_report_html
    from keel.spec.monitoring import PerformanceDriftSpec

    spec = PerformanceDriftSpec(metric="roc_auc", max_drop=0.05)

    def window(rows: int, positives: int, seed: int):
        rng = np.random.default_rng(seed)
        labels = np.zeros(rows, dtype=int)
        labels[:positives] = 1
        return labels, np.where(labels == 1, rng.normal(0.4, 1, rows), rng.normal(0, 1, rows))  # AUC ~0.61

    few = performance_drift(*window(306, 6, 2), 0.5, {"roc_auc": 0.70}, spec, 300, min_outcomes=5)
    assert few["judged"] and few["drifted"] and few["uncertain"] and "interval" not in few
    assert performance_verdict(few).startswith("DRIFT, but uncertain (no interval: undefined in ")
    some = performance_drift(*window(400, 40, 3), 0.5, {"roc_auc": 0.70}, spec, 300, min_outcomes=5)
    low, high = some["interval"]
    assert some["drifted"] and some["uncertain"] and low < some["value"] < high and 0.70 - high < 0.05 < 0.70 - low
    assert performance_verdict(some) == (f"DRIFT, but uncertain (95% interval {low:.4f}-{high:.4f} crosses a drop "
                                         "of 0.05)")
    # the drift report (the dashboard's) gives the same words as the CLI
    page = drift_report_html({"window": {}, "verdict": {}, "features": {}, "prediction": {}, "performance": some})
    assert f"DRIFT, but uncertain (95% interval {low:.4f}-{high:.4f} crosses a drop of 0.05)" in page
    many = performance_drift(*window(3000, 600, 2), 0.5, {"roc_auc": 0.70}, spec, 300, min_outcomes=5)
    assert many["drifted"] and not many["uncertain"] and performance_verdict(many) == "DRIFT"

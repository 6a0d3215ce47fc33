"""Delayed labels: read as text and mapped to the spec's classes (empty and unknown values counted,
ids kept as written), and joined to the whole prediction log, not just the judged window."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from keel.monitoring.labels import LabelsError, join_labels, label_codes, read_labels
from keel.monitoring.monitor import labelled_window
from keel.serving.prediction_log import PredictionLog
from keel.spec import load_spec
from keel.spec.monitoring import LabelsSpec
from tests.conftest import ROOT

UTC = timezone.utc


def _csv(tmp_path, text):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return LabelsSpec(source={"kind": "csv", "path": path})


def test_one_empty_label_cell_does_not_turn_positives_into_negatives(tmp_path):
    # An empty cell makes pandas read the column as floats ("1.0"); the positives must stay positive.
    labels = read_labels(_csv(tmp_path, "entity_id,label,time\n"
                                        "a,1,2026-01-06T00:00:00Z\nb,,2026-01-06T00:00:00Z\n"
                                        "c,0,2026-01-06T00:00:00Z\nd,1,2026-01-06T00:00:00Z\n"))
    assert labels["label"].tolist()[0] == 1 and labels["label"].tolist()[2:] == [0, 1]
    assert pd.isna(labels["label"].iloc[1])  # unlabelled, not negative


def test_ids_keep_their_leading_zeros_and_only_empty_cells_are_missing(tmp_path):
    labels = read_labels(_csv(tmp_path, "entity_id,label,time\n007,1,2026-01-06T00:00:00Z\n"
                                        "NA,0,2026-01-06T00:00:00Z\n,1,2026-01-06T00:00:00Z\n"))
    assert labels["entity_id"].tolist()[:2] == ["007", "NA"] and pd.isna(labels["entity_id"].iloc[2])


def test_missing_and_unknown_label_values_are_dropped_and_reported(tmp_path):
    start = pd.Timestamp("2026-01-05 10:00", tz="UTC")
    predictions = pd.DataFrame({"time": [start] * 4, "entity_id": ["a", "b", "c", "d"], "model_version": 1,
                                "score": [0.9, 0.2, 0.5, 0.6], "decision": [1, 0, 1, 1]})
    labels = read_labels(_csv(tmp_path, "entity_id,label,time\n"
                                        "a,1,2026-01-06T00:00:00Z\nb,0,2026-01-06T00:00:00Z\n"
                                        "c,,2026-01-06T00:00:00Z\nd,yes,2026-01-06T00:00:00Z\n"))
    joined, report = join_labels(predictions, labels)
    assert joined["entity_id"].tolist() == ["a", "b"] and joined["label"].tolist() == [1, 0]
    assert joined["label"].dtype.kind == "i"
    assert report["missing_labels"] == 1
    assert report["unknown_label_values"] == 1 and report["unknown_value_examples"] == ["yes"]
    assert report["matched"] == 2 and report["unknown_ids"] == 0


def test_a_customer_scored_again_takes_this_cycles_label_not_last_cycles(tmp_path):
    """A monthly portfolio with an append-only outcomes table: each customer has last cycle's outcome
    (40 days old, here the other class) and this cycle's (after the new prediction), in either order in the
    file. The earliest label used to be kept per customer, then dropped as dated before the prediction:
    nothing was judged, and production fairness used the stale outcomes."""
    from keel.monitoring.labels import match_labels

    scored = pd.Timestamp("2026-03-01 09:00", tz="UTC")
    ids = [f"B{i:04d}" for i in range(6)]
    predictions = pd.DataFrame({"time": [scored] * 6, "entity_id": ids, "model_version": 3,
                                "score": [0.9, 0.1, 0.8, 0.3, 0.6, 0.2], "decision": [1, 0, 1, 0, 1, 0]})
    now = [f"{i},{'churned' if k % 2 else 'stayed'},2026-03-02T00:00:00Z" for k, i in enumerate(ids)]
    old = [f"{i},{'stayed' if k % 2 else 'churned'},2026-01-20T00:00:00Z" for k, i in enumerate(ids)]
    again = [f"{ids[0]},churned,2026-03-05T00:00:00Z", f"{ids[1]},churned,2026-03-06T00:00:00Z"]
    for rows in (now + old, old + now):
        spec = _csv(tmp_path, "entity_id,status,known_at\n" + "\n".join(rows + again) + "\n").model_copy(
            update={"label_column": "status", "time_column": "known_at"})
        labels = read_labels(spec, "churned", "stayed")
        joined, report = join_labels(predictions, labels)
        assert joined["entity_id"].tolist() == ids and joined["label"].tolist() == [0, 1, 0, 1, 0, 1]
        assert report["matched"] == 6 and report["before_prediction"] == 6
        assert report["duplicates"] == 2 and report["conflicting"] == 1  # B0000 labelled again as churned
        matched, early, _ = match_labels(predictions.assign(_row=range(6)), labels, "entity_id")
        assert matched.sort_values("_row")["label"].tolist() == [0, 1, 0, 1, 0, 1] and early == 6


def test_label_times_are_iso_8601_or_the_declared_format_never_guessed(tmp_path):
    """03/12/2026 was read as 12 March (and its label dropped as dated before the prediction) while
    13/12/2026 in the same file was 13 December."""
    text = "entity_id,label,time\na,1,03/12/2026 18:50\nb,0,13/12/2026 18:50\nc,1,2026-12-03T18:50:00Z\n"
    undeclared = read_labels(_csv(tmp_path, text))
    assert undeclared["label_time"].isna().tolist() == [True, True, False]  # unreadable, counted by join_labels
    declared = read_labels(_csv(tmp_path, text.replace("2026-12-03T18:50:00Z", "03/12/2026 18:51")).model_copy(
        update={"time_format": "%d/%m/%Y %H:%M"}))
    assert declared["label_time"].tolist() == [pd.Timestamp("2026-12-03 18:50", tz="UTC"),
                                               pd.Timestamp("2026-12-13 18:50", tz="UTC"),
                                               pd.Timestamp("2026-12-03 18:51", tz="UTC")]
    predictions = pd.DataFrame({"time": [pd.Timestamp("2026-12-03 18:00", tz="UTC")] * 3, "entity_id": ["a", "b", "c"],
                                "model_version": 1, "score": [0.9, 0.2, 0.7], "decision": [1, 0, 1]})
    assert join_labels(predictions, undeclared)[1]["unreadable_times"] == 2
    assert join_labels(predictions, declared)[1]["matched"] == 3


def test_an_outcome_dated_by_its_day_alone_is_not_dated_before_a_prediction_that_day(tmp_path):
    """A date without a time read as midnight, so an outcome recorded the day of its 14:00 prediction was
    dropped as dated before it. A day alone is known by its end; a day before the prediction's still is early."""
    predictions = pd.DataFrame({"time": [pd.Timestamp("2026-03-05 14:00", tz="UTC")] * 3, "entity_id": ["a", "b", "c"],
                                "model_version": 1, "score": [0.9, 0.2, 0.7], "decision": [1, 0, 1]})
    iso = read_labels(_csv(tmp_path, "entity_id,label,time\na,1,2026-03-05\nb,0,2026-03-04\nc,1,2026-03-05T13:00Z\n"))
    joined, report = join_labels(predictions, iso)
    assert joined["entity_id"].tolist() == ["a"] and report["before_prediction"] == 2
    declared = read_labels(_csv(tmp_path, "entity_id,label,time\na,1,05/03/2026\nb,0,04/03/2026\nc,1,06/03/2026\n")
                           .model_copy(update={"time_format": "%d/%m/%Y"}))
    joined, report = join_labels(predictions, declared)
    assert joined["entity_id"].tolist() == ["a", "c"] and report["before_prediction"] == 1
    timed = read_labels(_csv(tmp_path, "entity_id,label,time\na,1,05/03/2026 00:00\n").model_copy(
        update={"time_format": "%d/%m/%Y %H:%M"}))
    assert join_labels(predictions, timed)[1]["before_prediction"] == 1  # a time of day given is taken as given


def test_label_codes_follow_the_spec_classes():
    codes = label_codes(pd.Series(["default", "paid", "1", None]), "default", "paid")
    assert codes.iloc[0] == 1 and codes.iloc[1] == 0 and codes.iloc[2:].isna().all()
    codes = label_codes(pd.Series(["1.0", "0", "2", None]), 1, 0)  # SQL floats spell 1 as 1.0
    assert codes.iloc[0] == 1 and codes.iloc[1] == 0 and codes.iloc[2:].isna().all()


def test_sql_labels_with_a_null_are_not_misread(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'labels.db'}"
    engine = sa.create_engine(url)
    pd.DataFrame({"entity_id": ["1", "2", "3"], "outcome": [1, None, 0],
                  "known_at": ["2026-02-01T00:00:00"] * 3}).to_sql("outcomes", engine)
    engine.dispose()
    labels = read_labels(LabelsSpec(source={"kind": "sql", "url": url, "query": "SELECT * FROM outcomes"},
                                    label_column="outcome", time_column="known_at"))
    assert labels["label"].iloc[0] == 1 and pd.isna(labels["label"].iloc[1]) and labels["label"].iloc[2] == 0


def _prediction(i, moment, version=1):
    return {"request_id": f"r{i}", "row": 0, "entity_id": f"e{i}", "time": moment, "model_name": "m",
            "model_version": version, "arm": "champion", "shadow": False, "inputs": {"income": 1000.0 + i},
            "score": 0.1 + 0.01 * i, "decision": i % 2, "latency_ms": 1.0}


@pytest.fixture()
def delayed(tmp_path):
    """Predictions on day 1 (e0..e29 by v1, e30 by v2), one on day 3 (e31); labels on day 3."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    day1, day3 = datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 7, 9, tzinfo=UTC)
    PredictionLog(url).append([_prediction(i, day1 + timedelta(minutes=i)) for i in range(30)]
                              + [_prediction(30, day1, version=2), _prediction(31, day3)])
    labels = tmp_path / "labels.csv"
    lines = [f"e{i},{i % 2},2026-01-07T12:00:00Z" for i in range(31)] + ["ghost,1,2026-01-07T12:00:00Z"]
    labels.write_text("entity_id,label,time\n" + "\n".join(lines) + "\n")
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml",
                     [f"monitoring.labels.source={{kind: csv, path: {labels}}}"])
    window = {"window": "day", "start": "2026-01-07T00:00:00+00:00", "end": "2026-01-08T00:00:00+00:00",
              "rows": 1, "new_rows": 1, "model_version": 1}
    return spec, window, url


def test_labels_arriving_days_later_are_joined_to_earlier_predictions(delayed):
    spec, window, url = delayed
    labelled, report = labelled_window(spec, window, None, log_url=url)
    assert report["matched"] == 30 and len(labelled) == 30  # day-1 predictions judged in the day-3 window
    assert report["unknown_ids"] == 1 and report["unknown_examples"] == ["ghost"]  # only ids never predicted
    assert report["other_versions"] == 1  # e30 was served by v2: not this version's performance
    assert sorted(labelled["label"].unique().tolist()) == [0, 1]


def test_labels_known_before_the_window_are_not_judged_again(delayed):
    spec, window, url = delayed
    later = {**window, "start": "2026-01-08T00:00:00+00:00", "end": "2026-01-09T00:00:00+00:00"}
    labelled, report = labelled_window(spec, later, None, log_url=url)
    assert labelled.empty and report["known_before_window"] == 30 and report["unknown_ids"] == 1


def test_lookback_limits_the_predictions_labels_are_joined_to(delayed):
    spec, window, url = delayed
    short = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={
        "labels": spec.monitoring.labels.model_copy(update={"lookback_days": 1})})})
    _, report = labelled_window(short, window, None, log_url=url)
    assert report["matched"] == 0 and report["unknown_ids"] == 32  # day 1 is outside a 1-day lookback


def test_a_label_belongs_to_the_latest_prediction_made_before_it_was_known(tmp_path):
    """helper-45: an entity predicted on 1 Dec, labelled on 3 Dec and scored again on 5 Dec lost its label
    (only the latest prediction per entity was joined, and the label was 'dated before' it); a request
    retried before its outcome is judged once, not twice."""
    def day(d):
        return pd.Timestamp(f"2026-12-{d:02d} 09:00", tz="UTC")

    predictions = pd.DataFrame({"time": [day(1), day(5), day(1), day(2)], "entity_id": ["a", "a", "b", "b"],
                                "model_version": 1, "score": [0.9, 0.2, 0.7, 0.6], "decision": [1, 0, 1, 1]})
    labels = read_labels(_csv(tmp_path, "entity_id,label,time\na,1,2026-12-03T10:00:00Z\nb,0,2026-12-04\n"))
    joined, report = join_labels(predictions, labels)
    assert list(zip(joined["entity_id"], joined["time"], joined["label"])) == [("a", day(1), 1), ("b", day(2), 0)]
    assert (report["matched"], report["before_prediction"], report["duplicates"]) == (2, 0, 0)


def test_a_day_alone_is_new_once_and_a_future_date_is_not_used(tmp_path):
    """helper-45: a label dated by its day read as the day's end, so it was 'new' again after every
    retrain decision made that day (the data-volume trigger fired on the same labels); a label dated next
    year was used and stayed new for ever."""
    predictions = pd.DataFrame({"time": [pd.Timestamp("2026-12-03 09:00", tz="UTC")] * 2, "entity_id": ["a", "b"],
                                "model_version": 1, "score": [0.9, 0.2], "decision": [1, 0]})
    labels = read_labels(_csv(tmp_path, "entity_id,label,time\na,1,2026-12-03\nb,0,2027-06-01\n"))
    now = datetime(2026, 12, 3, 18, tzinfo=UTC)
    joined, report = join_labels(predictions, labels, new_since=datetime(2026, 12, 3, 12, tzinfo=UTC), now=now)
    assert joined["entity_id"].tolist() == ["a"] and report["future_times"] == 1
    assert report["new_labelled_rows"] == 0  # known since the day began: not new after a decision at noon
    assert join_labels(predictions, labels, new_since=datetime(2026, 12, 2, tzinfo=UTC), now=now)[1][
        "new_labelled_rows"] == 1


def test_before_the_labels_file_exists_nothing_is_joined_and_the_report_says_why(delayed, tmp_path):
    """helper-45: a labels file not yet exported failed the whole monitor run, data drift included."""
    spec, window, url = delayed
    later = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"labels": LabelsSpec(
        source={"kind": "csv", "path": tmp_path / "not-yet.csv"})})})
    labelled, report = labelled_window(later, window, None, log_url=url)
    assert labelled.empty and report["matched"] == 0
    assert report["source_not_found"] == f"monitoring.labels.source.path: no such file {tmp_path / 'not-yet.csv'}"
    with pytest.raises(LabelsError, match="cannot be read"):  # a file that exists but does not read still stops
        (tmp_path / "broken.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
        read_labels(LabelsSpec(source={"kind": "csv", "path": tmp_path / "broken.csv"}))

"""Requests refused for their records' content reach monitoring (helper-64: a category the served version
does not know got a 422 and no prediction row, so `monitor` never saw that traffic)."""

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from keel.monitoring.refusals import refusal_lines, refusal_span, summarize_refusals, window_refusals
from keel.serving.prediction_log import REFUSALS, PredictionLog, refusal_row

START = datetime(2026, 6, 1, 0, tzinfo=timezone.utc)
END = START + timedelta(days=1)


def _prediction(request_id: str, minutes: int, entity: str = "e", shadow: bool = False) -> dict:
    return {"request_id": request_id, "row": 0, "entity_id": entity, "time": START + timedelta(minutes=minutes),
            "model_name": "m", "model_version": 1, "arm": "champion", "shadow": shadow, "inputs": {}, "score": 0.2,
            "decision": 0, "latency_ms": 1.0}


def test_each_refused_value_is_counted_once_per_request_most_frequent_first():
    """Text categories, one problem in several records of a request, and a value too long to keep."""
    unknown = "not one of ['north', 'south']"
    refusals = [refusal_row("a", START, [{"field": "records[0].region", "problem": unknown, "found": "Île-de-France"},
                                         {"field": "records[1].region", "problem": unknown, "found": "Île-de-France"}]),
                refusal_row("b", START, [{"field": "region", "problem": unknown, "found": "Île-de-France"},
                                         {"field": "income", "problem": "must be at least 0", "found": -5}]),
                refusal_row(None, START, [{"field": "body", "problem": "unknown field", "found": "x" * 5000}])]
    report = summarize_refusals(refusals, answered_requests=97, start=START, end=END)
    assert report["refused_requests"] == 3 and report["refusal_rate"] == 0.03
    assert [(r["field"], r["found"], r["requests"]) for r in report["most_refused"]] == [
        ("region", "Île-de-France", 2), ("body", "x" * 200, 1), ("income", "-5", 1)]
    lines = refusal_lines(report)
    assert lines[0].startswith("refused:        3 request(s) for their records' content (3.0% of 100)")
    assert "region = 'Île-de-France': not one of ['north', 'south']" in lines[1]
    assert refusal_lines(summarize_refusals([], 10, START, END)) == []  # nothing refused: nothing said
    assert summarize_refusals([], 0, START, END)["refusal_rate"] is None


def test_the_window_counts_its_refusals_against_the_requests_answered_then(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url)
    log.append([_prediction("r1", 5), _prediction("r2", 6), _prediction("r2-shadow", 6, shadow=True),
                _prediction("probe-1", 7, entity="probe-7"), _prediction("yesterday", -5)])
    region = [{"field": "region", "problem": "not a known category", "found": "islands"}]
    for request_id, moment in (("x1", START + timedelta(hours=1)), ("x2", START + timedelta(hours=2)),
                               ("x3", END), ("x0", START - timedelta(seconds=1))):
        log.append_refusal(refusal_row(request_id, moment, region))
    log.close()
    report = window_refusals(url, START, END, exclude_entity_prefixes=["probe-"])
    assert (report["refused_requests"], report["answered_requests"]) == (2, 2)  # [START, END); no shadow, no probe
    assert report["refusal_rate"] == 0.5 and report["most_refused"][0]["found"] == "islands"


def test_a_log_written_before_refusals_were_logged_has_none_to_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    PredictionLog(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {REFUSALS.name}"))
    engine.dispose()
    assert window_refusals(url, START, END) is None


def test_without_a_judged_window_the_current_period_is_read():
    """Every request refused: no prediction, so no window; the refusals of this day are still read."""
    now = datetime(2026, 6, 3, 15, 30, tzinfo=timezone.utc)
    assert refusal_span({"start": None}, "day", now) == (datetime(2026, 6, 3, tzinfo=timezone.utc),
                                                          datetime(2026, 6, 4, tzinfo=timezone.utc))
    window = {"start": START.isoformat(), "end": END.isoformat()}
    assert refusal_span(window, "day", now) == (START, END)


def test_the_drift_report_and_the_cli_show_the_refusals():
    from keel.cli.monitor import production_lines
    from keel.monitoring.report import refusal_sections
    from keel.reports.html import page

    refusals = summarize_refusals([refusal_row("a", START, [{"field": "region", "problem": "unknown", "found": "islands"}])],
                                  3, START, END)
    production = {"verdict": "not watched", "refusals": refusals}
    assert any(line.startswith("refused:        1 request(s)") for line in production_lines(production))
    html = page("t", *refusal_sections(production))
    assert "islands" in html and "requests refused for their records&#x27; content (422)" in html
    unreadable = {"verdict": "not watched", "refusals": None, "refusals_note": "the refused requests could not be read"}
    assert "refused:        the refused requests could not be read" in production_lines(unreadable)
    assert json.dumps(production)  # status.json keeps it as it is

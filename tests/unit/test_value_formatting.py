"""Numbers and missing values read the same in every report: HTML cells, the drift report's
sentences and the mitigation facts all format through keel.reports.values."""

from keel.evaluation.mitigation import before_after_rows, describe_mitigation
from keel.reports.html import Raw, cell, table
from keel.reports.values import format_value


def test_an_html_cell_formats_like_every_document():
    for value in (0.123456789, 12345.678, None, float("nan")):
        assert cell(value) == format_value(value)
    assert cell(7) == "7" and cell("a<b") == "a&lt;b" and cell(Raw("<i>x</i>")) == "<i>x</i>"
    assert cell(["kept", "as text"]) == "[&#x27;kept&#x27;, &#x27;as text&#x27;]"


def test_mitigation_rows_show_missing_values_as_a_dash():
    rows = before_after_rows([{"metric": "recall", "before": 0.812345, "after": None, "gate": ""},
                              {"metric": "demographic_parity_ratio", "before": 0.61, "after": 0.9, "gate": "pass"}])
    html = table(["metric", "before", "after", "gate"], rows)
    assert "<td>0.8123</td><td>-</td>" in html and "<td>0.61</td><td>0.9</td><td>pass</td>" in html
    facts = {"method": "threshold_optimizer", "constraint": "demographic_parity", "attribute": "region",
             "fitted_on": "validation split", "decision_rule": "per-group thresholds",
             "needs_attribute_at_prediction": True, "groups_fitted": ["north", "south"], "groups_left_out": {},
             "decision_after": "promote", "before_after": [
                 {"metric": "recall", "before": 0.812345, "after": None, "gate": None}]}
    _, described = describe_mitigation(facts)
    assert ("recall", "0.8123 -> -") in described

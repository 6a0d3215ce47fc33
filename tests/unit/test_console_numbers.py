"""What the terminal shows for numbers: metrics to four decimals (columns of them align), nothing as
'-', whole numbers and text as they are; the same in tables and in monitor's lines."""

from keel.cli.console import format_metric, format_table


def test_metrics_read_to_four_decimals_and_nothing_as_a_dash():
    assert [format_metric(v) for v in (0.5, 0.123456, 1e-05, None)] == ["0.5000", "0.1235", "0.0000", "-"]


def test_a_table_formats_floats_as_metrics_and_leaves_whole_numbers_and_text_alone():
    table = format_table(["gate", "value", "n"], [("roc_auc >= 0.75", 0.81234, 7), ("latency", None, "n/a")])
    header, rule, first, second = table.splitlines()
    assert first.split() == ["roc_auc", ">=", "0.75", "0.8123", "7"]
    assert second.split() == ["latency", "-", "n/a"]
    assert len(header) == len(rule) and header.index("value") == first.index("0.8123")  # aligned columns

"""Static HTML for reports: the ZenML dashboard shows them in a sandboxed iframe where no script
runs, so everything here is plain markup with inline styles."""

from __future__ import annotations

from html import escape
from typing import Iterable, Mapping, Sequence

from keel.reports.values import format_value

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#1b1f24}"
    "table{border-collapse:collapse;margin:.5em 0 1.2em}"
    "td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;font-size:.92em}"
    "th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}"
    ".warn{color:#9a6700;font-weight:600}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.4em}"
)


class Raw(str):
    """Markup made by this module, inserted as is."""


def cell(value: object) -> str:
    """Markup made here as is; a number or nothing as every document shows it (keel.reports.values),
    anything else as its text, escaped."""
    if isinstance(value, Raw):
        return value
    if value is None or isinstance(value, float):
        return escape(format_value(value))
    return escape(str(value))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table; with every header empty, no header row."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if any(headers) else ''}{body}</table>"


def key_values(items: Mapping[str, object]) -> str:
    return table(["", ""], items.items())


def verdict(passed: bool | None, text: str | None = None) -> Raw:
    label = text or {True: "pass", False: "fail", None: "n/a"}[passed]
    css = {True: "pass", False: "fail", None: "warn"}[passed]
    return Raw(f'<span class="{css}">{escape(label)}</span>')


def page(title: str, *sections: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{''.join(sections)}</body></html>")


def heading(text: str) -> str:
    return f"<h2>{escape(text)}</h2>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"

"""What the CLI prints: short, aligned, and to the right stream."""

from __future__ import annotations

import sys
from typing import Iterable, Sequence


def say(text: str = "") -> None:
    print(_shown(text), flush=True)


def fail(text: str, code: int = 1) -> int:
    print(_shown(text), file=sys.stderr, flush=True)
    return code


def _shown(text: str) -> str:
    """What keel prints never shows a URL's credentials (a store, server or database URL in a message
    or a table): `user:password@host` is printed `user:***@host`."""
    from keel.stacks.redaction import redact_url_credentials

    return redact_url_credentials(str(text))


def format_metric(value: object) -> str:
    """A metric as the terminal shows it: four decimals, so that columns of them align ('-' for none).
    Documents use keel.reports.values (significant digits); a terminal table compares decimals."""
    return "-" if value is None else f"{value:.4f}"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def show(value: object) -> str:
        return format_metric(value) if value is None or isinstance(value, float) else str(value)

    cells = [[show(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])

"""Small inline-SVG charts for static reports (no scripts, no external files)."""

from __future__ import annotations

from html import escape
from typing import List, Sequence, Tuple

from keel.reports.html import Raw

_COLOURS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#57606a"]


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str = "", width: int = 560,
              bar_height: int = 18) -> Raw:
    """Horizontal bars, longest first as given; negative values drawn to the left of zero."""
    label_width = min(260, 8 * max((len(str(l)) for l in labels), default=4) + 10)
    top = 24 if title else 6
    height = top + bar_height * len(values) + 10
    low, high = min(0.0, *values) if values else 0.0, max(0.0, *values) if values else 1.0
    span = (high - low) or 1.0
    plot = width - label_width - 70

    def x(value: float) -> float:
        return label_width + (value - low) / span * plot

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">']
    if title:
        parts.append(f'<text x="4" y="14" font-weight="bold">{escape(title)}</text>')
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * bar_height
        left, right = sorted((x(0.0), x(value)))
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">{escape(str(label))}</text>'
                     f'<rect x="{left:.1f}" y="{y + 2}" width="{max(right - left, 0.5):.1f}" '
                     f'height="{bar_height - 5}" fill="{_COLOURS[0 if value >= 0 else 1]}"/>'
                     f'<text x="{right + 4:.1f}" y="{y + 13}">{value:.4g}</text>')
    parts.append("</svg>")
    return Raw("".join(parts))


def line_chart(series: List[Tuple[str, Sequence[float], Sequence[float]]], title: str = "",
               x_label: str = "", y_label: str = "", diagonal: bool = False, width: int = 380,
               height: int = 320) -> Raw:
    """Lines on [0, 1] x [0, 1] (ROC, precision-recall, reliability curves)."""
    pad = 40
    size_x, size_y = width - pad - 10, height - pad - 30

    def point(x: float, y: float) -> str:
        return f"{pad + x * size_x:.1f},{30 + (1 - y) * size_y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="4" y="14" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{pad}" y="30" width="{size_x}" height="{size_y}" fill="none" stroke="#d0d7de"/>',
             f'<text x="{pad + size_x / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>',
             f'<text x="10" y="{30 + size_y / 2}" transform="rotate(-90 10 {30 + size_y / 2})" '
             f'text-anchor="middle">{escape(y_label)}</text>']
    for tick in (0, 0.5, 1):
        parts.append(f'<text x="{pad + tick * size_x:.0f}" y="{height - 18}" text-anchor="middle">{tick:g}</text>'
                     f'<text x="{pad - 4}" y="{34 + (1 - tick) * size_y:.0f}" text-anchor="end">{tick:g}</text>')
    if diagonal:
        parts.append(f'<polyline points="{point(0, 0)} {point(1, 1)}" fill="none" stroke="#8c959f" '
                     f'stroke-dasharray="4 3"/>')
    for i, (name, xs, ys) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        points = " ".join(point(float(x), float(y)) for x, y in zip(xs, ys))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{pad + 8}" y="{46 + 14 * i}" fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>")
    return Raw("".join(parts))

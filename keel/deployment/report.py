"""The rollout timeline as static HTML for the dashboard."""

from __future__ import annotations

from keel.reports import html


def rollout_html(result: dict) -> str:
    rows = []
    for stage in result.get("stages", []):
        new = stage["challenger"]
        values = stage.get("value_per_application_by_arm") or {}
        rows.append((stage["stage"], stage["step"], stage["started"][:19], new["requests"], new["errors"],
                     new["p95_latency_ms"], stage["score_psi"],
                     ", ".join(f"{arm} {value:.1f}" for arm, value in values.items()) or "-",
                     html.verdict(stage["healthy"], "healthy" if stage["healthy"] else "; ".join(stage["breaches"]))))
    return html.page(
        f"Rollout of v{result.get('challenger')} ({result.get('strategy')})",
        html.key_values({"outcome": html.verdict(result["outcome"] == "promoted", result["outcome"]),
                         "champion": result.get("champion"), "now serving": result.get("serving"),
                         "service": result.get("url"), **({"why": result["reason"]} if result.get("reason") else {})}),
        html.table(["stage", "step", "started (UTC)", "challenger requests", "errors", "p95 ms", "score PSI",
                    "value per case by arm", "health"],
                   rows))

"""The model registry as one static HTML page: every version with its stage, metrics, gate outcomes,
approval and deployment; an interrupted registration (`keel.registration.registration_complete`) is
shown as one, not as a usable version. The open-source ZenML dashboard has no model pages, so keel shows this
page as an artifact visualization (and curates it onto the pipeline, its run and the model).

Pure: it reads the list `keel.registry.list_model_versions` returns (number, stage, created,
metadata) and knows nothing of ZenML."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, cast

from keel import registration as keys
from keel.reports import html

if TYPE_CHECKING:
    from keel.evaluation.record import EvaluationRecord


def version_row(version: dict) -> dict:
    """One version's summary from its recorded metadata (missing records read as None)."""
    metadata = version.get("metadata") or {}
    # Stored JSON, possibly by an older keel: every key read with .get.
    evaluation = cast("EvaluationRecord", metadata.get(keys.EVALUATION) or {})
    approval = metadata.get(keys.APPROVAL) or {}
    deployment = metadata.get(keys.DEPLOYMENT) or {}
    primary = metadata.get(keys.PRIMARY_METRIC)
    validation = (metadata.get(keys.VALIDATION_METRICS) or {}).get(primary) if primary else None
    test = (metadata.get(keys.TEST_METRICS) or {}).get(primary) if primary else None
    state = metadata.get(keys.REGISTRATION)
    return {
        "number": int(version["number"]),
        "stage": version.get("stage"),
        "created": version.get("created"),
        "interrupted": not keys.registration_complete(metadata),
        "registration_started": state.get(keys.STARTED_AT) if isinstance(state, dict) else None,
        "family": metadata.get(keys.MODEL_FAMILY),
        "primary_metric": primary,
        "validation": validation,
        "test": test,
        "evaluated": bool(evaluation),
        "decision": evaluation.get("decision"),
        "passed": evaluation.get("passed") if evaluation else None,
        "failed_gates": list(evaluation.get("failed") or []),
        "gates": list(evaluation.get("gates") or []),
        "approved_by": approval.get("by"),
        "approval_reason": approval.get("reason"),
        "approved_at": approval.get("at"),
        "deployment": deployment.get("outcome"),
        "strategy": deployment.get("strategy"),
    }


def registry_html(model_name: str, versions: Sequence[dict], detail_versions: int = 5) -> str:
    """The page: a summary, one row per version (newest first), then the gates of the newest
    `detail_versions` evaluated versions."""
    rows = sorted((version_row(v) for v in versions), key=lambda r: r["number"], reverse=True)
    if not rows:
        return html.page(f"Model registry: {model_name}",
                         html.paragraph("No version is registered yet: train one (python run.py train)."))
    by_stage = {stage: [r["number"] for r in rows if r["stage"] == stage] for stage in ("production", "staging")}
    interrupted = [r["number"] for r in rows if r["interrupted"]]
    summary = html.key_values({
        "versions": len(rows),
        "production": _numbers(by_stage["production"]),
        "staging": _numbers(by_stage["staging"]),
        **({"interrupted registrations (nothing uses them)": _numbers(interrupted)} if interrupted else {}),
        "evaluated": sum(r["evaluated"] for r in rows),
        "passed every gate": sum(r["passed"] is True for r in rows),
        "approved for production": sum(r["approved_by"] is not None for r in rows),
    })
    table = html.table(
        ["version", "stage", "created", "model", "validation", "test", "gates", "approval", "deployment"],
        [_interrupted_cells(r) if r["interrupted"] else
         (f"v{r['number']}", html.Raw(_stage_badge(r["stage"])), _when(r["created"]), r["family"] or "-",
          _metric(r["primary_metric"], r["validation"]), _metric(r["primary_metric"], r["test"]),
          _gate_verdict(r), _approval(r), _deployment(r)) for r in rows])
    details = []
    for r in [r for r in rows if r["gates"] and not r["interrupted"]][:detail_versions]:
        details.append(html.heading(f"v{r['number']}: gates ({r['decision']})"))
        details.append(html.table(["gate", "value", "result"],
                                  [(g.get("gate"), g.get("value"), html.verdict(g.get("passed")))
                                   for g in r["gates"]]))
    return html.page(f"Model registry: {model_name}", summary, html.heading("Versions"), table, *details)


def _interrupted_cells(row: dict) -> tuple:
    """An interrupted registration's row: what it is instead of metrics, gates and approvals it cannot
    be used with (whatever part of its metadata was written)."""
    started = row["registration_started"] or "at an unknown time"
    return (f"v{row['number']}", html.Raw(_stage_badge("interrupted")), _when(row["created"]), row["family"] or "-",
            "-", "-", html.verdict(False, f"registration interrupted (started {started}, never completed)"),
            "-", "-")


def _numbers(numbers: List[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers) or "none"


def _stage_badge(stage: Optional[str]) -> str:
    colours = {"production": "#1a7f37", "staging": "#0969da", "archived": "#6e7781", "interrupted": "#cf222e"}
    if not stage:
        return "-"
    colour = colours.get(stage, "#6e7781")
    return (f'<span style="background:{colour};color:#fff;border-radius:.8em;padding:.05em .6em;'
            f'font-size:.85em">{html.cell(stage)}</span>')


def _when(created: object) -> str:
    if created is None:
        return "-"
    text = created.isoformat(sep=" ", timespec="minutes") if hasattr(created, "isoformat") else str(created)
    return text[:16]


def _metric(name: Optional[str], value: Optional[float]) -> str:
    return "-" if value is None else f"{name} {value:.4f}"


def _gate_verdict(row: dict) -> html.Raw:
    if not row["evaluated"]:
        return html.verdict(None, "not evaluated")
    if row["passed"]:
        return html.verdict(True, f"all {len(row['gates'])} passed")
    return html.verdict(False, f"failed: {'; '.join(row['failed_gates'])}")


def _approval(row: dict) -> str:
    if row["approved_by"] is None:
        return "-"
    return f"{row['approved_by']}: {row['approval_reason']} ({str(row['approved_at'])[:16]})"


def _deployment(row: dict) -> str:
    if row["deployment"] is None:
        return "-"
    return f"{row['deployment']} ({row['strategy']})" if row["strategy"] else str(row["deployment"])

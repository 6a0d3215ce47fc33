"""`run.py evaluate`: run the evaluation pipeline for a model version, print the gates, write the card."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from keel.cli.console import fail, format_table, say
from keel.spec.models import Spec

GATES_FAILED = 3  # distinct from 1 (an error) so CI can tell "the model is not good enough"
REPORTS_DIR = Path("reports")


def write_model_card(name: str, version: int, markdown: str, page: str) -> Path:
    folder = REPORTS_DIR / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_card.md").write_text(markdown, encoding="utf-8")
    (folder / "model_card.html").write_text(page, encoding="utf-8")
    return folder / "model_card.md"


def print_gates(decision: dict) -> None:
    rows = [(g["gate"], g["value"], "pass" if g["passed"] else "FAIL") for g in decision["gates"]]
    say(format_table(["gate", "value", "result"], rows))


def evaluate(spec: Spec, version: Optional[int], no_cache: bool = False) -> int:
    say(f"keel: evaluating model '{spec.problem.name}' (loading ZenML takes a few seconds) ...")
    from keel.cli.pipeline_runs import run_for_version

    version, outcome = run_for_version("pipelines.evaluation:evaluation_pipeline", spec, version, no_cache=no_cache)
    if version is None:
        return fail(outcome, 1)
    steps = outcome.run.steps
    decision = steps["gates_step"].outputs["promotion_decision"][0].load()
    card = steps["model_card_step"].outputs
    path = write_model_card(spec.problem.name, version, card["model_card_markdown"][0].load(),
                            str(card["model_card_html"][0].load()))
    say()
    say(f"evaluation run: {outcome.run.name}")
    say(f"model version:  {spec.problem.name} v{version}")
    print_gates(decision)
    stage = f" (now {decision['stage']})" if decision.get("stage") else ""
    say(f"decision:       {decision['decision']}{stage}")
    if "mitigation_step" in steps:
        mitigated = steps["mitigation_step"].outputs["mitigation_report"][0].load()
        say(f"mitigation ({mitigated['method']}): gates would {'pass' if mitigated['decision']['passed'] else 'fail'}"
            f" after mitigation; see the mitigation report")
    say(f"model card:     {path.resolve()} (and .html)")
    if not decision["passed"]:
        say(f"failed gates:   {'; '.join(decision['failed'])}")
        if spec.evaluation.blocking:
            return GATES_FAILED
    return 0

"""`run.py evaluate`: evaluate a model version, print the gates, the decision and where the card is."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, format_table, say
from keel.evaluation.gates import INCOMPLETE, Decision
from keel.lifecycle.evaluation import EVALUATION_INCOMPLETE, GATES_FAILED, EvaluationResult  # noqa: F401 (exit codes)
from keel.spec.models import Spec


def print_gates(decision: Decision) -> None:
    from keel.evaluation.gates import result_text

    rows = [(g["gate"], "-" if g["value"] is None else g["value"], result_text(g)) for g in decision["gates"]]
    say(format_table(["gate", "value", "result"], rows))


def evaluate(spec: Spec, version: Optional[int], no_cache: bool = False) -> int:
    say(f"keel: evaluating model '{spec.problem.name}' (loading ZenML takes a few seconds) ...")
    from keel.cli.authorize import authorize
    from keel.lifecycle.evaluation import evaluate_version

    if (authorization := authorize(spec, "evaluate", version=version)).refused:
        return authorization.exit_code

    return print_evaluation(spec, evaluate_version(spec, version, no_cache=no_cache))


def print_evaluation(spec: Spec, result: EvaluationResult) -> int:
    """Print what an evaluation came to; its exit code."""
    from keel.evaluation.gates import describe_decision

    if result.version is None:
        return fail(result.error, 1)
    if result.error is not None:
        fail(result.error)
        if result.record is None:  # refused before it began (another evaluation holds the version, another target)
            say(f"decision:       none: v{result.version} was not evaluated, and its stage is unchanged")
        else:
            say(f"decision:       {describe_decision(result.record)}; v{result.version} is not staged and not "
                "deployable (recorded in the audit trail)")
        return EVALUATION_INCOMPLETE
    decision, record = result.decision, result.record
    say()
    say(f"evaluation run: {result.run_name}")
    say(f"model version:  {spec.problem.name} v{result.version}")
    if spec.data.sensitive_attributes:
        say(f"favourable:     {spec.data.target.favourable_decision()} (fairness compares its rates)")
    band = spec.decisions.refer_band
    if band is not None and record.get("threshold") is not None and not band[0] <= record["threshold"] < band[1]:
        say(f"refer band:     WARNING: decisions.refer_band [{band[0]:g}, {band[1]:g}) does not hold v{result.version}'s "
            f"decision threshold {record['threshold']:.4f}: the rows referred to a person all fall on one side of it, "
            "and the scores nearest it are decided without one")
    print_gates(decision)
    stage = f" (now {record['stage']})" if record.get("stage") else " (not staged)"
    say(f"decision:       {describe_decision(decision)}{stage}")
    for change in decision.get("gate_changes") or []:
        say(f"gate change:    {change} (since this version's previous evaluation)")
    if record.get("spec_differs_from_training"):
        say("spec:           evaluated under a spec that differs from the one the version was trained with")
    if result.mitigation:
        mitigated = result.mitigation
        if mitigated.get("applied", True):
            would_pass = mitigated["decision"]["passed"]
            # Shipping is worth suggesting only where it would turn a failing version into a passing one.
            ship = (f" (ship it as its own version: python run.py mitigate --model-version {result.version})"
                    if would_pass and not decision["passed"] else "")
            say(f"mitigation ({mitigated['method']}): gates would {'pass' if would_pass else 'fail'} after "
                f"mitigation; see the mitigation report{ship}")
        else:
            say(f"mitigation ({mitigated['method']}): not applied: {mitigated.get('reason')}")
    say(f"model card:     {result.card_paths[0].resolve()} (and .html; latest copy {result.card_paths[1]})")
    if decision["decision"] == INCOMPLETE:
        say(f"missing:        {'; '.join(decision['missing'])}")
        return EVALUATION_INCOMPLETE
    if decision["failed"]:
        say(f"failed gates:   {'; '.join(decision['failed'])}")
        if spec.evaluation.blocking:
            return GATES_FAILED
    return 0

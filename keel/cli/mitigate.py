"""`run.py mitigate`: fit the spec's mitigation on a version, register the mitigated model as a new
version, print every gate metric before and after and what to run next."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, format_table, say
from keel.spec.models import Spec


def mitigate(spec: Spec, version: Optional[int], no_cache: bool = False) -> int:
    mitigation = spec.evaluation.mitigation
    if mitigation.method == "none":
        return fail("keel: mitigate needs evaluation.mitigation.method in the spec (threshold_optimizer or "
                    "exponentiated_gradient), e.g. --set evaluation.mitigation.method=exponentiated_gradient", 2)
    say(f"keel: mitigating '{spec.problem.name}' with {mitigation.method} (loading ZenML takes a few seconds) ...")
    from keel.cli.authorize import authorize

    if (authorization := authorize(spec, "mitigate", version=version)).refused:
        return authorization.exit_code
    from keel.evaluation.gates import describe_decision
    from keel.evaluation.mitigation import before_after_rows
    from keel.lifecycle.mitigation import mitigate_version

    result = mitigate_version(spec, version, no_cache=no_cache)
    if result.error is not None:
        return fail(result.error, result.exit_code)
    version, new, report = result.version, result.new_version, result.report
    say()
    say(f"run:            {result.run_name}")
    say(f"model version:  {spec.problem.name} v{new}, mitigated from v{version} "
        f"({report['method']}, {report['constraint']} on {report['attribute']})")
    say(f"fitted on:      the {report['fitted_on']}, groups {', '.join(report['groups_fitted'])}")
    for group, reason in report["groups_left_out"].items():
        say(f"left out:       {group} ({reason}): decided as without mitigation")
    say(f"decides by:     {report['decision_rule']}")
    if report["needs_attribute_at_prediction"]:
        say(f"serving:        requests to v{new} carry `{report['attribute']}`; the service accepts it while v{new} "
            "is loaded (logged, never a feature of another version)")
    reasons = report.get("principal_reasons") or {}
    if reasons:
        say(f"reasons:        principal reasons of v{new}'s unfavourable decisions: {reasons['how']}")
    say()
    say("every gate metric on the test split, before and after (the mitigated model's own scores and decisions):")
    say(format_table(["metric", "before", "after", "gate"], before_after_rows(report["before_after"])))
    say(f"gates after:    {describe_decision(report['decision'])} (the champion comparison is added by evaluate)")
    if report.get("worsened"):
        say(f"warning:        the mitigation widened the gap it targets on the test split: {report['worsened']}")
    say(f"next:           python run.py evaluate --model-version {new}   (same gates; staged if it passes), then deploy")
    return 0

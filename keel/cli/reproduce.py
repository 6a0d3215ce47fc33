"""`run.py reproduce --model-version N`: rebuild a version and prove it identical (exit 0) or not (exit 1)."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, say


# A version reproduce does not rebuild by design (a mitigation of a dask-trained version): told what to
# reproduce instead, apart from 1 (not identical, or not rebuilt because a check failed).
REFUSED = 5


def reproduce(spec, version: Optional[int]) -> int:
    from keel import registration as keys
    from keel.lifecycle.reproduction import reproduce_version, reproduction_target

    target = reproduction_target(spec, version)
    if target.error is not None:
        return fail(target.error, 1)
    say(f"keel: reproducing {spec.problem.name} v{target.version} (trained by run {target.recorded.get(keys.RUN_NAME)}) ...")
    source = target.recorded.get(keys.MITIGATED_FROM)
    if source is not None:
        method = (target.recorded.get(keys.MITIGATION) or {}).get("method")
        say(f"keel: v{target.version} is v{source} mitigated by {method}: reproducing v{source}, then refitting the "
            f"mitigation on its splits")
    reproduced = reproduce_version(target)
    if reproduced.error is not None:
        return fail(reproduced.error, 1)
    result = reproduced.result
    if result.refused is not None:
        return fail(f"keel: v{target.version} is {result.refused}", REFUSED)
    for check in result.checks:
        say(f"  {check.name:<16} {check.status:<8} {check.detail}")
    if not result.retrained:
        return fail(f"\nnot reproduced: {'; '.join(c.name for c in result.checks if c.status == 'FAILED')} "
                    "check(s) failed, so the version was not retrained", 1)
    say()
    if result.identical and result.within_tolerance:
        say(f"reproduced within tolerance {result.within_tolerance}")
        return 0
    if result.identical:
        say(f"reproduced: identical model SHA-256 {result.reproduced[keys.MODEL_SHA256]} and identical "
            f"validation and test metrics")
        return 0
    for difference in result.differences:
        say(f"  DIFFERS {difference['what']}: recorded {difference['recorded']}, reproduced {difference['reproduced']}")
        say(f"          likely cause: {difference['cause']}")
    return fail(f"\nNOT identical: {len(result.differences)} difference(s)", 1)

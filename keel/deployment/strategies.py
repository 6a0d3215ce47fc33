"""Rollout strategies as a sequence of routing tables (stages); the controller walks them."""

from __future__ import annotations

from typing import List, Optional

from keel.serving.routing import Arm, RoutingTable
from keel.spec.deployment import DeploymentSpec


def rollout_stages(spec: DeploymentSpec, challenger: int, champion: Optional[int]) -> List[RoutingTable]:
    """The routing table of each stage. With no champion every strategy is one all-at-once stage."""
    new = Arm("challenger", challenger, 1.0)
    if champion is None:
        return [RoutingTable([new], strategy="all-at-once", step="100%", salt=spec.salt)]
    old = Arm("champion", champion, 1.0)
    strategy = spec.strategy
    if strategy in ("all-at-once", "blue-green"):
        # Blue-green keeps the champion (blue) loaded beside the challenger (green): switch-back is
        # a routing change, not a redeploy.
        return [RoutingTable([new], strategy=strategy, step="100% challenger", salt=spec.salt,
                             extra={"standby": champion})]
    if strategy == "canary":
        return [RoutingTable([Arm("champion", champion, round(1 - share, 6)), Arm("challenger", challenger, share)]
                             if share < 1 else [new], strategy="canary", step=f"{share:.0%}", salt=spec.salt,
                             extra={"standby": champion})
                for share in spec.canary_steps]
    if strategy == "ab":
        split = spec.ab_split
        return [RoutingTable([Arm("champion", champion, round(1 - split, 6)), Arm("challenger", challenger, split)],
                             strategy="ab", step=f"{split:.0%} challenger", salt=spec.salt)]
    return [RoutingTable([old], shadow=Arm("challenger", challenger, 0.0), strategy="shadow",
                         step="mirror to challenger", salt=spec.salt)]


def challenger_share(table: RoutingTable, challenger: int) -> float:
    """The share of live traffic the challenger answers (a shadow answers none)."""
    return sum(arm.weight for arm in table.arms if arm.version == challenger)


def stages_before_approval(stages: List[RoutingTable], challenger: int, champion: int) -> List[RoutingTable]:
    """The stages a version without its approval record may run: never all live traffic.

    Canary keeps its steps below 100%; a strategy that would hand everything to the challenger at
    once (all-at-once, blue-green, a canary of one 100% step) checks it under mirrored traffic
    instead, whose answers are logged and never returned."""
    partial = [table for table in stages if challenger_share(table, challenger) < 1.0]
    if partial:
        return partial
    strategy = stages[0].strategy if stages else "shadow"
    return [RoutingTable([Arm("champion", champion, 1.0)], shadow=Arm("challenger", challenger, 0.0),
                         strategy=strategy, step="mirror to challenger (awaiting approval)",
                         salt=stages[0].salt if stages else "keel")]


def champion_only(champion: int, salt: str, reason: str) -> RoutingTable:
    return RoutingTable([Arm("champion", champion, 1.0)], strategy="rollback", step=reason, salt=salt)

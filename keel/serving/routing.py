"""Deterministic traffic routing: one entity always lands on the same arm, on every stack.

An arm's share is a fraction of 10,000 buckets; an entity's bucket is a SHA-256 of a salt and its
id, so the split is stable for the entity and independent of request order or process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import List, Optional

BUCKETS = 10_000


@dataclass(frozen=True)
class Arm:
    name: str       # e.g. "champion", "challenger"
    version: int
    weight: float   # share of traffic, 0..1


@dataclass(frozen=True)
class RoutingTable:
    arms: List[Arm]
    shadow: Optional[Arm] = None  # receives mirrored traffic; its answers are logged, never returned
    salt: str = "keel"
    strategy: str = "all-at-once"
    step: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        total = sum(arm.weight for arm in self.arms)
        if not self.arms or abs(total - 1.0) > 1e-9:
            raise ValueError(f"arm weights must add up to 1, not {total}")

    def bucket(self, entity_id: str) -> int:
        digest = hashlib.sha256(f"{self.salt}:{entity_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % BUCKETS

    def arm_for(self, entity_id: str) -> Arm:
        bucket, edge = self.bucket(entity_id), 0.0
        for arm in self.arms:
            edge += arm.weight * BUCKETS
            if bucket < round(edge):
                return arm
        return self.arms[-1]

    def to_dict(self) -> dict:
        return {"arms": [vars(a) for a in self.arms], "shadow": vars(self.shadow) if self.shadow else None,
                "salt": self.salt, "strategy": self.strategy, "step": self.step, "extra": self.extra}

    @classmethod
    def from_dict(cls, raw: dict) -> "RoutingTable":
        return cls([Arm(**a) for a in raw["arms"]], Arm(**raw["shadow"]) if raw.get("shadow") else None,
                   raw.get("salt", "keel"), raw.get("strategy", ""), raw.get("step", ""), raw.get("extra", {}))

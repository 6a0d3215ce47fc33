"""The Annex IV document's rollout row says what a deployment served and since when, and claims
"now serving" only for what the audit trail's latest routing serves: a rolled-back version's deployment
metadata still names itself as serving."""

from keel.governance.annex_iv import documentation_sections


def _routing(seq, time, version, strategy="promoted"):
    return {"seq": seq, "time": time, "event": "deployment_step", "actor": "ci", "model": "m", "version": version,
            "details": {"routing": {"arms": [{"name": "champion", "version": version, "weight": 1.0}],
                                    "shadow": None, "strategy": strategy, "step": "100%"}}}


V2_PROMOTED = {"strategy": "all-at-once", "outcome": "promoted", "serving": 2, "archived": 1,
               "stages": [{"stage": 1, "step": "100% challenger", "healthy": True, "breaches": []}]}
RECORDS = [
    _routing(1, "2026-01-01T10:00:00+00:00", 1),
    _routing(2, "2026-01-02T10:00:00+00:00", 2),
    {"seq": 3, "time": "2026-01-02T10:00:05+00:00", "event": "deployment_outcome", "actor": "ci", "model": "m",
     "version": 2, "details": V2_PROMOTED},
    _routing(4, "2026-01-03T10:00:00+00:00", 1, strategy="rollback"),
    {"seq": 5, "time": "2026-01-03T10:00:01+00:00", "event": "rollback", "actor": "ops", "model": "m", "version": 2,
     "details": {"routing": {"arms": [{"name": "champion", "version": 1, "weight": 1.0}], "shadow": None}}},
]


def _rollout(spec, records, version=2, deployment=V2_PROMOTED):
    sections = documentation_sections(spec, "m", version, {"deployment": deployment}, {}, records)
    rows = {item: value for item, value, _ in next(s for s in sections if s["title"] == "5. Risk controls")["rows"]}
    return rows["Rollout"]


def test_a_rolled_back_version_is_said_to_have_served_not_to_serve_now(default_spec):
    rollout = _rollout(default_spec, RECORDS)
    assert "now serving" not in rollout
    assert rollout.startswith("all-at-once 100% challenger: promoted, served v2 from 2026-01-02T10:00:05+00:00")
    assert "; no longer: since 2026-01-03T10:00:01+00:00 the audit trail routes v1 100% (champion)" in rollout


def test_the_version_the_latest_routing_serves_is_now_serving(default_spec):
    rollout = _rollout(default_spec, RECORDS[:3])
    assert rollout.startswith("all-at-once 100% challenger: promoted, served v2 from 2026-01-02T10:00:05+00:00; "
                              "now serving v2: v2 100% (champion) since 2026-01-02T10:00:00+00:00")


def test_without_routing_records_nothing_is_claimed_to_serve_now(default_spec):
    rollout = _rollout(default_spec, [])
    assert rollout == ("all-at-once 100% challenger: promoted, served v2 (no routing recorded in the audit trail "
                       "to say what serves now)")

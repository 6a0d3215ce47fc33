"""The Annex IV document's rollout row says what a deployment served and since when, and claims
"now serving" only for what the audit trail's latest routing serves: a rolled-back version's deployment
metadata still names itself as serving."""

from keel.governance.annex_iv import documentation_markdown, documentation_sections


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


def _evaluated(seq, run_id, decision, gates=(), threshold=None):
    details = {"decision": decision, "run_id": run_id, "run_name": f"evaluation_{run_id}", "gates": list(gates)}
    if threshold is not None:
        details.update(threshold=threshold, threshold_rule="youden")
    return {"seq": seq, "time": f"2026-01-0{seq}T10:00:00+00:00", "event": "evaluated", "actor": "ci", "model": "m",
            "version": 2, "run_id": run_id, "details": details}


PASSED_GATES = [{"gate": "roc_auc >= 0.7", "value": 0.81, "passed": True},
                {"gate": "demographic_parity_ratio >= 0.8", "value": 0.86, "passed": True}]
RELEASED = [_evaluated(1, "run-a", "promote", PASSED_GATES, threshold=0.4321),
            {"seq": 2, "time": "2026-01-02T10:00:05+00:00", "event": "deployment_outcome", "actor": "ci", "model": "m",
             "version": 2, "details": V2_PROMOTED}]
FAILED_SINCE = _evaluated(3, "run-b", "incomplete")


def _sections(spec, records, latest):
    return documentation_sections(spec, "m", 2, {"deployment": V2_PROMOTED, "evaluation": latest["details"]}, {},
                                  records)


def test_a_served_version_evaluated_again_keeps_the_evaluation_it_was_deployed_on(default_spec):
    """A failed re-evaluation of the production version replaced its latest evaluation record: the
    document still shows, from the audit trail, the evaluation and gates it was deployed on."""
    sections = _sections(default_spec, RELEASED + [FAILED_SINCE], FAILED_SINCE)
    released = next(s for s in sections if s["title"] == "3a. Evaluation the deployment relied on")
    rows = {item: value for item, value, _ in released["rows"]}
    assert rows["Evaluation run"].startswith("evaluation_run-a (run-a), recorded at 2026-01-01T10:00:00+00:00")
    assert rows["Decision"] == "promote" and rows["Decision threshold"] == "0.4321 (rule youden)"
    assert released["gates"] == [("roc_auc >= 0.7", 0.81, "pass"), ("demographic_parity_ratio >= 0.8", 0.86, "pass")]
    assert "latest: evaluation_run-b (incomplete)" in released["text"]
    markdown = documentation_markdown("m", 2, sections, None)
    assert "## 3a. Evaluation the deployment relied on" in markdown
    assert "| demographic_parity_ratio >= 0.8 | 0.86 | pass |" in markdown


def test_no_released_evaluation_section_when_the_latest_is_the_one_deployed_or_it_never_served(default_spec):
    titles = lambda sections: [s["title"] for s in sections]  # noqa: E731
    assert "3a. Evaluation the deployment relied on" not in titles(_sections(default_spec, RELEASED, RELEASED[0]))
    rolled_back = dict(RELEASED[1], details=dict(V2_PROMOTED, outcome="rolled back", serving=1))
    assert "3a. Evaluation the deployment relied on" not in titles(
        _sections(default_spec, [RELEASED[0], rolled_back, FAILED_SINCE], FAILED_SINCE))


def _oversight(spec, records, version=2):
    sections = documentation_sections(spec, "m", version, {"deployment": V2_PROMOTED}, {}, records)
    return {item: value for item, value, _ in next(s for s in sections if s["title"] == "6. Human oversight")["rows"]}


def test_human_oversight_names_the_refer_band_and_the_referrals_decided(default_spec):
    """helper-63: section 6 listed only who trained, validated and approved: not that scores in the refer
    band go to a person, nor how many referrals people decided and overrode."""
    from keel.lifecycle.review import REVIEW_DECIDED

    decided = [{"seq": 10 + i, "time": "2026-01-04T10:00:00+00:00", "event": REVIEW_DECIDED, "actor": "os:ann",
                "model": "m", "version": 2, "details": {"request_id": f"r{i}", "row": 0, "overrides_model": i < 2}}
               for i in range(3)]
    banded = default_spec.model_copy(update={"decisions": default_spec.decisions.model_copy(
        update={"refer_band": (0.25, 0.3)})})
    rows = _oversight(banded, RECORDS + decided)
    assert rows["Referral to a person"].startswith("scores in [0.25, 0.3) are referred to a person")
    assert rows["Referrals decided"] == "3, of which 2 against the model's own decision"
    assert _oversight(banded, RECORDS)["Referrals decided"] == "none yet"
    assert _oversight(banded, RECORDS + decided, version=1)["Referrals decided"] == "none yet"  # v2's, not v1's
    unbanded = default_spec.model_copy(update={"decisions": default_spec.decisions.model_copy(
        update={"refer_band": None})})
    assert _oversight(unbanded, RECORDS)["Referral to a person"].startswith("none: decisions.refer_band is not set")


def test_the_documentation_describes_the_release_with_the_evaluation_runs_spec(default_spec, monkeypatch):
    """helper-63: `docs` drew the refer band, gates and roles from the training run's spec (0.35-0.45) though
    the version was evaluated and deployed under 0.25-0.30; those sections now come from the spec its
    evaluation run recorded, the data and training ones still from the training run's."""
    import keel.lifecycle.reproduction as reproduction
    from keel.lifecycle.documentation import with_release_sections

    trained = default_spec.model_copy(update={"decisions": default_spec.decisions.model_copy(
        update={"refer_band": (0.35, 0.45)})})
    evaluated = default_spec.model_dump(mode="json")
    evaluated["decisions"]["refer_band"] = [0.25, 0.3]
    evaluated["data"]["source"]["rows"] = 123  # not a release section: stays the training run's
    monkeypatch.setattr(reproduction, "recorded_spec", lambda run_id: evaluated if run_id == "eval-1" else None)
    released, origin = with_release_sections(trained, "the spec recorded by training run t-1", "eval-1")
    assert released.decisions.refer_band == (0.25, 0.3) and released.data == trained.data
    assert origin == ("the spec recorded by training run t-1; evaluation, decisions, governance, deployment as "
                      "recorded by evaluation run eval-1")
    assert with_release_sections(trained, "o", "gone") == (trained, "o")  # not readable back: the training spec
    assert with_release_sections(trained, "o", None) == (trained, "o")

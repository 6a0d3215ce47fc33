"""`explain --prediction`'s decision lines (issue 19): the reasons logged with an unfavourable answer,
and a referral with the person's decision, read back from a real prediction log."""

from datetime import datetime, timezone

from keel.cli.explain import decision_lines
from keel.governance.lineage import logged_rows
from keel.serving.prediction_log import PredictionLog
from keel.serving.reviews import record_decision, review_of
from keel.spec.data import TargetSpec

# Not credit-shaped: text labels, and the favourable decision is the positive class (an offer made).
TARGET = TargetSpec(column="hired", positive="yes", negative="no", favourable="positive")
T0 = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)


def _row(request_id, score, decision, reasons=None):
    return {"request_id": request_id, "row": 0, "entity_id": f"c-{request_id}", "time": T0, "model_name": "hiring",
            "model_version": 3, "arm": "champion", "shadow": False, "inputs": {"years": 2.0}, "score": score,
            "decision": decision, "latency_ms": 1.0, "reasons": reasons}


def test_reasons_and_the_human_decision_are_shown_as_logged(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url, refer_band=(0.4, 0.6))
    log.append([_row("declined", 0.1, 0, [{"feature": "years", "statement": "Too little experience",
                                           "contribution": 0.8}])])
    log.append([_row("referred", 0.5, 1)])
    log.append([_row("offered", 0.9, 1)])
    [declined] = logged_rows(url, "declined")
    lines = decision_lines(declined, review_of(url, "declined", 0), TARGET)
    assert lines[0] == "principal reasons given with the answer:" and "1. Too little experience (years" in lines[1]
    [referred] = logged_rows(url, "referred")
    assert "pending" in decision_lines(referred, review_of(url, "referred", 0), TARGET)[1]
    record_decision(url, "referred", 0, 0, "References did not confirm the role", "ana", T0)
    decided = decision_lines(referred, review_of(url, "referred", 0), TARGET)[1]
    assert "unfavourable (class 0) by ana" in decided and "overrides the threshold's decision 1" in decided
    assert decided.endswith("References did not confirm the role")
    [offered] = logged_rows(url, "offered")
    assert review_of(url, "offered", 0) is None
    assert decision_lines(offered, None, TARGET)[0].startswith("principal reasons: none logged")


def test_a_referral_declined_by_a_person_shows_the_reasons_logged_when_it_was_referred(tmp_path):
    """helper-40: a referral a person declined carried no principal reasons, though the applicant is owed
    them. They are logged at referral (not answered: the answer is `refer`) and shown once a person
    declines; a favourable decision shows none."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(url, refer_band=(0.4, 0.6))
    reasons = [{"feature": "years", "statement": "Too little experience", "contribution": 0.3}]
    log.append([_row("declined-later", 0.45, 0, reasons), _row("offered-later", 0.55, 1, reasons) | {
        "request_id": "offered-later"}])
    [pending] = logged_rows(url, "declined-later")
    assert "should a person decline it" in decision_lines(pending, review_of(url, "declined-later", 0), TARGET)[2]
    record_decision(url, "declined-later", 0, 0, "References did not confirm the role", "ana", T0)
    lines = decision_lines(pending, review_of(url, "declined-later", 0), TARGET)
    assert lines[2].startswith("principal reasons for the person's unfavourable decision")
    assert "1. Too little experience (years, +0.3000 log-odds towards the unfavourable decision)" in lines[3]
    record_decision(url, "offered-later", 0, 1, "Strong references", "ana", T0)
    [offered] = logged_rows(url, "offered-later")
    assert not any("principal reasons" in line for line in decision_lines(offered, review_of(url, "offered-later", 0),
                                                                          TARGET))


def test_explain_and_lineage_word_a_human_decision_alike_and_name_it_favourable_only_when_declared(tmp_path):
    """`explain` said "favourable (class 0)" where `lineage` said "0 by ..."; and with no favourable class
    declared, explain called every human decision "unfavourable"."""
    from keel.governance.lineage import prediction_lineage

    url = f"sqlite:///{tmp_path / 'log.db'}"
    PredictionLog(url, refer_band=(0.4, 0.6)).append([_row("referred", 0.5, 1)])
    record_decision(url, "referred", 0, 0, "References did not confirm the role", "ana", T0)
    [row], review = logged_rows(url, "referred"), review_of(url, "referred", 0)
    undeclared = TargetSpec(column="hired", positive="yes", negative="no")
    for target, words in ((TARGET, "unfavourable (class 0) by ana"), (undeclared, "class 0 by ana")):
        [explained] = [line for line in decision_lines(row, review, target) if "human decision" in line]
        traced = dict(prediction_lineage(row, [], review, target))["human decision"]
        assert explained == f"  human decision: {traced}" and traced.startswith(words)

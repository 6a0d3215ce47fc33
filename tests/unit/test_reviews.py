"""Issue 19 item 2: the review queue (keel.serving.reviews) and `run.py review list | decide` in process,
on a prediction log in a temporary deployment folder and an audit trail under $KEEL_AUDIT_ROOT."""

import json
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from keel.cli.main import main
from keel.governance.audit import verify
from keel.governance.store import FolderStore
from keel.serving.prediction_log import PREDICTIONS, PredictionLog
from keel.serving.reviews import (REVIEWS, ReviewError, pending_count, pending_reviews, record_decision,
                                  referral_rows, review_rates)
from tests.conftest import ROOT

BAND = (0.4, 0.6)
START = datetime(2026, 5, 1, 9, tzinfo=timezone.utc)


def _rows(scores, shadow=False, request="r"):
    return [{"request_id": f"{request}{i}", "row": 0, "entity_id": f"e{i}", "time": START + timedelta(minutes=i),
             "model_name": "m", "model_version": 3, "arm": "champion", "shadow": shadow, "inputs": "{}",
             "score": s, "decision": int(s >= 0.5), "latency_ms": 1.0} for i, s in enumerate(scores)]


def _log(url, scores):
    rows = _rows(scores)
    log = PredictionLog(url)
    log.append(rows)
    with log.engine.begin() as connection:
        connection.execute(REVIEWS.insert(), referral_rows(rows, BAND))
    return rows


def test_only_served_scores_inside_the_band_are_referred():
    rows = _rows([0.1, 0.4, 0.55, 0.6, 0.9]) + _rows([0.5], shadow=True, request="s")
    referred = referral_rows(rows, BAND)
    assert [r["request_id"] for r in referred] == ["r1", "r2"]  # [0.4, 0.6): 0.6 is out; the shadow row never
    assert referred[1]["model_decision"] == 1 and referred[1]["score"] == 0.55
    assert referral_rows(rows, None) == []
    probes = [{**r, "entity_id": f"probe-1-{i}"} for i, r in enumerate(rows)]  # keel's rollout probes: for no one
    assert [r["request_id"] for r in referral_rows(probes + rows, BAND, ["probe-"])] == ["r1", "r2"]


def test_a_decision_the_audit_trail_cannot_take_is_not_committed_and_can_be_made_again(tmp_path):
    """helper-40: the decision was committed, then the trail refused its record: the decision stood
    unaudited and could never be made again ("never overwritten")."""
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    _log(url, [0.45])

    def unwritable(review):
        raise NotADirectoryError("the audit root is a file")

    with pytest.raises(NotADirectoryError):
        record_decision(url, "r0", 0, 0, "income verified", "os:ana", START, audit=unwritable)
    assert [r["request_id"] for r in pending_reviews(url)] == ["r0"]
    audited = []
    decided = record_decision(url, "r0", 0, 0, "income verified", "os:ana", START, audit=audited.append)
    assert audited == [decided] and decided["human_decision"] == 0
    assert pending_reviews(url) == [] and pending_count(url) == 0


def test_a_decision_is_recorded_beside_the_prediction_never_over_it_and_never_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    _log(url, [0.45, 0.55, 0.2])
    assert [(r["request_id"], r["score"]) for r in pending_reviews(url)] == [("r0", 0.45), ("r1", 0.55)]
    assert pending_reviews(url, limit=1) == pending_reviews(url)[:1] and pending_count(url) == 2
    decided = record_decision(url, "r1", 0, 0, "income verified by phone", "os:ana", START + timedelta(hours=2))
    assert decided["human_decision"] == 0 and decided["model_decision"] == 1 and decided["reviewer"] == "os:ana"
    assert [r["request_id"] for r in pending_reviews(url)] == ["r0"]
    with pytest.raises(ReviewError, match="never overwritten"):
        record_decision(url, "r1", 0, 1, "changed my mind", "os:bob", START + timedelta(hours=3))
    with pytest.raises(ReviewError, match="no referral r2:0"):
        record_decision(url, "r2", 0, 1, "not referred", "os:bob", START)
    with pytest.raises(ReviewError, match="--reason is required"):
        record_decision(url, "r0", 0, 1, "  ", "os:bob", START)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        logged = connection.execute(sa.select(PREDICTIONS.c.request_id, PREDICTIONS.c.score, PREDICTIONS.c.decision)
                                    .order_by(PREDICTIONS.c.request_id)).all()
    engine.dispose()
    assert [tuple(r) for r in logged] == [("r0", 0.45, 0), ("r1", 0.55, 1), ("r2", 0.2, 0)]  # as the model said
    assert review_rates(url, None, None) == {"referred": 2, "decided": 1, "overridden": 1, "override_rate": 1.0}
    assert review_rates(url, START + timedelta(minutes=1), None)["referred"] == 1
    assert review_rates(url, START + timedelta(days=1), None)["override_rate"] is None


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    monkeypatch.delenv("KEEL_ACTOR", raising=False)
    folder = tmp_path / "deployments"
    overrides = ["--config", str(ROOT / "configs" / "credit_risk.yaml"), "--set", f"deployment.folder={folder}",
                 "--set", "deployment.allow_folder_outside_project=true", "--set", "problem.name=review_model"]
    (folder / "review_model").mkdir(parents=True)
    _log(f"sqlite:///{folder / 'review_model' / 'predictions.db'}", [0.45, 0.55])
    return overrides, tmp_path / "audit" / "review_model"


def test_review_list_and_decide_record_the_person_and_the_audit_trail(project, capsys):
    overrides, audit = project
    assert main(["review", "list", *overrides]) == 0
    out = capsys.readouterr().out
    assert "r0:0" in out and "r1:0" in out and "0.5500" in out and "pending referrals" not in out
    assert main(["review", "list", "--limit", "1", *overrides]) == 0
    out = capsys.readouterr().out
    assert "r1:0" not in out and "the oldest 1 of 2 pending referrals (--limit 2 lists them all)" in out
    # credit: favourable is `negative` (no predicted default), so "favourable" is class 0: overrides r1's 1.
    assert main(["review", "decide", "r1:0", "--decision", "favourable", "--reason", "documented income",
                 *overrides]) == 0
    assert "overridden" in capsys.readouterr().out
    assert main(["review", "decide", "r1", "--decision", "unfavourable", "--reason", "again", *overrides]) == 1
    assert "never overwritten" in capsys.readouterr().err
    assert main(["review", "decide", "r1:x", "--decision", "favourable", "--reason", "x", *overrides]) == 2
    records = [json.loads(p.read_text()) for p in sorted(audit.iterdir())]
    assert [r["event"] for r in records] == ["review_decided"]
    details = records[0]["details"]
    assert details["class"] == 0 and details["model_decision"] == 1 and details["overrides_model"] is True
    assert details["reason"] == "documented income" and records[0]["version"] == 3
    assert verify(FolderStore(audit)).ok
    assert main(["review", "list", *overrides]) == 0
    assert "r1:0" not in capsys.readouterr().out


def test_a_referral_named_without_its_row_is_the_request_s_only_one_or_refused_when_it_has_several(project, capsys):
    """helper-63: `review decide REQUEST_ID` decided row 0, whichever rows the request had referred: for a
    batch or a multi-record request, the person's decision went on someone else's row."""
    overrides, audit = project
    url = f"sqlite:///{Path(overrides[3].split('=', 1)[1]) / 'review_model' / 'predictions.db'}"
    many = [{**row, "request_id": "book-1", "row": i, "entity_id": f"b{i}"} for i, row in enumerate(_rows([0.45, 0.1, 0.55]))]
    single = [{**row, "request_id": "two-1", "row": i, "entity_id": f"t{i}"} for i, row in enumerate(_rows([0.2, 0.5]))]
    log = PredictionLog(url)
    log.append(many + single)
    with log.engine.begin() as connection:
        connection.execute(REVIEWS.insert(), referral_rows(many + single, BAND))
    log.close()
    assert main(["review", "decide", "book-1", "--decision", "favourable", "--reason", "x", *overrides]) == 2
    assert "request book-1 has 2 referrals (book-1:0, book-1:2): name the row" in capsys.readouterr().err
    assert not audit.exists() and {r["request_id"] for r in pending_reviews(url)} >= {"book-1", "two-1"}
    # The request's one referral is its row 1, not row 0 (which was not referred).
    assert main(["review", "decide", "two-1", "--decision", "unfavourable", "--reason", "checked", *overrides]) == 0
    assert "recorded: two-1:1 unfavourable" in capsys.readouterr().out
    assert [(r["details"]["request_id"], r["details"]["row"]) for r in
            (json.loads(p.read_text()) for p in sorted(audit.iterdir()))] == [("two-1", 1)]
    # A request with no referral is refused as before, naming the row it stands for.
    assert main(["review", "decide", "nobody", "--decision", "favourable", "--reason", "x", *overrides]) == 1
    assert "no referral nobody:0" in capsys.readouterr().err


def test_a_decision_is_refused_in_words_when_the_audit_trail_cannot_be_written(project, capsys, tmp_path, monkeypatch):
    overrides, _ = project
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "a-file"))
    assert main(["review", "decide", "r1:0", "--decision", "favourable", "--reason", "documented", *overrides]) == 1
    err = capsys.readouterr().err
    assert "could not be recorded in the audit trail" in err and "Traceback" not in err
    monkeypatch.setenv("KEEL_AUDIT_ROOT", str(tmp_path / "audit"))
    assert main(["review", "decide", "r1:0", "--decision", "favourable", "--reason", "documented", *overrides]) == 0


def test_with_roles_reviewing_and_batch_scoring_need_their_role_and_the_refusal_is_audited(project, capsys):
    import pwd
    import os

    overrides, audit = project
    me = pwd.getpwuid(os.geteuid()).pw_name
    roles = ["--set", "deployment.approval.auto_approve=false", "--set",
             "governance.roles={developer: [dev-ann], validator: [val-vic], approver: [app-amy], operator: [op-oli]}"]
    assert main(["review", "decide", "r1:0", "--decision", "favourable", "--reason", "x", *overrides, *roles]) == 1
    err = capsys.readouterr().err
    assert "review refused: it needs the role operator" in err and f"os:{me}" in err
    assert main(["score", "--input", "book.csv", "--output", "out.parquet", *overrides, *roles]) == 1
    assert "score refused: it needs the role operator or developer" in capsys.readouterr().err
    from keel.governance.identity import established

    assert established() is None  # the command's identity ends with it: a later command in this process names its own
    records = [json.loads(p.read_text()) for p in sorted(audit.iterdir())]
    assert [r["event"] for r in records] == ["refused", "refused"]
    assert pending_reviews(f"sqlite:///{Path(overrides[3].split('=', 1)[1]) / 'review_model' / 'predictions.db'}")


def test_a_decision_edited_in_the_prediction_log_or_deleted_from_the_trail_fails_audit_verify(project, capsys):
    """helper-40: an edited `reviews` row was shown by `explain` as the person's decision, and `audit
    verify` said intact; the log's table is not tamper-evident, the trail is."""
    overrides, audit = project
    assert main(["review", "decide", "r1:0", "--decision", "favourable", "--reason", "documented income",
                 *overrides]) == 0
    assert main(["audit", "verify", *overrides]) == 0
    assert "review cross-check: every decision on a referral in the prediction log is the audit trail's" in \
        capsys.readouterr().out
    url = f"sqlite:///{Path(overrides[3].split('=', 1)[1]) / 'review_model' / 'predictions.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.update(REVIEWS).where(REVIEWS.c.request_id == "r1").values(
            human_decision=1, reason="declined after call", reviewer="os:dana"))
    engine.dispose()
    assert main(["audit", "verify", *overrides]) == 1
    err = capsys.readouterr().err
    assert "referral r1:0: the prediction log's class, reason, reviewer differ from the audit trail's record" in err


def test_the_trail_is_what_a_decision_is_checked_against():
    from keel.lifecycle.review import REVIEW_DECIDED, trail_disagreements

    decided = {"request_id": "r1", "row": 0, "human_decision": 0, "reason": "ok", "reviewer": "os:ana",
               "decided_at": START}
    record = {"seq": 4, "event": REVIEW_DECIDED, "actor": "os:ana",
              "details": {"request_id": "r1", "row": 0, "class": 0, "reason": "ok"}}
    other = {**record, "seq": 5, "details": {**record["details"], "request_id": "r2"}}
    assert trail_disagreements([decided], [record]) == []
    assert trail_disagreements([{**decided, "decided_at": None}], []) == []  # pending: nothing to check
    assert "no review_decided record" in trail_disagreements([decided], [])[0]
    assert "reason differ" in trail_disagreements([{**decided, "reason": "edited"}], [record])[0]
    assert "r2:0: the audit trail records a decision (seq 5) the prediction log no longer holds" in \
        trail_disagreements([decided], [record, other])[0]
    assert trail_disagreements([decided], [record, other], every_review=False) == []


def test_a_referral_made_by_a_version_trained_for_the_other_class_is_not_decided_under_this_spec(
        project, capsys, monkeypatch):
    """helper-58: `review decide --decision favourable` under a spec naming the classes the other way round
    than the referring version recorded class 0 (the model's own denial) as "agrees with the model"."""
    from keel.spec.data import target_mapping
    from keel.spec import load_spec

    overrides, audit = project
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    flipped = target_mapping(spec.data.target) | {"favourable": "positive"}
    monkeypatch.setattr("keel.registry.get_model_version_metadata", lambda name, version: {"target": flipped})
    assert main(["review", "decide", "r1:0", "--decision", "favourable", "--reason", "documented income",
                 *overrides]) == 1
    err = capsys.readouterr().err
    assert "referral r1:0 was made by review_model v3, trained with another target than this spec declares " \
           "(favourable 'positive' then, 'negative' now)" in err and "Traceback" not in err
    assert not audit.exists() or not list(audit.iterdir())  # nothing audited ...
    assert main(["review", "list", *overrides]) == 0
    assert "r1:0" in capsys.readouterr().out  # ... and the referral still waits for a decision

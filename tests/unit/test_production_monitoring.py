"""Issue 19 item 4 wired: the monitoring pass's production report (fairness per group, label coverage
per decision, refer and override rates), the fairness trigger, the alert and the drift report's
section. Not credit-shaped: a hiring model with text labels ("hired" is the favourable positive class),
a tiny group, rows without their group, and outcomes known only for the people hired."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from keel.monitoring.alerts import alert_message
from keel.monitoring.monitor import production_report
from keel.monitoring.policy import decide
from keel.monitoring.report import drift_report_html
from keel.serving.prediction_log import PredictionLog
from keel.serving.reviews import pending_reviews, record_decision

START = datetime(2026, 7, 6, tzinfo=timezone.utc)
DATA = {
    "source": {"kind": "csv", "path": "applicants.csv"},
    "target": {"column": "outcome", "positive": "hired", "negative": "rejected", "favourable": "positive"},
    "id_column": "applicant",
    "features": {"years": {"type": "numeric", "min": 0, "max": 60},
                 "track": {"type": "categorical", "categories": ["ops", "eng", "sales"]}},
    "sensitive_attributes": {"team_origin": {"categories": ["north office", "south office", "remote pilot"]}},
    "min_group_size": 40, "min_group_outcomes": 5,
}


def _spec(tmp_path, labels, **fairness):
    from keel.spec import load_spec
    from keel.spec.models import Spec
    from tests.conftest import ROOT

    base = load_spec(ROOT / "configs" / "credit_risk.yaml", [
        "problem.name=hiring_screen", f"deployment.folder={tmp_path}", "deployment.allow_folder_outside_project=true"])
    raw = base.model_dump(mode="json")
    raw["data"] = DATA
    raw["decisions"] = {"refer_band": [0.45, 0.55]}
    raw["monitoring"]["fairness"] = {"groups_from": "request", **fairness}
    raw["monitoring"].pop("simulation", None)  # draws from the credit generator
    raw["monitoring"]["labels"]["source"] = {"kind": "csv", "path": str(labels)}
    for key in ("training", "evaluation"):  # sections that name the credit features are not read here
        raw.pop(key, None)
    return Spec.model_validate(raw)


def _serve(url, groups):
    """One request per applicant; north hired at ~60 %, south at ~25 %; labels for the hired only."""
    rng = np.random.default_rng(3)
    rate = {"north office": 0.6, "south office": 0.25, "remote pilot": 0.5, None: 0.5}
    log = PredictionLog(url, refer_band=(0.45, 0.55))
    rows = []
    for i, group in enumerate(groups):
        score = float(np.clip(rng.normal(rate[group], 0.2), 0, 1))
        inputs = {"years": 3.0, "track": "eng", **({"team_origin": group} if group else {})}
        row = {"request_id": f"r{i}", "row": 0, "entity_id": f"a{i}", "time": START + timedelta(minutes=i),
               "model_name": "hiring_screen", "model_version": 4, "arm": "champion", "shadow": False,
               "inputs": inputs, "score": score, "decision": int(score >= 0.5), "latency_ms": 1.0}
        log.append([row])
        rows.append(row)
    return rows


def _window():
    return {"window": "day", "start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat(),
            "model_version": 4, "traffic": "online"}


def _labels(tmp_path, rows):
    path = tmp_path / "outcomes.csv"
    path.write_text("entity_id,label,time\n" + "".join(
        f"{r['entity_id']},{'hired' if i % 3 else 'rejected'},2026-07-20\n"
        for i, r in enumerate(rows) if r["decision"] == 1))
    return path


def test_a_parity_breach_alerts_retrains_only_when_asked_and_shows_in_the_drift_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    rows = _serve(url, ["north office"] * 300 + ["south office"] * 300 + ["remote pilot"] * 6 + [None] * 20)
    referred = pending_reviews(url, limit=1000)
    for review in referred[:10]:  # people decide ten referrals, overriding the threshold on the first four
        human = 1 - review["model_decision"] if review in referred[:4] else review["model_decision"]
        record_decision(url, review["request_id"], review["row"], human, "checked references", "reviewer", START)
    labels = _labels(tmp_path, rows)
    spec = _spec(tmp_path, labels, min_parity_ratio=0.8)
    report = production_report(spec, _window(), url)
    assert report["verdict"] == "breach" and report["breaches"][0].startswith("team_origin: parity ratio")
    groups = {g["group"]: g for g in report["fairness"]["team_origin"]["groups"]}
    assert groups["north office"]["judged"] and groups["south office"]["judged"]
    assert not groups["remote pilot"]["judged"] and "6 rows (< 40)" in groups["remote pilot"]["reason"]
    assert report["fairness"]["team_origin"]["rows_without_group"] == 20
    coverage = report["label_coverage"]
    assert coverage["favourable"] == 1.0 and coverage["unfavourable"] == 0.0 and coverage["selective"]
    assert report["reviews"]["referred"] == len(referred) and report["reviews"]["decided"] == 10
    assert report["reviews"]["override_rate"] == 0.4
    assert report["reviews"]["refer_rate"] == round(len(referred) / len(rows), 4)

    status = {"verdict": {"alarm": False}, "production": report, "window": _window()}
    history, policy = [], spec.monitoring.retraining
    alert_only = decide(START + timedelta(days=1), status, 0, START, history, policy, 4, spec.monitoring.fairness)
    assert alert_only["fired"] == ["fairness"] and not alert_only["retrain"]
    assert "monitoring.fairness.retrain is false" in alert_only["suppressed_by"]
    message = alert_message("hiring_screen", 4, status, alert_only)
    assert message["fairness"]["verdict"] == "breach"
    # helper-59: the alert listed the alert-only trigger among those that retrain
    assert message["retraining_triggers"] == [] and message["alert_only_triggers"] == ["fairness"]
    retraining = _spec(tmp_path, labels, min_parity_ratio=0.8, retrain=True).monitoring.fairness
    assert decide(START + timedelta(days=1), status, 0, START, history, policy, 4, retraining)["retrain"]
    html = drift_report_html({**status, "model": "hiring_screen", "model_version": 4}, alert_only)
    for text in ("Decisions and fairness in production", "remote pilot", "selective labels", "human override rate"):
        assert text in html


@pytest.mark.parametrize("groups,why", [
    (["remote pilot"] * 30 + [None] * 200, "team_origin: parity ratio not judged"),  # a tiny group, the rest unsent
    ([None] * 100, "team_origin: parity ratio not judged"),                            # groups never sent
])
def test_groups_too_small_or_missing_are_insufficient_never_a_pass_and_alert(tmp_path, groups, why):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    rows = _serve(url, groups)
    spec = _spec(tmp_path, _labels(tmp_path, rows), min_parity_ratio=0.8, max_tpr_gap=0.2, retrain=True)
    report = production_report(spec, _window(), url)
    assert report["verdict"] == "insufficient" and not report["breaches"]
    assert any(u.startswith(why) for u in report["not_judged"])
    status = {"verdict": {"alarm": False}, "production": report, "window": _window()}
    decision = decide(START + timedelta(days=1), status, 0, START, [], spec.monitoring.retraining, 4,
                      spec.monitoring.fairness)
    assert not decision["retrain"] and "fairness" not in decision["fired"]
    assert alert_message("hiring_screen", 4, status, decision)["fairness"]["verdict"] == "insufficient"


def test_an_unreadable_groups_file_is_insufficient_not_a_crash(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    rows = _serve(url, ["north office"] * 50)
    spec = _spec(tmp_path, _labels(tmp_path, rows), min_parity_ratio=0.8)
    fairness = spec.monitoring.fairness.model_copy(update={"groups_from": "file"})
    from keel.spec.production_fairness import GroupsFile

    fairness = fairness.model_copy(update={"groups_file": GroupsFile(kind="csv", path=str(tmp_path / "absent.csv"))})
    spec = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"fairness": fairness})})
    report = production_report(spec, _window(), url)
    assert report["verdict"] == "insufficient" and "no such file" in report["not_judged"][0]


def test_nothing_asked_reads_nothing(tmp_path):
    from keel.spec import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", [f"deployment.folder={tmp_path}",
                                                             "deployment.allow_folder_outside_project=true"])
    report = production_report(spec, _window(), "sqlite:////nonexistent/never-opened.db")
    assert report["verdict"] == "not watched" and report["fairness"] is None


def test_a_decision_carries_the_windows_label_coverage_for_the_retraining_it_starts(tmp_path):
    """Item 5: the decision that starts a retraining keeps the label coverage per decision; the retrained
    version's model card and the retraining record say "selective labels" from it."""
    from keel.monitoring.monitor import decide_and_record, monitoring_folder
    from keel.monitoring.policy import read_history
    from keel.monitoring.production_fairness import coverage_rows

    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    rows = _serve(url, ["north office"] * 200 + ["south office"] * 200)
    spec = _spec(tmp_path, _labels(tmp_path, rows), min_parity_ratio=0.8, retrain=True)
    status = {"verdict": {"alarm": False}, "production": production_report(spec, _window(), url), "window": _window()}
    decision = decide_and_record(spec, status, {"new_labelled_rows": 0}, START, 4, now=START + timedelta(days=1))
    assert decision["retrain"] and decision["fired"] == ["fairness"]
    [stored] = [r for r in read_history(monitoring_folder(spec)) if r.get("kind") == "decision"]
    assert stored["label_coverage"] == decision["label_coverage"] and stored["label_coverage"]["selective"]
    rows = dict(coverage_rows(stored["label_coverage"]))
    assert rows["Outcomes known for favourable decisions"] == "100%"
    assert rows["Outcomes known for unfavourable decisions"] == "0%"
    assert "selective labels" in rows["Selective labels"]
    assert coverage_rows(None) == []


def test_batch_rows_carry_their_groups_into_the_window_report(tmp_path):
    """Batch traffic (`run.py score`) with the attribute beside the features: kept with each row's
    decision by the batch profiler and judged like served rows; a tiny group is not judged."""
    import pandas as pd

    from keel.monitoring.batch_traffic import BatchProfiler
    from keel.monitoring.monitor import monitoring_folder

    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    spec = _spec(tmp_path, _labels(tmp_path, []), min_parity_ratio=0.8)
    rng = np.random.default_rng(5)
    groups = np.array(["north office"] * 200 + ["south office"] * 200 + ["remote pilot"] * 5 + [None] * 10, dtype=object)
    chosen = (rng.random(len(groups)) < np.where(groups == "south office", 0.2, 0.6)).astype(int)
    frame = pd.DataFrame({"applicant": [f"b{i}" for i in range(len(groups))], "years": 2.0, "track": "ops",
                          "team_origin": groups, "score": np.where(chosen == 1, 0.8, 0.2), "decision": chosen})
    profiler = BatchProfiler(monitoring_folder(spec), "batch-7", 4, ["years", "track"], "applicant",
                             {"input_fingerprint": "sha256:x", "model_version": 4, "spec_sha256": "y"},
                             clock=lambda: START + timedelta(hours=2), attributes=["team_origin"])
    profiler(frame.iloc[:200])
    profiler(frame.iloc[200:])
    profiler.publish()
    report = production_report(spec, {**_window(), "traffic": "batch"}, url)
    assert report["rows"] == len(frame) and report["verdict"] == "breach"
    found = report["fairness"]["team_origin"]
    assert found["rows_without_group"] == 10
    assert {g["group"]: g["judged"] for g in found["groups"]} == {"north office": True, "south office": True,
                                                                  "remote pilot": False}

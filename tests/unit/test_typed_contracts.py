"""The typed contracts between keel's modules: one enum of artifact names (what ZenML sees is the
plain name), keyword arguments in the pipelines, and the records stored as JSON (the evaluation
decision and record, the drift status, the policy's decision) described by TypedDicts whose keys
match what is built, stored as before (snapshots taken before the types were added) and read back."""

import ast
import importlib
import json
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from typing_extensions import Annotated

from keel.artifacts import REFERENCES, Artifact
from keel.evaluation.gates import (PROMOTE, Decision, GateRow, decide, describe_decision, incomplete_decision,
                                   is_deployable)
from keel.evaluation.record import (FAILED, FINISHED, EvaluationRecord, applied_gates, evaluation_record, gate_changes,
                                    gate_history, previous_evaluation)
from keel.lifecycle.evaluation import EVALUATION_INCOMPLETE, GATES_FAILED, EvaluationResult
from keel.monitoring.alerts import alert_message
from keel.monitoring.drift import assess
from keel.monitoring.labels import join_labels
from keel.monitoring.policy import append_record, last_retrain, read_history
from keel.monitoring.policy import decide as decide_retraining
from keel.monitoring.records import (DriftAssessment, FeatureDrift, LabelDrift, LabelReport, PerformanceDrift,
                                     PredictionDrift, RetrainingDecision, Trigger, Verdict)
from keel.monitoring.report import drift_report_html
from keel.reports.registry_view import version_row
from keel.spec.evaluation import EvaluationSpec, Gate
from keel.spec.monitoring import DriftSpec, RetrainingSpec
from tests.conftest import ROOT

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
EVALUATION = EvaluationSpec(gates=[Gate(metric="roc_auc", min=0.75),
                                   Gate(metric="expected_calibration_error", max=0.05),
                                   Gate(metric="p95_latency_ratio", max=2.0)])
DRIFT = DriftSpec(features={"p_value": 0.01, "min_ks_statistic": 0.1, "min_category_distance": 0.1},
                  prediction={"p_value": 0.01, "min_ks_statistic": 0.1, "max_decision_rate_change": 0.1},
                  label={"p_value": 0.01, "max_rate_change": 0.05}, performance={"metric": "roc_auc", "max_drop": 0.05},
                  min_window_rows=200, min_labelled_rows=300)
POLICY = RetrainingSpec(schedule_hours=2, min_new_labelled_rows=500, performance={"metric": "roc_auc", "min": 0.8,
                                                                                  "max_drop": 0.05},
                        drift={"min_drifted_features": 1, "on_prediction_drift": True}, cooldown_hours=0,
                        max_retrains=100, per_hours=24)
COMPARISON = {"champion": "v1 (production)", "mode": "non_inferiority", "margin": 0.01, "metric": "roc_auc",
              "ci_low": 0.002, "accepted": True}


CONTRACT = {"target": {"column": "default", "positive": "1", "negative": "0", "favourable": "negative"},
            "inputs": "1" * 64, "decisions": "2" * 64, "release": "3" * 64}


def finished_record():
    decision = decide(EVALUATION.gates, {"roc_auc": 0.8, "expected_calibration_error": 0.07, "p95_latency_ratio": 1.1},
                      COMPARISON, True, True)
    return evaluation_record(decision, status=FINISHED, run_id=uuid.UUID(int=7), run_name="evaluation-1",
                             spec_sha256="ab" * 32, evaluation=EVALUATION, training_spec_sha256="cd" * 32,
                             threshold=0.41, threshold_rule="max_f1", changes=["LOOSENED: roc_auc min 0.8 -> 0.75"],
                             minimums={"data.min_group_size": 50, "data.min_group_outcomes": 10}, contract=CONTRACT)


def failed_record():
    return evaluation_record(incomplete_decision("latency_step", "boom"), status=FAILED, run_id=None, run_name=None,
                             spec_sha256="ab" * 32, evaluation=EVALUATION)


def small_window_status():
    return assess({}, {}, None, {}, np.array([], dtype=int), np.array([], dtype=float), 3, DRIFT)


def judged_status():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1)
    column = {"problem": None, "target_null_fraction": 0.0, "reference_null_fraction": 0.0}
    comparisons = {"income": {**column, "test": "ks", "p_value": 1e-6, "effect": 0.3, "unseen_categories": []},
                   "purpose": {**column, "test": "chi2", "p_value": 0.4, "effect": 0.01, "unseen_categories": ["x"]}}
    reference = {"decision_rate": 0.3, "label_rate": 0.3, "label_rows": 1000, "threshold": 0.5,
                 "metrics": {"roc_auc": 0.8}}
    return assess(comparisons, {"test": "ks", "p_value": 0.5, "effect": 0.01}, 0.31, reference, labels, scores, 1000,
                  DRIFT)


def retraining_decision():
    return decide_retraining(NOW, judged_status(), 600, NOW - timedelta(hours=3), [], POLICY, 4)


# What the builders above stored before the records were typed (JSON, sorted keys).
FINISHED_RECORD = (
    '{"advisory": false, "applied_gates": [{"key": "roc_auc", "max": null, "min": 0.75}, {"key": "expected_ca'
    'libration_error", "max": 0.05, "min": null}, {"key": "p95_latency_ratio", "max": 2.0, "min": null}], "bl'
    'ocking": true, "complete": true, "decision": "reject", "deployable": false, "failed": ["expected_calibra'
    'tion_error <= 0.05"], "failed_step": null, "gate_changes": ["LOOSENED: roc_auc min 0.8 -> 0.75"], "gates'
    '": [{"gate": "roc_auc >= 0.75", "metric": "roc_auc", "passed": true, "value": 0.8}, {"gate": "expected_c'
    'alibration_error <= 0.05", "metric": "expected_calibration_error", "passed": false, "value": 0.07}, {"ga'
    'te": "p95_latency_ratio <= 2", "metric": "p95_latency_ratio", "passed": true, "value": 1.1}, {"gate": "c'
    'hallenger non-inferiority vs v1 (production) (margin 0.01, roc_auc)", "metric": "champion_challenger", "'
    'passed": true, "value": 0.002}, {"gate": "hostile inputs (out of range, unseen categories) answered", "m'
    'etric": "hostile_inputs", "passed": true, "value": 1.0}], "missing": [], "passed": false, "run_id": "000'
    '00000-0000-0000-0000-000000000007", "run_name": "evaluation-1", "spec_differs_from_training": true, "spe'
    'c_sha256": "abababababababababababababababababababababababababababababababab", "status": "finished", "th'
    'reshold": 0.41, "threshold_rule": "max_f1"}'
)
FAILED_RECORD = (
    '{"advisory": false, "applied_gates": [{"key": "roc_auc", "max": null, "min": 0.75}, {"key": "expected_ca'
    'libration_error", "max": 0.05, "min": null}, {"key": "p95_latency_ratio", "max": 2.0, "min": null}], "bl'
    'ocking": true, "complete": false, "decision": "incomplete", "deployable": false, "failed": [], "failed_s'
    'tep": "latency_step", "gate_changes": [], "gates": [], "missing": ["step latency_step failed: boom"], "p'
    'assed": false, "run_id": null, "run_name": null, "spec_differs_from_training": false, "spec_sha256": "ab'
    'ababababababababababababababababababababababababababababababab", "status": "failed"}'
)
SMALL_WINDOW_STATUS = (
    '{"features": {"alpha": null, "drifted": [], "features": {}, "problems": {}, "tested": 0, "unseen_categor'
    'ies": {}}, "judged": false, "label": {"drifted": false, "judged": false}, "performance": {"drifted": fal'
    'se, "judged": false, "metric": "roc_auc"}, "prediction": {"drifted": false}, "reason": "3 predictions in'
    ' the window, fewer than 200: not judged", "verdict": {"alarm": false, "concept_drift": false, "kinds": ['
    '], "summary": "window too small"}}'
)
JUDGED_STATUS = (
    '{"features": {"alpha": 0.005, "drifted": ["income"], "features": {"income": {"alpha": 0.005, "drifted": '
    'true, "effect": 0.3, "min_effect": 0.1, "p_value": 1e-06, "problem": null, "reference_null_fraction": 0.'
    '0, "target_null_fraction": 0.0, "test": "ks", "unseen_categories": []}, "purpose": {"alpha": 0.005, "dri'
    'fted": false, "effect": 0.01, "min_effect": 0.1, "p_value": 0.4, "problem": null, "reference_null_fracti'
    'on": 0.0, "target_null_fraction": 0.0, "test": "chi2", "unseen_categories": ["x"]}}, "problems": {}, "te'
    'sted": 2, "unseen_categories": {"purpose": ["x"]}}, "judged": true, "label": {"change": 0.2525, "drifted'
    '": true, "judged": true, "p_value": 1.0503035184551707e-18, "rate": 0.5525, "ratio": 1.8416666666666668, '
    '"reference_rate": 0.3, "rows": 400}, "performance": {"drifted": false, "drop": -0.061800999999999995, '
    # the metric's interval and whether it crosses the allowed drop (helper-64), added since
    '"interval": [0.83122, 0.89294], "judged": true, "max_drop": 0.'
    '05, "metric": "roc_auc", "reference": 0.8, "rows": 400, "uncertain": false, "value": 0.861801}, '
    '"prediction": {"decision_rat'
    'e": 0.31, "decision_rate_change": 0.010000000000000009, "decision_rate_drifted": false, "drifted": false'
    ', "problem": null, "reference_decision_rate": 0.3, "score_drifted": false, "score_ks": 0.01, "score_p_va'
    'lue": 0.5, "score_test": "ks"}, "reason": null, "verdict": {"alarm": true, "concept_drift": false, "kind'
    's": ["data", "label"], "summary": "1 feature(s) drifted (income); the positive rate moved by +0.253 '
    '(30.00% -> 55.25%, x1.84)"}}'
)
RETRAINING_DECISION = (
    '{"drift_summary": "1 feature(s) drifted (income); the positive rate moved by +0.253 (30.00% -> 55.25%, x'
    '1.84)", "fired": ["schedul'
    'ed", "data_volume", "drift"], "kind": "decision", "last_retrain": null, "model_version": 4, "retrain": t'
    'rue, "suppressed_by": null, "time": "2026-03-01T12:00:00+00:00", "triggers": [{"enabled": true, "evidenc'
    'e": {"every_hours": 2.0, "hours_since_last_training": 3.0}, "fired": true, "trigger": "scheduled"}, {"en'
    'abled": true, "evidence": {"min_new_labelled_rows": 500, "new_labelled_rows": 600}, "fired": true, "trig'
    'ger": "data_volume"}, {"enabled": true, "evidence": {"drop": -0.061800999999999995, "fires_when": "a dro'
    'p of more than max_drop below the test value, or below min", "labelled_rows": 400, "max_drop": 0.05, "me'
    'tric": "roc_auc", "min": 0.8, "reference": 0.8, "value": 0.861801}, "fired": false, "trigger": "performa'
    'nce"}, {"enabled": true, "evidence": {"drifted_features": ["income"], "min_drifted_features": 1, "on_pre'
    'diction_drift": true, "prediction_drift": false}, "fired": true, "trigger": "drift"}]}'
)


def _stored(record) -> str:
    return json.dumps(record, sort_keys=True, default=str)


# --- artifact names ----------------------------------------------------------------------------------

def _step_outputs() -> dict:
    """Every step of steps/<phase>/<step>.py -> its output names, as ZenML reads them."""
    from zenml.steps import BaseStep

    outputs = {}
    for path in sorted((ROOT / "steps").glob("*/*.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for value in vars(module).values():
            if isinstance(value, BaseStep):
                outputs[value.name] = list(value.entrypoint_definition.outputs)
    return outputs


def test_every_step_output_is_named_by_the_artifact_enum_and_every_name_is_output():
    outputs = _step_outputs()
    assert len(outputs) > 30, outputs  # the steps were found
    named = {name for names in outputs.values() for name in names}
    assert named - set(Artifact) == set(), "a step output missing from keel.artifacts.Artifact"
    assert set(Artifact) - named == set(), "an Artifact member no step outputs"
    assert set(REFERENCES) <= set(outputs["reference_profiles_step"])


def test_zenml_reads_an_artifact_member_as_the_plain_name():
    from zenml.steps.utils import get_artifact_config_from_annotation_metadata

    config = get_artifact_config_from_annotation_metadata(Annotated[dict, Artifact.PROMOTION_DECISION])
    assert type(config.name) is str and config.name == "promotion_decision"
    assert {Artifact.DRIFT_STATUS: 1}["drift_status"] == 1 and f"{Artifact.DRIFT_STATUS}" == "drift_status"


def test_the_pipelines_call_every_step_with_keyword_arguments():
    called = 0
    for name in ("training", "evaluation", "monitoring", "mitigation", "deployment", "batch_inference"):
        tree = ast.parse((ROOT / "pipelines" / f"{name}.py").read_text(encoding="utf-8"))
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id.endswith("_step"):
                called += 1
                assert not call.args, f"pipelines/{name}.py line {call.lineno}: {call.func.id} positional arguments"
    assert called >= 30


# --- the evaluation decision and record ---------------------------------------------------------------

def test_the_decision_and_the_record_carry_exactly_their_declared_keys():
    decision = decide(EVALUATION.gates, {"roc_auc": 0.8}, COMPARISON)
    assert set(decision) == Decision.__required_keys__
    assert all(set(row) == set(GateRow.__annotations__) for row in decision["gates"])
    assert set(GateRow.__annotations__) == {"gate", "metric", "value", "known", "passed", "interval", "uncertain",
                                            "judged_on"}
    assert set(incomplete_decision("latency_step", "boom")) == Decision.__required_keys__ | {"failed_step"}
    assert set(failed_record()) == EvaluationRecord.__required_keys__  # no threshold: the run chose none
    assert set(finished_record()) == set(EvaluationRecord.__annotations__)
    assert EvaluationRecord.__optional_keys__ == {"threshold", "threshold_rule", "evidence_minimums", "contract"}


def test_every_threshold_rule_chooses_exactly_the_declared_keys():
    from keel.evaluation.decisions import ChosenThreshold, choose_threshold
    from keel.spec.evaluation import ThresholdRule, ValueMatrix

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    scores = np.clip(0.4 * y + rng.random(300) * 0.6, 0, 1)
    values = ValueMatrix(true_positive=0, false_positive=-10, true_negative=5, false_negative=-50,
                         currency="points")
    extra = {"fixed": set(), "target_recall": {"target_recall"}, "max_f1": {"validation_objective"},
             "min_expected_cost": {"validation_objective"}}
    assert set(extra) == set(ThresholdRule.model_fields["rule"].annotation.__args__)  # every rule is checked
    for rule, optional in extra.items():
        parameters = {"fixed": {"value": 0.3}, "target_recall": {"target_recall": 0.8}}.get(rule, {})
        chosen = choose_threshold(y, scores, ThresholdRule(rule=rule, **parameters), values)
        assert set(chosen) == ChosenThreshold.__required_keys__ | optional, rule
        assert optional <= ChosenThreshold.__optional_keys__
        assert chosen["rule"] == rule and isinstance(chosen["threshold"], float)


def test_records_are_stored_as_before():
    """As stored before, plus `calibration` (the method of the scores judged: none deploys, any other is
    refused by keel.deployment.deploy.check_deployable), a finished run's `evidence_minimums` and its
    release `contract` (keel.evaluation.record.release_contract)."""
    minimums = {"data.min_group_size": 50, "data.min_group_outcomes": 10}
    assert _stored(finished_record()) == _stored({**json.loads(FINISHED_RECORD), "calibration": "none",
                                                  "evidence_minimums": minimums, "contract": CONTRACT})
    assert _stored(failed_record()) == _stored({**json.loads(FAILED_RECORD), "calibration": "none"})


def test_an_evaluation_record_stored_before_still_reads():
    stored = json.loads(FINISHED_RECORD)
    assert describe_decision(stored) == "reject (1 gate(s) failed: expected_calibration_error <= 0.05)"
    assert not is_deployable(stored)
    assert is_deployable({**stored, "decision": PROMOTE, "passed": True, "deployable": True, "failed": []})
    trail = [{"event": "evaluated", "version": 3, "time": "2026-03-01T12:00:00+00:00", "details": stored}]
    assert previous_evaluation(trail, 3) == stored
    assert gate_changes(previous_evaluation(trail, 3), applied_gates(EVALUATION), True, "ab" * 32) == []
    tighter = EvaluationSpec(gates=[Gate(metric="roc_auc", min=0.8)])
    assert gate_changes(stored, applied_gates(tighter), True, "ab" * 32) == [
        "tightened: roc_auc min -> 0.8", "LOOSENED: gate expected_calibration_error removed",
        "LOOSENED: gate p95_latency_ratio removed"]
    assert gate_history(trail, 3) == [{
        "time": "2026-03-01T12:00:00+00:00", "run_name": "evaluation-1", "decision": "reject",
        "gates": "roc_auc >= 0.75; expected_calibration_error <= 0.05; p95_latency_ratio <= 2",
        "changes": "LOOSENED: roc_auc min 0.8 -> 0.75"}]
    row = version_row({"number": 3, "stage": None, "metadata": {"evaluation": stored}})
    assert (row["decision"], row["passed"]) == ("reject", False)
    assert row["failed_gates"] == ["expected_calibration_error <= 0.05"]
    assert [g["metric"] for g in row["gates"]] == ["roc_auc", "expected_calibration_error", "p95_latency_ratio",
                                                   "champion_challenger", "hostile_inputs"]
    # A result read back from a stored record: a blocking failed gate is exit 3, a failed run exit 4.
    assert EvaluationResult(3, record={**stored, "stage": None}, decision=stored).exit_code == GATES_FAILED
    failed = json.loads(FAILED_RECORD)
    assert EvaluationResult(3, record={**failed, "stage": None}, decision=failed).exit_code == EVALUATION_INCOMPLETE
    assert describe_decision(failed) == "incomplete at step latency_step: step latency_step failed: boom"


def test_an_older_record_without_the_later_keys_still_reads():
    later = ("advisory", "missing", "failed_step", "applied_gates", "blocking", "gate_changes",
             "spec_differs_from_training")
    older = {k: v for k, v in json.loads(FINISHED_RECORD).items() if k not in later}
    assert describe_decision(older) == "reject (1 gate(s) failed: expected_calibration_error <= 0.05)"
    assert not is_deployable(older)
    assert gate_changes(older, applied_gates(EVALUATION), True, "ef" * 32) == []  # nothing to compare with
    trail = [{"event": "evaluated", "version": 3, "time": None, "details": older}]
    assert gate_history(trail, 3)[0]["gates"] == "(not recorded)"


# --- the drift status and the policy's decision -------------------------------------------------------

WINDOW = {"window": "day", "start": "2026-03-01T00:00:00+00:00", "end": "2026-03-02T00:00:00+00:00", "rows": 1000,
          "new_rows": 1000, "model_version": 4, "added": {}}


def _label_report() -> dict:
    predictions = pd.DataFrame({"entity_id": pd.Series([], dtype=object),
                                "time": pd.Series([], dtype="datetime64[ns, UTC]"),
                                "model_version": pd.Series([], dtype=int), "score": pd.Series([], dtype=float)})
    labels = pd.DataFrame({"entity_id": pd.Series([], dtype=object), "label": pd.Series([], dtype="Int64"),
                           "label_time": pd.Series([], dtype="datetime64[ns, UTC]")})
    return join_labels(predictions, labels)[1]


def test_the_drift_status_and_the_decision_carry_exactly_their_declared_keys():
    small, judged = small_window_status(), judged_status()
    assert set(small) == set(judged) == set(DriftAssessment.__annotations__)
    for part, kind in (("features", FeatureDrift), ("prediction", PredictionDrift), ("label", LabelDrift),
                       ("performance", PerformanceDrift), ("verdict", Verdict)):
        assert set(small[part]) == kind.__required_keys__, part  # a window too small: the required keys only
        assert kind.__required_keys__ <= set(judged[part]) <= set(kind.__annotations__), part
    assert set(_label_report()) == LabelReport.__required_keys__
    assert LabelReport.__optional_keys__ == {"source_not_found"}  # only when the labels file is not there
    decision = retraining_decision()
    assert set(decision) == RetrainingDecision.__required_keys__
    assert all(set(trigger) == set(Trigger.__annotations__) for trigger in decision["triggers"])


def test_drift_status_and_decision_are_stored_as_before():
    assert _stored(small_window_status()) == SMALL_WINDOW_STATUS
    assert _stored(judged_status()) == JUDGED_STATUS
    assert _stored(retraining_decision()) == RETRAINING_DECISION


def test_a_status_and_a_decision_stored_before_still_read(tmp_path):
    status = {**json.loads(JUDGED_STATUS), "model": "credit", "model_version": 4, "window": WINDOW,
              "labels": _label_report()}
    decision = json.loads(RETRAINING_DECISION)
    # The policy judges the stored status as it judged the fresh one.
    assert decide_retraining(NOW, status, 600, NOW - timedelta(hours=3), [], POLICY, 4) == decision
    page = drift_report_html(status, decision)
    assert "1 feature(s) drifted (income); the positive rate moved by +0.253 (30.00% -&gt; 55.25%, x1.84)" in page and "FIRED" in page
    message = alert_message("credit", 4, status, decision)
    assert (message["drift"], message["drifted_features"], message["retraining_triggers"]) == (
        ["data", "label"], ["income"], ["scheduled", "data_volume", "drift"])
    append_record(tmp_path, decision)
    assert read_history(tmp_path) == [decision] and last_retrain(read_history(tmp_path)) == NOW
    small = {**json.loads(SMALL_WINDOW_STATUS), "model": "credit", "model_version": 4, "window": WINDOW,
             "labels": _label_report()}
    assert "window too small" in drift_report_html(small) and alert_message("credit", 4, small, {"fired": []}) is None

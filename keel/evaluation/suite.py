"""The evaluation as plain functions: the pipeline's steps call the pieces, `run.py check` calls
`evaluate_all` in one process."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import pandas as pd

from keel import registration as keys
from keel.data.groups import sensitive_groups
from keel.evaluation.business import evaluate_business
from keel.evaluation.calibration import evaluate_calibration, fit_calibrated
from keel.evaluation.comparison import compare, no_comparison, rows_compared_text, trained_on
from keel.evaluation.decisions import ChosenThreshold, choose_threshold
from keel.evaluation.explainability import evaluate_explainability
from keel.evaluation.fairness import evaluate_fairness, group_rule
from keel.evaluation.gates import decide, gate_values
from keel.evaluation.latency import evaluate_latency
from keel.evaluation.performance import evaluate_performance, too_little_test_evidence
from keel.evaluation.robustness import evaluate_robustness
from keel.spec.data import target_change
from keel.spec.models import Spec
from keel.training.fit import predict_scores


DECISIONS_AS_GIVEN = "the version's own decisions (its score is the decision)"


def decision_model(model, validation: pd.DataFrame, spec: Spec) -> Tuple[Any, ChosenThreshold]:
    """(the model that scores: recalibrated on validation if the spec asks, its threshold info).

    Both are chosen on validation data; the test split is never used for either."""
    method = spec.evaluation.calibration.method
    y = validation[spec.data.target.column]
    if getattr(model, "outputs_decisions", False):
        # Its score is its decision (equalized-odds mitigation): a rule's cut at 0 (every row positive) or
        # above 1 would throw the decisions away and judge a constant answer as fair.
        return model, {"rule": DECISIONS_AS_GIVEN, "threshold": 0.5}
    scoring = model
    if method != "none":
        scoring = fit_calibrated(model, validation[list(model.feature_names_in_)], y, method)
    threshold = choose_threshold(y, predict_scores(scoring, validation), spec.evaluation.threshold,
                                 spec.evaluation.value_matrix)
    return scoring, threshold


def champion_scoring(champion: dict, validation: pd.DataFrame, spec: Spec) -> Tuple[Any, float]:
    """(the champion scoring as the challenger does, its threshold). Its model as served, at the threshold
    it was approved with; when the spec recalibrates, recalibrated on validation as the challenger is, at
    a threshold chosen by today's rule (its recorded one judged other scores): a copy of the challenger
    then compares equal to it."""
    recorded = (champion["metadata"].get(keys.EVALUATION) or {}).get("threshold")  # the evaluation record's
    if spec.evaluation.calibration.method == "none" and recorded is not None:
        return champion["model"], float(recorded)
    scoring, chosen = decision_model(champion["model"], validation, spec)
    return scoring, chosen["threshold"]


def compared_rows(test: pd.DataFrame, trained: Optional[dict]) -> Tuple[np.ndarray, dict]:
    """(mask of the test rows the comparison uses, what it says about them). `trained` is the champion's
    training rows ({"key", "keys"}, `keel.evaluation.comparison.row_key`) or {"why": ...} when they could
    not be read: then every row is used and the report says the overlap was not checked."""
    if not trained or "keys" not in trained:
        why = (trained or {}).get("why") or "the champion's training split was not given"
        return np.ones(len(test), dtype=bool), {"test_rows": len(test), "rows_compared": len(test),
                                                 "rows_left_out": 0, "overlap_checked": False,
                                                 "overlap_unchecked": why}
    left_out = trained_on(test, trained)
    return ~left_out, {"test_rows": len(test), "rows_compared": int((~left_out).sum()),
                       "rows_left_out": int(left_out.sum()), "overlap_checked": True,
                       "matched_by": trained["key"]["text"]}


def too_few_compared(y: np.ndarray, rows: dict, spec: Spec) -> Optional[str]:
    """Why the rows left to compare on are too few (None when they are enough): keel's least evidence
    for a test split (`too_little_test_evidence` under the small-group rule)."""
    positives = int(np.sum(y.astype(int)))
    counts = {"rows": len(y), "positives": positives, "positive_rate": positives / len(y) if len(y) else 0.0}
    short = too_little_test_evidence(counts, group_rule(spec.data))
    if not short:
        return None
    if not rows["rows_left_out"]:
        return f"the {len(y)} test rows are too few to compare on ({short[0]})"
    return (f"only {len(y)} of the {rows['test_rows']} test rows are not the champion's training rows, too few "
            f"to compare on ({short[0]})")


def compare_with_champion(champion: Optional[dict], scoring_model, threshold: float,
                          validation: pd.DataFrame, test: pd.DataFrame, spec: Spec) -> tuple[dict, np.ndarray]:
    """(comparison report, the champion's test scores, NaN on the test rows it was trained on);
    `{"champion": None}` when there is none.

    `champion` is {name, model, metadata}, as `keel.registry.find_champion` returns it, with
    `training_rows` (see `compared_rows`): the comparison leaves out the test rows the champion was
    trained on (its score there is in-sample) and has no value when too few rows remain."""
    if champion is None:  # NaN scores keep the artifact's shape (and ZenML's metadata) well defined
        return {"champion": None}, np.full(len(test), np.nan)
    champion_model, champion_cut = champion_scoring(champion, validation, spec)
    champion_scores = predict_scores(champion_model, test)
    keep, rows = compared_rows(test, champion.get("training_rows"))
    y = test[spec.data.target.column].to_numpy()[keep]
    metric, comparison = spec.training.primary_metric, spec.evaluation.comparison
    other_target = target_change(champion.get("metadata", {}).get(keys.TARGET), spec.data.target)
    if other_target:  # its probabilities are of another class: no evidence either way
        keep = np.zeros(len(test), dtype=bool)
    why = (f"the champion was trained with another target ({other_target}): its scores mean another class"
           if other_target else too_few_compared(y, rows, spec))
    if why:
        report = no_comparison(metric, comparison, why)
    else:
        report = compare(y, champion_scores[keep], predict_scores(scoring_model, test)[keep], champion_cut, threshold,
                         metric, comparison)
    report = {"champion": champion["name"], "champion_threshold": champion_cut, **rows, **report}
    # Its scores on its own training rows are in-sample: not evidence for anything that follows (business).
    return {**report, "rows_text": rows_compared_text(report)}, np.where(keep, champion_scores, np.nan)


def champion_decisions(comparison: dict, champion_scores: np.ndarray) -> Optional[np.ndarray]:
    """The champion's decisions (1.0 / 0.0) on the test rows it is compared on, NaN on the others (its
    training rows: NaN scores) and on every row when the comparison has no value; None without one."""
    if not comparison.get("champion"):
        return None
    if comparison.get("no_value_reason"):
        return np.full(len(champion_scores), np.nan)
    scores = np.asarray(champion_scores, dtype=float)
    return np.where(np.isnan(scores), np.nan, (scores >= comparison["champion_threshold"]).astype(float))


def champion_predictor(champion: Optional[dict], validation: pd.DataFrame, spec: Spec) -> tuple:
    """(score function, name) of the champion wrapped as the challenger is (recalibrated if the spec
    says so), for latency measured against it; (None, None) without one."""
    if champion is None:
        return None, None
    scoring = decision_model(champion["model"], validation, spec)[0]
    return (lambda frame: predict_scores(scoring, frame)), champion["name"]


def evaluate_all(model, validation: pd.DataFrame, test: pd.DataFrame, spec: Spec,
                 champion: Optional[dict] = None) -> dict:
    """Every dimension, the comparison with `champion` ({name, model, metadata}) and the decision."""
    data, evaluation = spec.data, spec.evaluation
    y = test[data.target.column].to_numpy()
    scoring, threshold_info = decision_model(model, validation, spec)
    threshold = threshold_info["threshold"]
    scores = predict_scores(scoring, test)
    decisions = scores >= threshold
    reports = {"threshold": threshold_info,
               "performance": evaluate_performance(y, scores, threshold, evaluation.performance.interval_samples,
                                                   evaluation.performance.confidence, evaluation.performance.seed),
               "fairness": evaluate_fairness(y, decisions, scores, sensitive_groups(test, data), data),
               "calibration": evaluate_calibration(y, scores, evaluation.calibration.bins,
                                                   evaluation.calibration.method),
               "robustness": evaluate_robustness(lambda f: predict_scores(scoring, f), test, y, data,
                                                 evaluation.robustness, spec.training.primary_metric),
               "explainability": evaluate_explainability(model, test, sensitive_groups(test, data), data,
                                                         evaluation.explainability, validation),
               "latency": evaluate_latency(lambda f: predict_scores(scoring, f), test, scoring, evaluation.latency,
                                           *champion_predictor(champion, validation, spec))}
    comparison, champion_scores = compare_with_champion(champion, scoring, threshold, validation, test, spec)
    reports["comparison"] = comparison
    reports["business"] = evaluate_business(y, decisions, evaluation.value_matrix,
                                            champion_decisions(comparison, champion_scores), data.target.negative)
    values = gate_values(reports["performance"], reports["fairness"], reports["calibration"],
                         reports["robustness"], reports["latency"], reports["business"])
    reports["decision"] = decide(evaluation.gates, values, comparison,
                                 reports["robustness"]["hostile_inputs"]["passed"], evaluation.blocking,
                                 too_little_test_evidence(reports["performance"], group_rule(data)), reports=reports)
    reports["decision"]["values"] = values
    return reports

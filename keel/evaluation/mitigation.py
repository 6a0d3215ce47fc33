"""Fairness mitigation with fairlearn: a model a user can ship, re-judged by the same gates.

- `threshold_optimizer` (post-processing, fit on the validation split): a threshold per group on the
  model's probability, deciding with the sensitive attribute (the spec must allow that). fairlearn's
  ThresholdOptimizer picks its operating point by its own objective (balanced accuracy) and chooses
  between thresholds at random; keel decides deterministically and keeps the spec's threshold rule:
  - `demographic_parity`: each group's probabilities are mapped onto the pooled validation
    distribution by their quantile within the group (ThresholdOptimizer's family: one positive-decision
    rate for every group). Every threshold then gives each group the same rate on validation, so the
    spec's rule (which `evaluate` applies, on validation) chooses the operating point, and the mapped
    probability is the version's score: a monotone score within each group, not a calibrated
    probability.
  - `equalized_odds`: fairlearn's ThresholdOptimizer; per group, the deterministic threshold whose
    true and false positive rates on validation are nearest its solution's. Decisions, no score:
    `predict_proba` returns the decision (0 or 1), so every score metric (ROC AUC, Brier, calibration)
    is computed from decisions, and they are cut at 0.5, whatever the spec's rule (which could pick 0,
    "everything positive", and judge a constant answer as fair).
- `exponentiated_gradient` (reduction, fit on the training split): fairlearn's solution is a
  randomised mixture of retrained predictors. keel serves their log-odds averaged by the mixture's
  weights, which is exactly one model of the same family (logistic regression: the averaged
  coefficients; LightGBM: every predictor's trees with leaves scaled by its weight), so scoring,
  serving, SHAP and the fast path treat it like any trained model. It decides without the attribute.

Both use the one small-group rule (`keel.evaluation.fairness.group_rule`): groups it cannot judge on
the rows the method is fit on never reach fairlearn's constraints. With threshold_optimizer their
rows keep the model's own probability, decided by the version's one threshold as every row is
without mitigation; with exponentiated_gradient their training rows are left out of the reduction.

The before/after table holds every gate metric computed the way `evaluate` computes it (threshold by
the spec's rule on validation, then the test split), from the mitigated model's own scores.
"""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from keel import registration as keys
from keel.data.groups import sensitive_groups
from keel.evaluation.fairness import favourable_view, group_rule, too_few_rows, unjudgeable_reason
from keel.evaluation.gates import INCOMPLETE, Decision, describe_decision
from keel.reports import html
from keel.reports.values import format_value
from keel.spec.evaluation import FAIRNESS_METRICS, GATE_METRICS
from keel.spec.models import Spec
from keel.training.fit import predict_scores

TRADE_OFF = ("accuracy", "f1", "demographic_parity_ratio[{a}]", "equalized_odds_difference[{a}]",
             "expected_value_per_application")
# The gap each constraint is fitted to close, as a gate metric.
CONSTRAINED_METRIC = {"demographic_parity": "demographic_parity_ratio", "equalized_odds": "equalized_odds_difference"}


class MitigationNotApplicable(ValueError):
    """The spec's mitigation cannot be fitted on these rows (e.g. fewer than two judgeable groups)."""


def mitigation_attribute(spec: Spec) -> str:
    return spec.evaluation.mitigation.attribute or next(iter(spec.data.sensitive_attributes))


def group_labels(frame: pd.DataFrame, attribute: str, bins: Optional[List[float]]) -> pd.Series:
    """Each row's group of `attribute`, exactly as `keel.data.groups.sensitive_groups` labels it."""
    data = SimpleNamespace(sensitive_attributes={attribute: SimpleNamespace(bins=bins)})
    return sensitive_groups(frame, data)[attribute]


def judge_groups(y_true, groups: pd.Series, data, constraint: str) -> Tuple[List[str], Dict[str, str]]:
    """(groups the small-group rule can judge on these rows for `constraint`, {group it cannot: why}):
    demographic parity by rows, equalized odds by rows and actual outcomes, as `evaluate` judges them."""
    rule = group_rule(data)
    outcomes, _, _ = favourable_view(y_true, np.zeros(len(groups)), np.zeros(len(groups)), data.target)
    labels = groups.to_numpy()
    judged, left_out = [], {}
    for group in sorted(pd.unique(labels)):
        rows = labels == group
        reason = (too_few_rows(int(rows.sum()), rule) if constraint == "demographic_parity"
                  else unjudgeable_reason(int(rows.sum()), int(outcomes[rows].sum()), rule))
        if reason:
            left_out[str(group)] = reason
        else:
            judged.append(str(group))
    return judged, left_out


def base_threshold(model, validation: pd.DataFrame, spec: Spec) -> float:
    """The model's own threshold: the spec's rule on its (uncalibrated) validation scores."""
    from keel.evaluation.decisions import choose_threshold

    return float(choose_threshold(validation[spec.data.target.column], predict_scores(model, validation),
                                  spec.evaluation.threshold, spec.evaluation.value_matrix)["threshold"])


# --- threshold_optimizer ------------------------------------------------------------------------


class GroupAdjustedModel(ClassifierMixin, BaseEstimator):
    """A fitted model adjusted per group of one sensitive attribute (see the module docstring).

    `knots` ({group: (model probabilities, mapped probabilities)}): the group's probability is mapped
    by piecewise-linear interpolation (demographic parity). `thresholds` ({group: threshold}): the
    score is the decision, 1 when the probability reaches the group's threshold (equalized odds).
    Groups without an entry (left out by the small-group rule, a missing value, unseen groups) keep the
    model's probability, or with `thresholds` are decided at `threshold`, the model's own. Inputs: the
    model's columns plus `attribute` (`decision_attributes_`); `named_steps` are the model's, so SHAP
    explains the probability the adjustment is applied to."""

    def __init__(self, model=None, attribute: str = "", bins=None, knots=None, thresholds=None,
                 threshold: float = 0.5):
        self.model = model
        self.attribute = attribute
        self.bins = bins
        self.knots = knots
        self.thresholds = thresholds
        self.threshold = threshold

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X, y=None, **kwargs):
        """Built fitted by `fit_threshold_optimizer`; refitting would need the validation split."""
        raise NotImplementedError("a GroupAdjustedModel is built by keel.evaluation.mitigation.fit_mitigation")

    @property
    def feature_names_in_(self) -> np.ndarray:
        columns = list(self.model.feature_names_in_)
        return np.asarray(columns + ([self.attribute] if self.attribute not in columns else []), dtype=object)

    @property
    def decision_attributes_(self) -> List[str]:
        return [self.attribute]

    @property
    def classes_(self):
        return self.model.classes_

    @property
    def named_steps(self):
        return self.model.named_steps

    @property
    def outputs_decisions(self) -> bool:
        return self.thresholds is not None

    def model_probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X[list(self.model.feature_names_in_)])[:, 1]

    def groups(self, X: pd.DataFrame) -> np.ndarray:
        return group_labels(X, self.attribute, self.bins).to_numpy(dtype=object)

    def adjust(self, probability: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The version's score from the model's probability and each row's group."""
        probability = np.asarray(probability, dtype=float)
        if self.outputs_decisions:
            cuts = np.array([self.thresholds.get(str(g), self.threshold) for g in groups], dtype=float)
            return (probability >= cuts).astype(float)
        score = probability.copy()
        for group, (xp, fp) in self.knots.items():
            rows = groups == group
            score[rows] = np.interp(probability[rows], xp, fp)
        return score

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        score = self.adjust(self.model_probability(X), self.groups(X))
        return np.column_stack([1.0 - score, score])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        cut = 0.5 if self.outputs_decisions else self.threshold
        return np.asarray(self.classes_)[(self.predict_proba(X)[:, 1] >= cut).astype(int)]


def reasons_model(model):
    """The fitted pipeline whose log-odds contributions are `model`'s principal reasons. A
    GroupAdjustedModel decides by its base model's probability, monotone within the row's group (mapped
    at the group's quantile, or cut at the group's threshold), so the features that pushed that
    probability toward the unfavourable side are the decision's reasons: the base model, carrying the
    version's flagged proxies (never reasons). Any other model (exponentiated_gradient serves one model
    of the base's family) is its own."""
    from keel.serving.reasons import PROXIES_ATTRIBUTE

    if not isinstance(model, GroupAdjustedModel):
        return model
    base = copy.copy(model.model)  # a shallow copy: the proxies set here never change the version's object
    proxies = getattr(model, PROXIES_ATTRIBUTE, None)
    if proxies is not None:
        setattr(base, PROXIES_ATTRIBUTE, list(proxies))
    return base


def has_additive_contributions(model) -> bool:
    """Whether `reasons_model(model)` has per-feature log-odds contributions (LightGBM's trees, a
    logistic regression's terms): what principal reasons are computed from."""
    estimator = getattr(reasons_model(model), "named_steps", {}).get("model")
    return estimator is not None and (getattr(estimator, "booster_", None) is not None
                                      or getattr(estimator, "coef_", None) is not None)


def reasons_statement(model, method: str, favourable: Optional[str], base_version: int) -> Tuple[bool, str]:
    """(whether the mitigated version can give principal reasons, what `mitigate` says about it).
    Reasons are owed only when data.target.favourable names the favourable side."""
    if favourable is None:
        return True, "none owed (data.target.favourable is not declared: no decision is known to be adverse)"
    if not has_additive_contributions(model):
        return False, ("NONE: its model has no additive log-odds contributions, so an unfavourable decision "
                       "cannot be answered with its principal reasons; deploy refuses it")
    if method == "threshold_optimizer":
        return True, (f"from its base model v{base_version}'s contributions (the decision is v{base_version}'s "
                      "probability against the row's group threshold); the sensitive attribute is never a reason")
    return True, "from its own model's contributions (one model of the base's family, as a trained one)"


def reasons_refusal(model, data, name: str, version: int) -> Optional[str]:
    """Why `deploy` refuses `version`: reasons are owed (data.target.favourable declared: README, "every
    unfavourable decision is answered with its principal reasons") and its model has no additive
    contributions to give them from. None when it can give them or none are owed. Refused, not warned:
    a service that answers adverse decisions without their reasons breaks the promise for every one."""
    if data.target.favourable is None or has_additive_contributions(model):
        return None
    return (f"keel: {name} v{version} cannot give principal reasons (its model has no additive log-odds "
            f"contributions) while data.target.favourable is declared, so every unfavourable decision owes "
            f"them; not deployed")


MISSING_GROUP = "(missing)"  # keel.data.groups' label of a row without the attribute


def rows_without_mitigation(model, frame: pd.DataFrame) -> Dict[str, int]:
    """How many of `frame`'s rows a group-dependent version scored without its mitigation, by why:
    {"attribute missing": rows without the attribute (or the whole column absent), "group not fitted":
    rows of a group the mitigation was not fitted for (left out by the small-group rule, unseen)}.
    Such rows keep the base model's probability (or its threshold): a batch must say how many, since
    scoring without the sensitive column silently gave the base model's answer. {} for other models."""
    if not isinstance(model, GroupAdjustedModel):
        return {}
    if model.attribute not in frame.columns:
        return {"attribute missing": int(len(frame))}
    groups = model.groups(frame)
    fitted = set(map(str, (model.thresholds if model.outputs_decisions else model.knots) or {}))
    missing = groups == MISSING_GROUP
    unfitted = ~missing & ~np.isin(groups.astype(str), list(fitted))
    return {"attribute missing": int(missing.sum()), "group not fitted": int(unfitted.sum())}


def add_rows_without_mitigation(totals: Dict[str, int], model, frame: pd.DataFrame) -> Dict[str, int]:
    """`totals` with one chunk's `rows_without_mitigation` added (in place, and returned)."""
    for why, rows in rows_without_mitigation(model, frame).items():
        totals[why] = totals.get(why, 0) + rows
    return totals


def describe_rows_without_mitigation(counts: Dict[str, int], rows: int,
                                     attribute: str = "the sensitive attribute") -> Optional[str]:
    """One line for a batch's summary; None when every row was scored with its group's mitigation."""
    parts = [f"{n} {why}" for why, n in counts.items() if n]
    if not parts:
        return None
    total = sum(counts.values())
    return (f"{total} of {rows} rows scored WITHOUT the mitigation (the base model's answer): {', '.join(parts)} "
            f"({attribute})")


def quantile_knots(group_scores: np.ndarray, pooled_scores: np.ndarray, points: int = 201) -> Tuple[list, list]:
    """Knots mapping a group's probabilities onto the pooled distribution at the same quantile:
    increasing, from (0, 0) to (1, 1)."""
    levels = np.linspace(0, 1, points)
    xp, fp = np.quantile(group_scores, levels), np.quantile(pooled_scores, levels)
    xp, first = np.unique(xp, return_index=True)  # ties: one knot per probability
    fp = np.maximum.accumulate(fp[first])
    xp, fp = np.concatenate([[0.0], xp, [1.0]]), np.concatenate([[0.0], fp, [1.0]])
    keep = np.concatenate([[True], np.diff(xp) > 0])
    return [float(v) for v in xp[keep]], [float(v) for v in fp[keep]]


def nearest_rates_threshold(scores: np.ndarray, y: np.ndarray, tpr: float, fpr: float) -> float:
    """The threshold on `scores` whose true and false positive rates are nearest `tpr` and `fpr`
    (the larger of the two gaps smallest), kept inside (0, 1]."""
    order = np.argsort(-scores, kind="stable")
    ordered, labels = scores[order], y[order]
    ends = np.concatenate([np.flatnonzero(np.diff(ordered) != 0), [len(ordered) - 1]])  # ties decided together
    rates_tp = np.concatenate([[0.0], np.cumsum(labels)[ends] / max(int(labels.sum()), 1)])
    rates_fp = np.concatenate([[0.0], np.cumsum(1 - labels)[ends] / max(int((1 - labels).sum()), 1)])
    cuts = np.concatenate([[1.0], ordered[ends]])  # 1.0 first: nothing positive (unless a probability is 1)
    best = int(np.argmin(np.maximum(np.abs(rates_tp - tpr), np.abs(rates_fp - fpr))))
    return float(np.clip(cuts[best], 1e-9, 1.0))


def fit_threshold_optimizer(model, validation: pd.DataFrame, spec: Spec, threshold: float):
    """(GroupAdjustedModel, judged groups, {left-out group: why}, facts), fit on the validation rows
    of the groups the rule can judge (module docstring)."""
    data, mitigation = spec.data, spec.evaluation.mitigation
    attribute = mitigation_attribute(spec)
    bins = data.sensitive_attributes[attribute].bins
    y = validation[data.target.column].to_numpy().astype(int)
    scores = predict_scores(model, validation)
    groups = group_labels(validation, attribute, bins).to_numpy(dtype=object)
    judged, left_out = judge_groups(y, pd.Series(groups), data, mitigation.constraint)
    _enough_groups(judged, left_out, attribute, "validation")
    keep = np.isin(groups, judged)
    if mitigation.constraint == "demographic_parity":
        knots = {g: quantile_knots(scores[groups == g], scores[keep]) for g in judged}
        mitigated = GroupAdjustedModel(model, attribute, bins, knots=knots, threshold=threshold)
        return mitigated, judged, left_out, {
            "fitted_on": "validation split", "score": "mapped probability",
            "decision_rule": f"each {attribute} group's probability mapped onto the pooled validation distribution "
                             "at its quantile within the group, so one threshold gives every group the same "
                             "positive-decision rate on validation; the spec's rule picks that threshold. Groups "
                             f"left out, a missing {attribute} and unseen groups keep the model's probability"}
    from fairlearn.postprocessing import ThresholdOptimizer

    columns = list(model.feature_names_in_)
    optimizer = ThresholdOptimizer(estimator=model, constraints=mitigation.constraint,
                                   objective="balanced_accuracy_score", predict_method="predict_proba", prefit=True)
    optimizer.fit(validation.loc[keep, columns], y[keep], sensitive_features=groups[keep])
    solution = optimizer._pmf_predict(validation.loc[keep, columns], sensitive_features=groups[keep])[:, 1]
    kept_groups, kept_scores, kept_y = groups[keep], scores[keep], y[keep]
    cuts, rates = {}, {}
    for group in judged:
        rows = kept_groups == group
        positive, negative = rows & (kept_y == 1), rows & (kept_y == 0)
        rates[group] = {"tpr": float(solution[positive].mean()), "fpr": float(solution[negative].mean())}
        cuts[group] = nearest_rates_threshold(kept_scores[rows], kept_y[rows], **rates[group])
    mitigated = GroupAdjustedModel(model, attribute, bins, thresholds=cuts, threshold=threshold)
    return mitigated, judged, left_out, {
        "fitted_on": "validation split", "score": "the decision (0 or 1)", "group_thresholds": cuts,
        "solution_rates": rates,
        "decision_rule": f"positive when the model's probability reaches the threshold of the row's {attribute} "
                         "group (nearest fairlearn's solution's true and false positive rates on validation); "
                         f"groups left out, a missing {attribute} and unseen groups at the model's own threshold "
                         f"{threshold:.4f}. The score is the decision: score metrics are computed from decisions"}


# --- exponentiated_gradient ---------------------------------------------------------------------


def _constraint(name: str):
    from fairlearn.reductions import DemographicParity, EqualizedOdds

    return DemographicParity() if name == "demographic_parity" else EqualizedOdds()


def _scaled_trees(text: str, weight: float) -> List[str]:
    """The tree blocks of a LightGBM model text, each leaf (and internal) value times `weight`."""
    body = text.split("end of trees", 1)[0]
    blocks = re.split(r"^Tree=\d+\n", body, flags=re.M)[1:]

    def scale(match):
        return match.group(1) + " ".join(repr(float(v) * weight) for v in match.group(2).split())

    return [re.sub(r"^(leaf_value=|internal_value=)(.*)$", scale, block, flags=re.M).strip("\n")
            for block in blocks]


def combine_in_log_odds(predictors: List[Tuple[object, float]]):
    """One fitted classifier whose log-odds are the weighted sum of the predictors' (weights sum to 1).

    Logistic regressions: the weighted coefficients and intercepts. LightGBM: every predictor's trees,
    leaves scaled by its weight, in one booster. Anything else: MitigationNotApplicable."""
    total = sum(weight for _, weight in predictors)
    predictors = [(p, weight / total) for p, weight in predictors]
    first = predictors[0][0]
    kinds = {type(p).__name__ for p, _ in predictors}
    if kinds == {"LogisticRegression"}:
        combined = copy.deepcopy(first)
        combined.coef_ = sum(w * p.coef_ for p, w in predictors)
        combined.intercept_ = sum(w * p.intercept_ for p, w in predictors)
        return combined
    if kinds == {"LGBMClassifier"}:
        from lightgbm import Booster

        texts = [p.booster_.model_to_string() for p, _ in predictors]
        head = re.sub(r"^tree_sizes=.*\n", "", texts[0].split("\nTree=0\n", 1)[0] + "\n", flags=re.M)
        trees = [tree for (_, weight), text in zip(predictors, texts) for tree in _scaled_trees(text, weight)]
        tail = texts[0].split("end of trees", 1)[1]
        merged = head + "\n" + "".join(f"Tree={i}\n{tree}\n\n\n" for i, tree in enumerate(trees)) + "end of trees" + tail
        combined = copy.deepcopy(first)
        combined._Booster = Booster(model_str=merged)
        return combined
    raise MitigationNotApplicable(f"exponentiated_gradient: keel cannot combine {sorted(kinds)} predictors "
                                  "into one model (logistic regression and LightGBM only)")


def fit_exponentiated_gradient(model, train: pd.DataFrame, spec: Spec):
    """(Pipeline(features -> combined model), facts): fairlearn's ExponentiatedGradient retrains the
    model family on the training rows of the groups the rule can judge, under the constraint."""
    from fairlearn.reductions import ExponentiatedGradient
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    data, mitigation = spec.data, spec.evaluation.mitigation
    attribute = mitigation_attribute(spec)
    y = train[data.target.column].to_numpy().astype(int)
    groups = group_labels(train, attribute, data.sensitive_attributes[attribute].bins)
    judged, left_out = judge_groups(y, groups, data, mitigation.constraint)
    _enough_groups(judged, left_out, attribute, "training")
    keep = groups.isin(judged).to_numpy()
    encoder, estimator = model.named_steps["features"], model.named_steps["model"]
    reduction = ExponentiatedGradient(clone(estimator), constraints=_constraint(mitigation.constraint), max_iter=20)
    reduction.fit(encoder.transform(train.loc[keep, list(model.feature_names_in_)]), y[keep],
                  sensitive_features=groups[keep].to_numpy())
    used = [(reduction.predictors_[i], float(w)) for i, w in reduction.weights_.items() if w > 0]
    mitigated = Pipeline([("features", encoder), ("model", combine_in_log_odds(used))])
    facts = {"fitted_on": "training split", "predictors": len(used), "weights": [round(w, 6) for _, w in used],
             "decision_rule": "the retrained predictors' log-odds averaged by the mixture's weights (one model, "
                              f"no {attribute} at decision time), cut at the version's threshold"}
    return mitigated, judged, left_out, facts


def _enough_groups(judged: List[str], left_out: Dict[str, str], attribute: str, split: str) -> None:
    if len(judged) < 2:
        raise MitigationNotApplicable(
            f"mitigation on {attribute} needs at least two groups the small-group rule can judge on the {split} "
            f"split; judgeable: {judged or 'none'}; left out: "
            + ("; ".join(f"{g}: {r}" for g, r in left_out.items()) or "none"))


def fit_mitigation(model, train: pd.DataFrame, validation: pd.DataFrame, spec: Spec) -> Tuple[object, dict]:
    """(the mitigated model, facts about the fit). Raises MitigationNotApplicable."""
    mitigation = spec.evaluation.mitigation
    if mitigation.method == "none":
        raise MitigationNotApplicable("the spec sets no mitigation (evaluation.mitigation.method: none)")
    if getattr(model, "decision_attributes_", None):
        raise MitigationNotApplicable("this model is already mitigated; mitigate the version it came from")
    threshold = base_threshold(model, validation, spec)
    if mitigation.method == "threshold_optimizer":
        mitigated, judged, left_out, facts = fit_threshold_optimizer(model, validation, spec, threshold)
    else:
        mitigated, judged, left_out, facts = fit_exponentiated_gradient(model, train, spec)
    return mitigated, {"method": mitigation.method, "constraint": mitigation.constraint,
                       "attribute": mitigation_attribute(spec), "base_threshold": threshold,
                       "groups_fitted": judged, "groups_left_out": left_out, "rule": group_rule(spec.data)["text"],
                       "needs_attribute_at_prediction": mitigation.method == "threshold_optimizer", **facts}


# --- evidence and the report --------------------------------------------------------------------


def gate_evidence(model, validation: pd.DataFrame, test: pd.DataFrame, spec: Spec) -> dict:
    """Every gate metric of `model` as `evaluate` computes it, without the champion comparison:
    threshold (and calibration) by the spec on validation, then the test split."""
    from keel.evaluation.business import evaluate_business
    from keel.evaluation.calibration import evaluate_calibration
    from keel.evaluation.fairness import evaluate_fairness
    from keel.evaluation.gates import decide, gate_values
    from keel.evaluation.latency import evaluate_latency
    from keel.evaluation.performance import evaluate_performance, too_little_test_evidence
    from keel.evaluation.robustness import evaluate_robustness
    from keel.evaluation.suite import decision_model

    data, evaluation = spec.data, spec.evaluation
    y = test[data.target.column].to_numpy()
    scoring, threshold = decision_model(model, validation, spec)
    scores = predict_scores(scoring, test)
    decisions = scores >= threshold["threshold"]
    performance = evaluate_performance(y, scores, threshold["threshold"], evaluation.performance.interval_samples,
                                       evaluation.performance.confidence, evaluation.performance.seed)
    fairness = evaluate_fairness(y, decisions, scores, sensitive_groups(test, data), data)
    calibration = evaluate_calibration(y, scores, evaluation.calibration.bins, evaluation.calibration.method)
    robustness = evaluate_robustness(lambda f: predict_scores(scoring, f), test, y, data, evaluation.robustness,
                                     spec.training.primary_metric)
    latency = evaluate_latency(lambda f: predict_scores(scoring, f), test, scoring, evaluation.latency)
    business = evaluate_business(y, decisions, evaluation.value_matrix, negative_label=data.target.negative)
    values = gate_values(performance, fairness, calibration, robustness, latency, business)
    decision = decide(evaluation.gates, values, None, robustness["hostile_inputs"]["passed"], evaluation.blocking,
                      too_little_test_evidence(performance, group_rule(data)),
                      reports={"fairness": fairness, "performance": performance, "business": business})
    return {"threshold": threshold, "fairness": fairness, "values": values, "decision": decision}


def _number(value) -> Optional[float]:
    """JSON-safe: NaN and infinities become None (no value)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def before_after(before: Dict[str, float], after: Dict[str, float], gates) -> List[dict]:
    """One row per gate metric (fairness ones per attribute too): its value before and after, and the
    spec's gate on it, if any."""
    names = []
    for metric in GATE_METRICS:
        names.append(metric)
        if metric in FAIRNESS_METRICS:
            names += sorted(k for k in {*before, *after} if k.startswith(f"{metric}["))
    bounds = {g.key: g.describe() for g in gates}
    return [{"metric": k, "before": _number(before.get(k)), "after": _number(after.get(k)), "gate": bounds.get(k)}
            for k in names if k in before or k in after]


def mitigation_report(facts: dict, before: Dict[str, float], after: dict, spec: Spec) -> dict:
    """The report of one fitted mitigation: facts, the gates after it, the before/after table."""
    attribute = facts["attribute"]
    table = before_after(before, after["values"], spec.evaluation.gates)
    rows = {r["metric"]: r for r in table}
    trade_off = {k.format(a=attribute): {"before": rows[k.format(a=attribute)]["before"],
                                         "after": rows[k.format(a=attribute)]["after"]}
                 for k in TRADE_OFF if k.format(a=attribute) in rows}
    return {**facts, "applied": True, "reason": None, "threshold": after["threshold"], "fairness": after["fairness"],
            "decision": after["decision"], "before_after": table, "trade_off": trade_off,
            "worsened": worsened_target(rows, facts["constraint"], attribute),
            "champion_comparison": "not part of this table: `evaluate` of the mitigated version adds it"}


def worsened_target(rows: Dict[str, dict], constraint: str, attribute: str) -> Optional[str]:
    """"metric before -> after" when the mitigation left the gap it was fitted to close wider on the test
    split (fitted on validation rows, it can: many small groups, a randomized rule); None otherwise."""
    from keel.spec.metrics import improvement

    metric = CONSTRAINED_METRIC[constraint]
    row = rows.get(f"{metric}[{attribute}]")
    if row is None or row["before"] is None or row["after"] is None:
        return None
    if improvement(metric, row["before"], row["after"]) >= 0:
        return None
    return f"{metric}[{attribute}] {format_value(row['before'])} -> {format_value(row['after'])}"


def not_applied_report(spec: Spec, reason: str) -> dict:
    """Mitigation could not be fitted: said so, never a pass."""
    mitigation = spec.evaluation.mitigation
    decision: Decision = {"gates": [], "failed": [], "missing": [f"mitigation not applied: {reason}"],
                          "complete": False, "passed": False, "advisory": False, "deployable": False,
                          "decision": INCOMPLETE}
    return {"method": mitigation.method, "constraint": mitigation.constraint,
            "attribute": mitigation_attribute(spec) if spec.data.sensitive_attributes else None,
            "applied": False, "reason": reason, "decision": decision, "before_after": [], "trade_off": {},
            "needs_attribute_at_prediction": mitigation.method == "threshold_optimizer"}


def mitigate(model, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, spec: Spec,
             before: dict) -> dict:
    """The mitigation analysis of an evaluation: fit, judge by the same gates, compare with `before`
    (the evaluation's reports; its `decision["values"]` are the gate values before). Never raises
    for a mitigation that cannot be fitted: the report says why (`applied: False`)."""
    try:
        mitigated, facts = fit_mitigation(model, train, validation, spec)
    except MitigationNotApplicable as error:
        return not_applied_report(spec, str(error))
    return mitigation_report(facts, before["decision"]["values"], gate_evidence(mitigated, validation, test, spec),
                             spec)


def mitigated_version_facts(report: dict, mitigated_from: int) -> dict:
    """What a mitigated model version records under `mitigation` (JSON-safe, no per-group reports)."""
    keep = ("method", "constraint", "attribute", "base_threshold", "groups_fitted", "groups_left_out", "rule",
            "fitted_on", "decision_rule", "needs_attribute_at_prediction", "score", "group_thresholds",
            "solution_rates", "predictors", "weights", "before_after", "worsened",
            "champion_comparison", "principal_reasons")
    facts = {k: report[k] for k in keep if k in report}
    return {**facts, "mitigated_from": mitigated_from, "decision_after": describe_decision(report["decision"]),
            "threshold_after": report["threshold"]["threshold"], "threshold_rule_after": report["threshold"]["rule"]}


def fit_mitigated_version(model, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, spec: Spec,
                          from_version: int, metadata: dict) -> Tuple[object, dict]:
    """(the mitigated model, its report) for `run.py mitigate`: every gate metric of `model` and of the
    mitigated model computed the same way. Raises MitigationNotApplicable, also for a version that is
    itself mitigated (`metadata` is its registry metadata)."""
    if metadata.get(keys.MITIGATED_FROM) is not None:
        raise MitigationNotApplicable(f"v{from_version} is itself mitigated (from v{metadata[keys.MITIGATED_FROM]}): "
                                      f"mitigate v{metadata[keys.MITIGATED_FROM]} instead")
    mitigated, facts = fit_mitigation(model, train, validation, spec)
    before = gate_evidence(model, validation, test, spec)
    report = mitigation_report(facts, before["values"], gate_evidence(mitigated, validation, test, spec), spec)
    available, how = reasons_statement(mitigated, report["method"], spec.data.target.favourable, from_version)
    return mitigated, {**report, "mitigated_from": from_version,
                       "principal_reasons": {"available": available, "how": how}}


# What a mitigated version shares with its base version: it is fitted on the base's splits, so the
# base's data facts (fingerprint, source, leakage and proxy screening) are its own (README: "the same
# provenance"). Without them its model card said "not recorded" of the base's screening findings.
# The base's engine record too: its training split (the one the mitigation was fitted beside) is the
# dask engine's sample, which the champion comparison must know (keel.evaluation.champion_rows).
SHARED_WITH_BASE = (keys.DATA_FINGERPRINT, keys.DATA_SOURCE, keys.SCREENING, keys.ENGINE)


def shared_data_facts(unmitigated: dict) -> dict:
    """The base version's data facts a mitigated version carries (those the base recorded)."""
    return {key: unmitigated[key] for key in SHARED_WITH_BASE if unmitigated.get(key) is not None}


def mitigated_model_facts(model, method: str, unmitigated: dict, train: pd.DataFrame, validation: pd.DataFrame,
                          test: pd.DataFrame, spec: Spec) -> dict:
    """The facts a mitigated version records about its model, as `reproduce` compares them: family,
    hyperparameters (the base's), rows, validation and test metrics, model SHA-256. One function for
    registration and reproduction, so the two cannot compute them differently."""
    from keel.training.fit import model_hash
    from keel.training.metrics import score

    target = spec.data.target.column
    return {keys.MODEL_FAMILY: f"{unmitigated.get(keys.MODEL_FAMILY)} + {method}",
            keys.HYPERPARAMETERS: unmitigated.get(keys.HYPERPARAMETERS) or {},
            keys.VALIDATION_METRICS: score(validation[target], predict_scores(model, validation)),
            keys.TEST_METRICS: score(test[target], predict_scores(model, test)),
            keys.MODEL_SHA256: model_hash(model),
            keys.ROWS: {"train": len(train), "validation": len(validation), "test": len(test)}}


def mitigated_registration_metadata(model, report: dict, train: pd.DataFrame, validation: pd.DataFrame,
                                    test: pd.DataFrame, spec: Spec, unmitigated: dict, spec_hash: str,
                                    provenance: dict) -> dict:
    """What the mitigated version records: the same provenance as a trained one (the data facts are
    its unmitigated version's, `unmitigated` being that version's metadata: SHARED_WITH_BASE), its
    lineage (`mitigated_from`) and the mitigation with its before/after table."""
    from keel.registry import registration_metadata
    from keel.spec.data import target_mapping
    from keel.training.fit import model_size

    primary = spec.training.primary_metric
    source = report["mitigated_from"]
    facts = mitigated_model_facts(model, report["method"], unmitigated, train, validation, test, spec)
    validation_metrics = facts[keys.VALIDATION_METRICS]
    selection = {"chosen": facts[keys.MODEL_FAMILY], "params": facts[keys.HYPERPARAMETERS], "primary_metric": primary,
                 "validation_metrics": validation_metrics,
                 "compared": {f"v{source} (unmitigated)": (unmitigated.get(keys.VALIDATION_METRICS) or {}).get(primary),
                              "mitigated": validation_metrics[primary]}}
    metadata = registration_metadata(
        selection=selection, test_metrics=facts[keys.TEST_METRICS],
        model_sha256=facts[keys.MODEL_SHA256], model_bytes=model_size(model),
        data_fingerprint=unmitigated.get(keys.DATA_FINGERPRINT), data_source=unmitigated.get(keys.DATA_SOURCE),
        training_rows=facts[keys.ROWS], spec_hash=spec_hash, seed=spec.training.seed, provenance=provenance,
        target=target_mapping(spec.data.target))
    return {**metadata, **shared_data_facts(unmitigated), keys.MITIGATED_FROM: source,
            keys.MITIGATION: mitigated_version_facts(report, source)}


def before_after_rows(table: List[dict]) -> List[tuple]:
    """(metric, before, after, gate) for a table: what every report shows."""
    return [(r["metric"], r["before"], r["after"], r["gate"] or "") for r in table]


def describe_mitigation(facts: dict) -> Tuple[str, List[Tuple[str, str]]]:
    """(a paragraph, (item, value) rows: the facts, then every gate metric before -> after) for the
    model card and the technical documentation. `facts`: a mitigated version's `mitigation` metadata
    or an evaluation's mitigation report."""
    if not facts.get("applied", True):
        return f"{facts['method']} was not applied: {facts['reason']}.", []
    source = facts.get("mitigated_from")
    what = (f"This version is v{source} mitigated by {facts['method']}" if source is not None
            else f"Analysis only (not this version's decisions): {facts['method']}")
    text = (f"{what} ({facts['constraint']} on {facts['attribute']}), fitted on the {facts['fitted_on']}. "
            f"Every gate metric on the test split, before and after, from the mitigated model's own scores "
            f"and decisions; the champion comparison is not in this table.")
    left_out = facts.get("groups_left_out") or {}
    rows = [("decision rule", facts["decision_rule"]),
            ("sensitive attribute at decision time", "yes" if facts["needs_attribute_at_prediction"] else "no"),
            ("groups fitted", ", ".join(facts["groups_fitted"])),
            ("groups left out (small-group rule)", "; ".join(f"{g}: {r}" for g, r in left_out.items()) or "none"),
            ("gates after mitigation", facts.get("decision_after") or describe_decision(facts["decision"]))]
    if facts.get("principal_reasons"):
        rows.append(("principal reasons of unfavourable decisions", facts["principal_reasons"]["how"]))
    if facts.get("worsened"):
        rows.append(("WARNING: the gap it targets widened on the test split", facts["worsened"]))
    for row in facts.get("before_after") or []:
        gate = f" (gate {row['gate']})" if row["gate"] else ""
        rows.append((row["metric"], f"{format_value(row['before'])} -> {format_value(row['after'])}{gate}"))
    return text, rows


def mitigation_html(report: dict) -> str:
    from keel.evaluation.gates import gates_table

    title = f"Mitigation: {report['method']} ({report['constraint']} on {report['attribute']})"
    if not report["applied"]:
        return html.page(title, html.paragraph(f"Not applied: {report['reason']}. Nothing here is a pass."))
    left_out = report["groups_left_out"]
    facts = {"fitted on": report["fitted_on"], "groups fitted": ", ".join(report["groups_fitted"]),
             "groups left out (small-group rule)": "; ".join(f"{g}: {r}" for g, r in left_out.items()) or "none",
             "decision rule": report["decision_rule"],
             "sensitive attribute at decision time": "yes" if report["needs_attribute_at_prediction"] else "no",
             "threshold after (rule on validation)": f"{report['threshold']['threshold']:.4f} "
                                                      f"({report['threshold']['rule']})"}
    return html.page(
        title, html.key_values(facts), html.paragraph(f"Small-group rule: {report['rule']}."),
        html.heading("Before / after, every gate metric (test split; the mitigated model's own scores and decisions)"),
        html.table(["metric", "before", "after", "gate"], before_after_rows(report["before_after"])),
        html.paragraph(f"Champion comparison: {report['champion_comparison']}."),
        html.heading(f"Gates after mitigation: {describe_decision(report['decision'])}"),
        gates_table(report["decision"]))

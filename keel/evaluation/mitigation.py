"""Fairness mitigation with fairlearn, re-judged by the same gates.

- `threshold_optimizer` (post-processing): group-specific thresholds on the fitted model, chosen on
  validation data. It needs the sensitive attribute at prediction time.
- `exponentiated_gradient` (reduction): retrains the model family under a fairness constraint on
  the training split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from keel.data.groups import sensitive_groups
from keel.evaluation.business import evaluate_business
from keel.evaluation.fairness import evaluate_fairness
from keel.evaluation.gates import decide, fairness_values
from keel.reports import html
from keel.spec.models import Spec
from keel.training.metrics import score

DECISION_METRICS = ("f1", "precision", "recall", "accuracy")


def _constraint(name: str):
    from fairlearn.reductions import DemographicParity, EqualizedOdds

    return DemographicParity() if name == "demographic_parity" else EqualizedOdds()


def mitigate(model, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, spec: Spec,
             before: dict) -> dict:
    """Mitigated decisions on the test split, their fairness and value, and the gates re-run.

    `before` is the unmitigated evaluation (`keel.evaluation.suite.evaluate_all`'s result)."""
    mitigation, data = spec.evaluation.mitigation, spec.data
    attribute = mitigation.attribute or next(iter(data.sensitive_attributes))
    target = data.target.column
    columns = list(model.feature_names_in_)
    y_test = test[target].to_numpy()
    scores = None
    if mitigation.method == "threshold_optimizer":
        from fairlearn.postprocessing import ThresholdOptimizer

        optimizer = ThresholdOptimizer(estimator=model, constraints=mitigation.constraint,
                                       objective="balanced_accuracy_score", predict_method="predict_proba",
                                       prefit=True)
        optimizer.fit(validation[columns], validation[target],
                      sensitive_features=sensitive_groups(validation, data)[attribute])
        decisions = optimizer.predict(test[columns], sensitive_features=sensitive_groups(test, data)[attribute],
                                      random_state=spec.evaluation.robustness.seed).astype(bool)
    else:
        from fairlearn.reductions import ExponentiatedGradient
        from sklearn.base import clone

        encoder, estimator = model.named_steps["features"], model.named_steps["model"]
        reduction = ExponentiatedGradient(clone(estimator), constraints=_constraint(mitigation.constraint),
                                          max_iter=20)
        reduction.fit(encoder.transform(train[columns]), train[target],
                      sensitive_features=sensitive_groups(train, data)[attribute])
        x_test = encoder.transform(test[columns])
        scores = np.clip(reduction._pmf_predict(x_test)[:, 1], 0.0, 1.0)  # a mixture; rounding can pass 1
        decisions = scores >= before["threshold"]["threshold"]
    values = dict(before["decision"]["values"])
    if scores is not None:  # a retrained model: every score-based metric is new
        values.update(score(y_test, scores, before["threshold"]["threshold"]))
    else:  # decisions only: ranking metrics stay those of the underlying model
        decided = score(y_test, decisions.astype(float), 0.5)
        values.update({name: decided[name] for name in DECISION_METRICS})
    fairness = evaluate_fairness(y_test, decisions, scores if scores is not None else decisions.astype(float),
                                 sensitive_groups(test, data), data)
    values.update(fairness_values(fairness))
    business = evaluate_business(y_test, decisions, spec.evaluation.value_matrix)
    values["expected_value_per_application"] = business["expected_value_per_application"]
    values["value_uplift_vs_baseline"] = business["value_uplift_vs_baseline"]
    decision = decide(spec.evaluation.gates, values, before.get("comparison"),
                      before["robustness"]["hostile_inputs"]["passed"])
    trade_off = {name: {"before": before["decision"]["values"].get(name), "after": values.get(name)}
                 for name in ("accuracy", "f1", f"demographic_parity_ratio[{attribute}]",
                              f"equalized_odds_difference[{attribute}]", "expected_value_per_application")}
    return {"method": mitigation.method, "constraint": mitigation.constraint, "attribute": attribute,
            "fairness": fairness, "decision": decision, "trade_off": trade_off,
            "needs_attribute_at_prediction": mitigation.method == "threshold_optimizer"}


def mitigation_html(report: dict) -> str:
    from keel.evaluation.gates import gates_table

    notes = ("ThresholdOptimizer applies group-specific thresholds: serving it needs the sensitive "
             "attribute at prediction time." if report["needs_attribute_at_prediction"] else
             "ExponentiatedGradient retrained the model family under the constraint.")
    return html.page(
        f"Mitigation: {report['method']} ({report['constraint']} on {report['attribute']})",
        html.paragraph(notes),
        html.heading("Accuracy / fairness trade-off (test split)"),
        html.table(["measure", "before", "after"], [(k, v["before"], v["after"]) for k, v in report["trade_off"].items()]),
        html.heading(f"Gates after mitigation: {report['decision']['decision']}"),
        gates_table(report["decision"]))

"""The problem spec: one YAML file describes the whole lifecycle of one model, one section per phase.

Each section lives in the module of its phase (problem, data, training, evaluation, deployment,
monitoring, governance); this module holds the root, and the checks that span sections. Every model
forbids unknown keys (ZenML silently ignores them in its run configs; a typo in a governed spec must
never pass unnoticed).
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from keel.spec.base import StrictModel
from keel.spec.batch import BatchSpec
from keel.spec.data import CategoricalFeature, DataSpec, GeneratorSource, SplitSpec
from keel.spec.decisions import DecisionsSpec
from keel.spec.deployment import DeploymentSpec
from keel.spec.evaluation import FAIRNESS_METRICS, EvaluationSpec
from keel.spec.governance import GovernanceSpec
from keel.spec.monitoring import MonitoringSpec
from keel.spec.problem import ProblemSpec
from keel.spec.training import TrainingSpec


class Spec(StrictModel):
    """A keel problem spec: one section per lifecycle phase."""

    problem: ProblemSpec
    data: DataSpec
    split: SplitSpec = SplitSpec()
    training: TrainingSpec = TrainingSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    deployment: DeploymentSpec = DeploymentSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    batch: BatchSpec = BatchSpec()
    decisions: DecisionsSpec = DecisionsSpec()
    governance: GovernanceSpec = GovernanceSpec()

    @model_validator(mode="after")
    def _time_split_needs_time_column(self) -> "Spec":
        if self.split.strategy == "time" and self.data.time_column is None:
            raise ValueError("split.strategy `time` needs data.time_column")
        if self.monitoring.simulation is not None and not isinstance(self.data.source, GeneratorSource):
            raise ValueError("monitoring.simulation draws traffic from keel's generator: it needs "
                             "data.source.kind generator (drop it for a spec of your own data)")
        attributes = list(self.data.sensitive_attributes)
        known = set(attributes) | ({" x ".join(attributes)} if len(attributes) > 1 else set())
        attribute = self.evaluation.mitigation.attribute
        if self.evaluation.mitigation.method != "none" and not attributes:
            raise ValueError("evaluation.mitigation needs data.sensitive_attributes")
        if attribute is not None and attribute not in self.data.sensitive_attributes:
            raise ValueError(f"evaluation.mitigation.attribute `{attribute}` is not a sensitive attribute")
        for index, gate in enumerate(self.evaluation.gates):
            if gate.metric in FAIRNESS_METRICS and not attributes:
                raise ValueError(f"evaluation.gates[{index}] ({gate.describe()}): a fairness gate needs "
                                 "data.sensitive_attributes")
            if gate.attribute is not None and gate.attribute not in known:
                order = (" (their intersection is named in the order data.sensitive_attributes declares them)"
                         if len(attributes) > 1 else "")
                raise ValueError(f"evaluation.gates[{index}].attribute: `{gate.attribute}` is not one of "
                                 f"{sorted(known)}{order}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _monitor_the_primary_metric(cls, raw: Any) -> Any:
        """The monitored performance metric (drift and the retraining trigger) is the spec's
        `training.primary_metric` unless declared: a fraud spec selecting by pr_auc was watched by roc_auc,
        a default fit for the credit demo."""
        training = raw.get("training") if isinstance(raw, dict) else None
        primary = training.get("primary_metric") if isinstance(training, dict) else None
        monitoring = raw.get("monitoring", {}) if isinstance(raw, dict) else None
        if primary is None or not isinstance(monitoring, dict):
            return raw
        monitoring = dict(monitoring)
        drift = monitoring.get("drift", {})
        if isinstance(drift, dict) and isinstance(drift.get("performance", {}), dict):
            performance = drift.get("performance", {})
            monitoring["drift"] = {**drift, "performance": {"metric": primary, **performance}}
        retraining = monitoring.get("retraining", {})
        if isinstance(retraining, dict) and isinstance(retraining.get("performance", {}), dict):
            trigger = retraining.get("performance", {})  # absent: the default trigger; null: none, kept
            monitoring["retraining"] = {**retraining, "performance": {"metric": primary, **trigger}}
        return {**raw, "monitoring": monitoring}

    @model_validator(mode="after")
    def _reasons_name_model_features(self) -> "Spec":
        unknown = sorted(set(self.decisions.reasons) - set(self.data.model_features))
        if unknown:
            raise ValueError(f"decisions.reasons names {unknown}, which the model does not see: a reason is one of the "
                             f"model's features ({', '.join(self.data.model_features)}); a sensitive attribute never is")
        sided_categories = sorted(name for name, statement in self.decisions.reasons.items()
                                  if not isinstance(statement, str)
                                  and isinstance(self.data.features.get(name), CategoricalFeature))
        if sided_categories:
            raise ValueError(f"decisions.reasons gives {sided_categories} statements for higher and lower values, but "
                             f"they are categorical: give one statement each")
        return self

    @model_validator(mode="after")
    def _roles_need_a_human_approval(self) -> "Spec":
        approval = self.deployment.approval
        if self.governance.roles is not None and (approval.auto_approve or not approval.required):
            raise ValueError("governance.roles makes approvals maker-checker: it needs deployment.approval.required "
                             "true and auto_approve false (an automatic approval has no approver)")
        return self


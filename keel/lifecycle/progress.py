"""What a lifecycle sequence tells its caller while it runs (the CLI prints it; the defaults do nothing),
so that a library function returning a result can still show each stage as it finishes."""

from __future__ import annotations


class Progress:
    """Called by the lifecycle functions as they go; override what you want to show."""

    def training_started(self, spec) -> None:
        pass

    def trained(self, spec, result) -> None:
        """`result`: a keel.lifecycle.training.TrainingResult."""

    def evaluation_started(self, spec) -> None:
        pass

    def evaluated(self, spec, result) -> None:
        """`result`: a keel.lifecycle.evaluation.EvaluationResult."""

    def deployment_started(self, spec) -> None:
        pass

    def deployed(self, spec, result) -> None:
        """`result`: a keel.lifecycle.deployment.DeploymentResult."""

    def monitored(self, spec, result) -> None:
        """`result`: a keel.lifecycle.monitoring.MonitorResult with its status and decision."""

    def retraining_started(self, spec, decision: dict) -> None:
        pass

    def retraining_not_started(self, spec, error: str) -> None:
        pass

    def retraining_skipped(self, spec, outcome: str) -> None:
        pass

    def traffic_started(self, spec, world, url: str) -> None:
        pass

    def batch_started(self, spec, portfolio) -> None:
        pass

    def batch_scored(self, spec, result) -> None:
        """`result`: a keel.lifecycle.batch.BatchJobResult."""

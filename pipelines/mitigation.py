from zenml import pipeline

from keel.artifacts import Artifact
from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.evaluation.fit_mitigation import fit_mitigation_step
from steps.training.register_mitigated_model import register_mitigated_model_step


@pipeline
def mitigation_pipeline(spec: Spec, model_version: int, spec_hash: str, provenance: dict) -> None:
    """The version's model and splits -> the spec's mitigation fitted, every gate metric before and
    after -> the mitigated model registered as a new version (mitigated_from), on the same splits."""
    linked = version_artifacts(spec.problem.name, model_version,
                               [Artifact.MODEL, Artifact.TRAIN, Artifact.VALIDATION, Artifact.TEST])
    train, validation, test = linked[Artifact.TRAIN], linked[Artifact.VALIDATION], linked[Artifact.TEST]
    model, report, report_html = fit_mitigation_step(model=linked[Artifact.MODEL], train=train, validation=validation,
                                                     test=test, spec=spec, model_version=model_version)
    register_mitigated_model_step(model=model, mitigation_report=report, mitigation_report_html=report_html,
                                  train=train, validation=validation, test=test, spec=spec, spec_hash=spec_hash,
                                  provenance=provenance, model_version=model_version)

from zenml import pipeline

from keel.registry import version_artifacts
from keel.spec.models import Spec
from steps.evaluation.fit_mitigation import fit_mitigation_step
from steps.training.register_mitigated_model import register_mitigated_model_step


@pipeline
def mitigation_pipeline(spec: Spec, model_version: int, spec_hash: str, provenance: dict) -> None:
    """The version's model and splits -> the spec's mitigation fitted, every gate metric before and
    after -> the mitigated model registered as a new version (mitigated_from), on the same splits."""
    linked = version_artifacts(spec.problem.name, model_version, ["model", "train", "validation", "test"])
    train, validation, test = linked["train"], linked["validation"], linked["test"]
    model, report, report_html = fit_mitigation_step(linked["model"], train, validation, test, spec, model_version)
    register_mitigated_model_step(model, report, report_html, train, validation, test, spec, spec_hash, provenance,
                                  model_version)

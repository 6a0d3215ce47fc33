from typing_extensions import Annotated
from zenml import get_step_context, step

from keel.artifacts import Artifact
from keel.evaluation.record import FINISHED, evaluation_record, evidence_minimums, release_contract
from keel.engine.dask_run import evaluation_sample
from keel.registration import ENGINE, SPEC_SHA256
from keel.registry import get_model_version_metadata, record_evaluation
from keel.spec import spec_hash
from keel.spec.models import Spec


@step(enable_cache=False)
def record_decision_step(promotion_decision: dict, decision_threshold: dict, spec: Spec,
                         model_version: int) -> Annotated[dict, Artifact.EVALUATION_RECORD]:
    """The last step, run only when every other one succeeded: record the decision on the version and
    in the audit trail, and move it into staging (deployable) or out of it. Out: the record, with the
    stage the version now has. A side effect, so never cached."""
    context = get_step_context()
    run = context.pipeline_run
    training = get_model_version_metadata(spec.problem.name, model_version)
    record = evaluation_record(promotion_decision, status=FINISHED, run_id=run.id, run_name=run.name,
                               spec_sha256=spec_hash(spec), evaluation=spec.evaluation,
                               training_spec_sha256=training.get(SPEC_SHA256),
                               threshold=decision_threshold["threshold"], threshold_rule=decision_threshold["rule"],
                               changes=promotion_decision.get("gate_changes"), minimums=evidence_minimums(spec.data),
                               contract=release_contract(spec))
    sample = evaluation_sample(training.get(ENGINE), spec.split.seed)
    if sample is not None:  # a dask version: the metrics above are on a stated seeded sample of its test split
        record = {**record, "test_sample": sample}
    evidence = [artifact.id for inputs in context.inputs.values() for artifact in inputs]
    stage = record_evaluation(spec.problem.name, model_version, record, evidence,
                              promote=promotion_decision["deployable"])
    return {**record, "stage": stage}

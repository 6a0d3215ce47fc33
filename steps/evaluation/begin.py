from zenml import get_step_context, step

from keel.evaluation.gates import incomplete_decision
from keel.evaluation.record import RUNNING, evaluation_record
from keel.registry import begin_evaluation
from keel.spec import spec_hash
from keel.spec.models import Spec


@step(enable_cache=False)
def begin_evaluation_step(spec: Spec, model_version: int) -> None:
    """Record the version's evaluation as `incomplete` (and take it out of staging) before any
    evidence is gathered: a run that fails or is killed midway leaves nothing deployable. A side
    effect, so never cached."""
    run = get_step_context().pipeline_run
    decision = incomplete_decision(None, f"evaluation run {run.name} started and has not finished")
    begin_evaluation(spec.problem.name, model_version,
                     evaluation_record(decision, status=RUNNING, run_id=run.id, run_name=run.name,
                                       spec_sha256=spec_hash(spec), evaluation=spec.evaluation))

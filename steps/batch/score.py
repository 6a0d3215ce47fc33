from typing import Any, Optional

import pandas as pd
from typing_extensions import Annotated
from zenml import step

from keel.artifacts import Artifact
from keel.lifecycle.batch import score_input
from keel.spec.models import Spec


@step(enable_cache=False)
def score_batch_step(model: Any, decision_threshold: float, input_fingerprint: str, spec: Spec, model_version: int,
                     batch_id: str, location: str, query: Optional[str], output: str, output_format: str,
                     new_batch: bool, engine: dict,
                     validation: pd.DataFrame) -> Annotated[dict, Artifact.BATCH_RESULT]:
    """Score the input in chunks through the payload contract (rejects with their reasons), publish the
    output and rejects at the end and the rows' monitoring profiles after them; or skip, naming the
    earlier batch of the same input, version and spec (unless `new_batch`). `engine`: the stack's
    (keel.engine.selection.engine_parameter; {} is local); `validation`: the version's validation split,
    the reference of a linear model's principal reasons."""
    return dict(score_input(spec=spec, model=model, threshold=decision_threshold, model_version=model_version,
                            batch_id=batch_id, location=location, query=query, input_fingerprint=input_fingerprint,
                            output=output, fmt=output_format, new_batch=new_batch,
                            engine=engine, validation=validation))

"""A step that fails before its own code runs (an input artifact it reads is gone) has no exception on its
step run: the command said only "Pipeline run has failed due to failure in step(s) use_step". The cause is
taken from ZenML's step launcher as it logs it. A real pipeline run on this module's ZenML store."""

from typing import Annotated, Any, Type

from zenml import pipeline, step
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer

from keel.lifecycle.pipeline_runs import failed_step_message, run_pipeline


class Stored:
    """An object whose stored copy cannot be read back."""


class GoneMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Stored,)
    ASSOCIATED_ARTIFACT_TYPE = ArtifactType.DATA

    def save(self, data: Any) -> None:
        pass

    def load(self, data_type: Type[Any]) -> Any:
        raise FileNotFoundError(f"No such file or directory: '{self.uri}/stored.bin'")


@step(output_materializers=GoneMaterializer, enable_cache=False)
def make_step() -> Annotated[Stored, "stored"]:
    return Stored()


@step(enable_cache=False)
def use_step(stored: Stored) -> Annotated[int, "used"]:
    return 1


@pipeline(enable_cache=False)
def reads_a_missing_artifact() -> None:
    use_step(make_step())


def test_a_step_failing_on_a_missing_input_names_the_cause_not_only_the_step():
    outcome = run_pipeline(reads_a_missing_artifact, no_cache=True)
    assert outcome.failed_step == "use_step"
    assert outcome.error.startswith("No such file or directory: '") and outcome.error.endswith("/stored.bin'")
    assert "failure in step(s)" not in outcome.error
    assert failed_step_message(outcome).startswith(f"keel: the pipeline failed at step use_step of run "
                                                   f"{outcome.run.name}:\nNo such file or directory")

"""keel's adapter to ZenML's Model Control Plane: create model versions and read them back.

This is one of the few keel modules that talks to ZenML; it imports ZenML inside its functions so
that importing keel stays fast.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional
from uuid import UUID

from keel.training.metrics import DEFAULT_THRESHOLD, METRICS_THRESHOLD_KEY


def registration_metadata(*, selection: dict, test_metrics: Dict[str, float], model_sha256: str,
                          model_bytes: int, data_fingerprint: str, data_source: str,
                          training_rows: Dict[str, int], spec_hash: str, seed: int,
                          provenance: dict) -> dict:
    """Everything a model version records about how it was made (pure; no ZenML)."""
    return {
        "model_family": selection["chosen"],
        "hyperparameters": selection["params"],
        "primary_metric": selection["primary_metric"],
        "validation_metrics": selection["validation_metrics"],
        "test_metrics": test_metrics,
        # Both computed at the default threshold; evaluation judges at the threshold it chooses.
        METRICS_THRESHOLD_KEY: DEFAULT_THRESHOLD,
        "candidates_compared": selection["compared"],
        "model_sha256": model_sha256,
        "model_bytes": model_bytes,
        "data_fingerprint": data_fingerprint,
        "data_source": data_source,
        "rows": training_rows,
        "spec_sha256": spec_hash,
        "seed": seed,
        **provenance,
    }


def register_model_version(model_name: str, description: str, metadata: dict,
                           artifact_ids: Iterable[UUID], run_id: Optional[UUID]) -> int:
    """Create the next version of `model_name`, link its evidence and this run; return its number."""
    from zenml import log_metadata
    from zenml.client import Client
    from zenml.models import ModelVersionPipelineRunRequest

    client = Client()
    try:
        client.get_model(model_name)
    except KeyError:
        client.create_model(name=model_name, description=description)
    version = client.create_model_version(model_name_or_id=model_name,
                                          description=f"trained by run {run_id}")
    link_artifacts(model_name, int(version.number), artifact_ids)
    if run_id is not None:
        client.zen_store.create_model_version_pipeline_run_link(
            ModelVersionPipelineRunRequest(model_version=version.id, pipeline_run=run_id))
    log_metadata(metadata=metadata, model_version_id=version.id)
    from keel.governance.events import record_registration
    record_registration(model_name, int(version.number), run_id, artifact_ids, metadata)
    return int(version.number)


def list_model_versions(model_name: str) -> List[dict]:
    """Every version of a model with its recorded metadata, oldest first."""
    from zenml.client import Client

    client = Client()
    try:
        client.get_model(model_name)
    except KeyError:
        return []
    versions = client.list_model_versions(model=model_name, size=1000,
                                          sort_by="asc:number", hydrate=True)
    return [{"number": v.number, "stage": str(v.stage) if v.stage else None,
             "created": v.created, "metadata": dict(v.run_metadata or {})} for v in versions.items]


def _registered_version(model_name: str, version: int, hydrate: bool = False):
    """The ZenML model version; LookupError (not ZenML's KeyError) when the active stack's registry has
    no such version, e.g. one named by a prediction log written under another stack."""
    from zenml.client import Client

    try:
        return Client().get_model_version(model_name, version, hydrate=hydrate)
    except KeyError:
        raise LookupError(f"v{version} of {model_name} is not in the registry of the active stack") from None


def get_model_version_metadata(model_name: str, version: int) -> dict:
    return dict(_registered_version(model_name, version, hydrate=True).run_metadata or {})


def resolve_version(model_name: str, version: Optional[int]) -> int:
    """The given version number, or the latest; a clear error if there is none."""
    from zenml.client import Client

    try:
        model_version = Client().get_model_version(model_name, version)
    except KeyError:
        what = f"version {version} of model '{model_name}'" if version else f"version of model '{model_name}'"
        raise LookupError(f"there is no {what} in the registry of the active stack; "
                          "train one first: python run.py train") from None
    return int(model_version.number)


def version_artifacts(model_name: str, version: int, names: Iterable[str]) -> dict:
    """The named artifacts linked to a model version (e.g. its model and its test split)."""
    model_version = _registered_version(model_name, version)
    found = {}
    for name in names:
        artifact = model_version.get_artifact(name)
        if artifact is None:
            raise LookupError(f"{model_name} v{version} has no artifact '{name}' linked")
        found[name] = artifact
    return found


def find_champion(model_name: str, exclude_version: int) -> Optional[dict]:
    """The production version, else the staging one (never the candidate itself)."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    client = Client()
    for stage in (ModelStages.PRODUCTION, ModelStages.STAGING):
        try:
            model_version = client.get_model_version(model_name, stage)
        except KeyError:
            continue
        if int(model_version.number) != exclude_version:
            return {"name": f"v{model_version.number} ({stage.value})", "number": int(model_version.number),
                    "stage": stage.value, "metadata": dict(model_version.run_metadata or {}),
                    "model": model_version.get_artifact("model").load()}
    return None


def link_artifacts(model_name: str, version: int, artifact_ids: Iterable[UUID]) -> None:
    """Link evidence (artifact versions) to a model version; linking twice is harmless."""
    from zenml.client import Client
    from zenml.models import ModelVersionArtifactRequest

    client = Client()
    model_version = client.get_model_version(model_name, version)
    for artifact_id in dict.fromkeys(artifact_ids):
        client.zen_store.create_model_version_artifact_link(
            ModelVersionArtifactRequest(artifact_version=artifact_id, model_version=model_version.id))


def _attach(model_name: str, version: int, key: str, value: dict) -> None:
    """Record `value` under `key` in the version's metadata (a later record of the key wins)."""
    from zenml import log_metadata
    from zenml.client import Client

    log_metadata(metadata={key: value}, model_version_id=Client().get_model_version(model_name, version).id)


def record_evaluation(model_name: str, version: int, evaluation: dict, artifact_ids: Iterable[UUID],
                      promote: bool) -> Optional[str]:
    """Attach the evaluation record to the version and the audit trail; move the version to staging
    when it is deployable, and out of staging when it is not (a rejected or incomplete evaluation
    leaves no candidate behind). Production is left to `deploy`/`rollback`. Returns the stage now."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    link_artifacts(model_name, version, artifact_ids)
    _attach(model_name, version, "evaluation", evaluation)
    from keel.governance.audit import EVALUATED, record_event
    record_event(EVALUATED, model_name, version, evaluation.get("run_id"), artifact_ids, evaluation)
    model_version = Client().get_model_version(model_name, version)
    stage = getattr(model_version.stage, "value", model_version.stage)
    from keel.governance.events import record_stage
    if promote and stage != ModelStages.PRODUCTION.value:
        model_version.set_stage(ModelStages.STAGING, force=True)
        record_stage(model_name, version, ModelStages.STAGING.value)
        return ModelStages.STAGING.value
    if not promote and stage == ModelStages.STAGING.value:
        model_version.set_stage(ModelStages.NONE, force=True)
        record_stage(model_name, version, ModelStages.NONE.value)
        return None
    return stage


def production_version(model_name: str) -> Optional[int]:
    from zenml.client import Client
    from zenml.enums import ModelStages

    try:
        return int(Client().get_model_version(model_name, ModelStages.PRODUCTION).number)
    except KeyError:
        return None


def load_version_model(model_name: str, version: int):
    return version_artifacts(model_name, version, ["model"])["model"].load()


def begin_evaluation(model_name: str, version: int, evaluation: dict) -> None:
    """Before any evidence is gathered: the version's latest evaluation is `incomplete` and it leaves
    staging, so a run that fails or is killed midway can never leave it promoted."""
    record_evaluation(model_name, version, evaluation, (), promote=False)


def evaluation_outcome(model_name: str, version: int) -> Optional[dict]:
    """The version's latest recorded evaluation, or None if it was never evaluated."""
    return get_model_version_metadata(model_name, version).get("evaluation")


def record_approval(model_name: str, version: int, by: str, reason: str) -> dict:
    from keel.clock import utc_now

    approval = {"by": by, "reason": reason, "at": utc_now().isoformat()}
    _attach(model_name, version, "approval", approval)
    from keel.governance.audit import APPROVED, record_event
    record_event(APPROVED, model_name, version, actor=by, details=approval)
    return approval


def record_deployment(model_name: str, version: int, deployment: dict) -> None:
    _attach(model_name, version, "deployment", deployment)
    from keel.governance.audit import DEPLOYMENT_OUTCOME, record_event
    record_event(DEPLOYMENT_OUTCOME, model_name, version, details=deployment)


def promote_to_production(model_name: str, version: int) -> Optional[int]:
    """Make `version` the production version; the previous one is archived. Returns the previous."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    previous = production_version(model_name)
    client = Client()
    if previous is not None and previous != version:
        client.get_model_version(model_name, previous).set_stage(ModelStages.ARCHIVED, force=True)
    client.get_model_version(model_name, version).set_stage(ModelStages.PRODUCTION, force=True)
    from keel.governance.events import record_promotion
    record_promotion(model_name, version, previous)
    return previous

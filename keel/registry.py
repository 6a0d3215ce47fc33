"""keel's adapter to ZenML's Model Control Plane: create model versions and read them back.

This is one of the few keel modules that talks to ZenML; it imports ZenML inside its functions so
that importing keel stays fast.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional
from uuid import UUID

from keel.artifacts import Artifact
from keel import registration as keys
from keel.registration import InterruptedRegistration, RegistrationMetadata, interrupted_message, registration_complete
from keel.training.metrics import DEFAULT_THRESHOLD

if TYPE_CHECKING:  # keel.evaluation.record imports the spec models: only for the annotations
    from keel.evaluation.record import EvaluationRecord


def registration_metadata(*, selection: dict, test_metrics: Dict[str, float], model_sha256: str,
                          model_bytes: int, data_fingerprint: str, data_source: str,
                          training_rows: Dict[str, int], spec_hash: str, seed: int,
                          provenance: dict, target: Dict[str, Optional[str]]) -> RegistrationMetadata:
    """Everything a model version records about how it was made (pure; no ZenML)."""
    return {
        keys.MODEL_FAMILY: selection["chosen"],
        keys.HYPERPARAMETERS: selection["params"],
        keys.PRIMARY_METRIC: selection["primary_metric"],
        keys.VALIDATION_METRICS: selection["validation_metrics"],
        keys.TEST_METRICS: test_metrics,
        # Both computed at the default threshold; evaluation judges at the threshold it chooses.
        keys.METRICS_THRESHOLD: DEFAULT_THRESHOLD,
        keys.CANDIDATES_COMPARED: selection["compared"],
        keys.MODEL_SHA256: model_sha256,
        keys.MODEL_BYTES: model_bytes,
        keys.DATA_FINGERPRINT: data_fingerprint,
        keys.DATA_SOURCE: data_source,
        keys.ROWS: training_rows,
        keys.SPEC_SHA256: spec_hash,
        keys.SEED: seed,
        keys.TARGET: target,
        **provenance,
    }


def register_model_version(model_name: str, description: str, metadata: RegistrationMetadata,
                           artifact_ids: Iterable[UUID], run_id: Optional[UUID]) -> int:
    """Create the next version of `model_name`, link its evidence and this run; return its number.

    ZenML writes a version and each metadata key apart, so a kill can stop this anywhere: the version
    is usable only once its completion mark, the last write, is there (`registration_complete`). The
    audit trail records the start before anything else about the version and the registration before
    the mark, so an interrupted registration is told apart from a deleted record."""
    from zenml import log_metadata
    from zenml.client import Client
    from zenml.models import ModelVersionPipelineRunRequest

    from keel.clock import utc_now
    from keel.governance.events import record_registration, record_registration_started

    client = Client()
    try:
        client.get_model(model_name)
    except KeyError:
        client.create_model(name=model_name, description=description)
    version = client.create_model_version(model_name_or_id=model_name,
                                          description=f"trained by run {run_id}")
    number = int(version.number)
    started = utc_now().isoformat()
    record_registration_started(model_name, number, run_id, started)
    state = {keys.STARTED_AT: started, keys.RUN_ID: None if run_id is None else str(run_id)}
    log_metadata(metadata={keys.REGISTRATION: state}, model_version_id=version.id)
    _registration_hook("started")
    link_artifacts(model_name, number, artifact_ids)
    if run_id is not None:
        client.zen_store.create_model_version_pipeline_run_link(
            ModelVersionPipelineRunRequest(model_version=version.id, pipeline_run=run_id))
    log_metadata(metadata=dict(metadata), model_version_id=version.id)
    record_registration(model_name, number, run_id, artifact_ids, metadata)
    _registration_hook("registered")
    log_metadata(metadata={keys.REGISTRATION: {keys.COMPLETED_AT: utc_now().isoformat()}},
                 model_version_id=version.id)
    return number


HOOK_ENV = "KEEL_TEST_KILL_REGISTRATION_AT"  # tests only: the named point at which registration dies


def _registration_hook(point: str) -> None:
    """Tests kill a real `run.py train` at a named point of the registration ("started": nothing but
    the start written; "registered": all but the completion mark), by SIGKILL to itself as an
    operator's kill would land; unset, nothing happens."""
    import os

    if os.environ.get(HOOK_ENV) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


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
    return [_listed(v) for v in versions.items]


def _listed(model_version) -> dict:
    """A version as `list_model_versions` lists it; `complete`: whether its registration completed."""
    metadata = dict(model_version.run_metadata or {})
    return {"number": int(model_version.number), "stage": str(model_version.stage) if model_version.stage else None,
            "created": model_version.created, "metadata": metadata, "complete": registration_complete(metadata)}


def _registered_version(model_name: str, version: int, hydrate: bool = False):
    """The ZenML model version; LookupError (not ZenML's KeyError) when the active stack's registry has
    no such version, e.g. one named by a prediction log written under another stack."""
    from zenml.client import Client
    from zenml.models import ModelVersionFilter

    # The store itself: while a pipeline is being defined, Client.get_model_version defers its lookup to
    # each step that takes an input from the version (two store queries per input, at every step start).
    client = Client()
    try:
        found = client.zen_store.list_model_versions(
            ModelVersionFilter(model=model_name, number=version, project=client.active_project.id),
            hydrate=hydrate).items
    except KeyError:  # no such model
        found = []
    if not found:
        raise LookupError(f"v{version} of {model_name} is not in the registry of the active stack")
    return found[0]


def get_model_version_metadata(model_name: str, version: int) -> dict:
    return dict(_registered_version(model_name, version, hydrate=True).run_metadata or {})


def version_target_change(spec, version: int) -> Optional[str]:
    """How the spec's target differs from the one `version` was trained with (keel.spec.data.target_change);
    None when they agree, or the version or its record of it is not in this registry (older versions)."""
    from keel.spec.data import target_change

    try:
        recorded = get_model_version_metadata(spec.problem.name, version).get(keys.TARGET)
    except LookupError:
        return None
    return target_change(recorded, spec.data.target)


def resolve_version(model_name: str, version: Optional[int]) -> int:
    """The given version number, or the latest completely registered one; a clear error if there is
    none, InterruptedRegistration (a LookupError) for a version whose registration never completed.
    Every command that picks a version to use (evaluate, approve, deploy, lineage, docs, reproduce)
    picks it here."""
    from zenml.client import Client

    client = Client()
    if version is not None:
        try:
            model_version = client.get_model_version(model_name, version, hydrate=True)
        except KeyError:
            raise _no_version(model_name, version) from None
        require_complete(model_name, model_version)
        return int(model_version.number)
    newest_first = list(reversed(list_model_versions(model_name)))
    for listed in newest_first:
        if listed["complete"]:
            return listed["number"]
    if not newest_first:
        raise _no_version(model_name, None)
    newest = newest_first[0]
    raise InterruptedRegistration(interrupted_message(model_name, newest["number"], newest["created"],
                                                      newest["metadata"]))


def _no_version(model_name: str, version: Optional[int]) -> LookupError:
    what = f"version {version} of model '{model_name}'" if version is not None else f"version of model '{model_name}'"
    return LookupError(f"there is no {what} in the registry of the active stack; train one first: python run.py train")


def require_complete(model_name: str, model_version) -> None:
    """InterruptedRegistration naming `model_version` (a hydrated ZenML model version) unless its
    registration completed: the one check before anything uses a version."""
    metadata = dict(model_version.run_metadata or {})
    if not registration_complete(metadata):
        raise InterruptedRegistration(interrupted_message(model_name, int(model_version.number),
                                                          model_version.created, metadata))


def registered_metadata(model_name: str, version: int) -> dict:
    """The version's metadata once its registration completed; InterruptedRegistration otherwise, and
    LookupError when the registry has no such version."""
    model_version = _registered_version(model_name, version, hydrate=True)
    require_complete(model_name, model_version)
    return dict(model_version.run_metadata or {})


def version_artifacts(model_name: str, version: int, names: Iterable[str]) -> dict:
    """The named artifacts linked to a model version (e.g. its model and its test split), looked up now:
    inside a pipeline's definition its steps then take these artifact versions by id."""
    from zenml.client import Client

    model_version = _registered_version(model_name, version)
    client = Client()
    active_store = client.active_stack.artifact_store.id
    found = {}
    for name in names:
        artifact = model_version.get_artifact(name)
        if artifact is None:
            raise LookupError(f"{model_name} v{version} has no artifact '{name}' linked")
        if artifact.artifact_store_id != active_store:
            # ZenML takes an artifact version by id only from the active stack's artifact store (a stack
            # file may name another component for the same folder). The version's own lookup, deferred
            # to the step while a pipeline is defined, loads it from the store that keeps it.
            artifact = client.get_model_version(model_name, version).get_artifact(name)
        found[name] = artifact
    return found


def find_champion(model_name: str, exclude_version: int) -> Optional[dict]:
    """The production version, else the staging one (never the candidate itself, nor a version whose
    registration never completed)."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    client = Client()
    for stage in (ModelStages.PRODUCTION, ModelStages.STAGING):
        try:
            model_version = client.get_model_version(model_name, stage)
        except KeyError:
            continue
        if int(model_version.number) != exclude_version and registration_complete(
                dict(model_version.run_metadata or {})):
            return {"name": f"v{model_version.number} ({stage.value})", "number": int(model_version.number),
                    "stage": stage.value, "metadata": dict(model_version.run_metadata or {}),
                    "model": model_version.get_artifact(Artifact.MODEL).load()}
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


def record_evaluation(model_name: str, version: int, evaluation: EvaluationRecord, artifact_ids: Iterable[UUID],
                      promote: bool) -> Optional[str]:
    """Attach the evaluation record to the version and the audit trail; move the version to staging
    when it is deployable, and out of staging when it is not (a rejected or incomplete evaluation
    leaves no candidate behind). Production is left to `deploy`/`rollback`. Returns the stage now."""
    from zenml.enums import ModelStages

    link_artifacts(model_name, version, artifact_ids)
    _attach(model_name, version, keys.EVALUATION, evaluation)
    from keel.governance.audit import EVALUATED, record_event
    record_event(EVALUATED, model_name, version, evaluation.get("run_id"), artifact_ids, evaluation)
    from keel.governance.events import record_stage
    with stage_changes(model_name):
        stage = current_stage(model_name, version)
        if promote and stage != ModelStages.PRODUCTION.value:
            record_stage(model_name, version, ModelStages.STAGING.value,
                         _set_stage(model_name, version, ModelStages.STAGING))
        elif not promote and stage == ModelStages.STAGING.value:
            record_stage(model_name, version, ModelStages.NONE.value,
                         _set_stage(model_name, version, ModelStages.NONE))
        return current_stage(model_name, version)  # what the registry says now, not what was asked


@contextlib.contextmanager
def stage_changes(model_name: str):
    """Hold `model_name`'s stage lock: one stage change at a time among this project's commands, so a
    stage read inside it is the stage the change left (two evaluations at once each staged their
    version and printed "now staging" while one of them had been archived)."""
    from keel.locks import file_lock

    with file_lock(f"{model_name}.stages", f"changing the stages of {model_name}"):
        yield


def current_stage(model_name: str, version: int) -> Optional[str]:
    """The version's stage as the registry has it now ("staging", "production", "archived"), None for none."""
    from zenml.client import Client

    stage = Client().get_model_version(model_name, version).stage
    stage = getattr(stage, "value", stage)
    return None if stage in (None, "None", "none") else str(stage)


def _not_a_rearchived_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().endswith("has been set to archived.")


@contextlib.contextmanager
def _without_zenml_rearchived_notice():
    """ZenML's store keeps one version per stage, archived included: archiving a version, it archives
    again a version already archived and logs "Model version N has been set to archived." for that one
    (seen: v6 named while v5 was archived). That line is false there and is dropped; the real change is
    in the trail (record_stage). A store behind a ZenML server logs it on the server."""
    logger = logging.getLogger("zenml.zen_stores.sql_zen_store")
    logger.addFilter(_not_a_rearchived_notice)
    try:
        yield
    finally:
        logger.removeFilter(_not_a_rearchived_notice)


def _set_stage(model_name: str, version: int, stage) -> Optional[int]:
    """Move the version to `stage` (a ZenML ModelStages). ZenML keeps one version per stage, "none"
    included, and archives the one there: that version is recorded as archived and returned."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    from keel.governance.events import record_stage

    client = Client()
    holder = None
    if stage != ModelStages.ARCHIVED:  # archived is the one stage many versions share
        try:
            holder = int(client.get_model_version(model_name, stage).number)
        except KeyError:
            pass
    with _without_zenml_rearchived_notice() if stage == ModelStages.ARCHIVED else contextlib.nullcontext():
        client.get_model_version(model_name, version).set_stage(stage, force=True)
    if holder is None or holder == version:
        return None
    record_stage(model_name, holder, ModelStages.ARCHIVED.value)
    return holder


def production_version(model_name: str) -> Optional[int]:
    from zenml.client import Client
    from zenml.enums import ModelStages

    try:
        return int(Client().get_model_version(model_name, ModelStages.PRODUCTION).number)
    except KeyError:
        return None


class ModelUnavailable(LookupError):
    """A registered version's model artifact cannot be loaded: missing, or not the bytes registered."""


def load_version_model(model_name: str, version: int):
    """The version's fitted model, carrying the features its screening flagged as proxies: they are
    never given as a principal reason, online or in batch (keel.serving.reasons). ModelUnavailable when
    its stored artifact cannot be loaded (deleted, or changed: ZenML checks its content hash)."""
    from keel.serving.reasons import mark_proxies

    artifact = version_artifacts(model_name, version, [Artifact.MODEL])[Artifact.MODEL]
    try:
        model = artifact.load()
    except Exception as error:  # whatever the store or the unpickling raised: the model is not usable
        raise ModelUnavailable(f"{model_name} v{version}'s stored model cannot be loaded ({type(error).__name__}: "
                               f"{str(error)[:300]}): it is missing or not the one registered; nothing was done "
                               "with it") from error
    mark_proxies(model, get_model_version_metadata(model_name, version).get(keys.SCREENING))
    return model


def begin_evaluation(model_name: str, version: int, evaluation: EvaluationRecord) -> None:
    """Before any evidence is gathered: the version's latest evaluation is `incomplete` and it leaves
    staging, so a run that fails or is killed midway can never leave it promoted."""
    record_evaluation(model_name, version, evaluation, (), promote=False)


def evaluation_outcome(model_name: str, version: int) -> Optional[EvaluationRecord]:
    """The version's latest recorded evaluation, or None if it was never evaluated."""
    return get_model_version_metadata(model_name, version).get(keys.EVALUATION)


def record_approval(model_name: str, version: int, by: str, reason: str, evidence: Optional[dict] = None,
                    actor: Optional[str] = None) -> dict:
    """`evidence`: what the approval binds to (evaluation run, gate digest, identity), recorded with it;
    `actor`: the approver's identity when `by` is only a display name."""
    from keel.clock import utc_now

    approval = {"by": by, "reason": reason, "at": utc_now().isoformat(), **(evidence or {})}
    _attach(model_name, version, keys.APPROVAL, approval)
    from keel.governance.audit import APPROVED, record_event
    record_event(APPROVED, model_name, version, actor=actor or by, details=approval)
    return approval


def record_deployment(model_name: str, version: int, deployment: dict) -> None:
    _attach(model_name, version, keys.DEPLOYMENT, deployment)
    from keel.governance.audit import DEPLOYMENT_OUTCOME, record_event
    record_event(DEPLOYMENT_OUTCOME, model_name, version, details=deployment)


def promote_to_production(model_name: str, version: int) -> Optional[int]:
    """Make `version` the production version; the previous one is archived. Returns the previous."""
    from zenml.enums import ModelStages

    from keel.governance.events import record_promotion

    with stage_changes(model_name):
        previous = production_version(model_name)
        if previous is not None and previous != version:
            _set_stage(model_name, previous, ModelStages.ARCHIVED)
        _set_stage(model_name, version, ModelStages.PRODUCTION)
        record_promotion(model_name, version, previous)
    return previous

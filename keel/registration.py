"""What a model version records about how it was made (its registration metadata), the names of those
keys, and when a registration counts as complete.

Pure: no ZenML. `keel.registry` writes the record; every reader takes a key's name from here, so each
key is spelled once.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired from the evaluated annotations.
from datetime import datetime
from typing import Dict, List, NotRequired, Optional, TypedDict

from keel.clock import as_utc
from keel.training import metrics as _metrics

# How the model was chosen and how it scored.
MODEL_FAMILY = "model_family"
HYPERPARAMETERS = "hyperparameters"
PRIMARY_METRIC = "primary_metric"
VALIDATION_METRICS = "validation_metrics"
TEST_METRICS = "test_metrics"
METRICS_THRESHOLD = _metrics.METRICS_THRESHOLD_KEY  # the threshold the validation and test metrics were computed at
CANDIDATES_COMPARED = "candidates_compared"
# The model and its data.
MODEL_SHA256 = "model_sha256"
MODEL_BYTES = "model_bytes"
DATA_FINGERPRINT = "data_fingerprint"
DATA_SOURCE = "data_source"
ROWS = "rows"
SPLIT_PERIODS = "split_periods"  # {"train": [first, last], ...} of data.time_column, where one is declared
SPEC_SHA256 = "spec_sha256"
SEED = "seed"
SCREENING = "screening"  # leakage and proxy findings of the training data (keel.data.screening.screening_record)
TARGET = "target"  # keel.spec.data.target_mapping: what the scores mean (absent before it was recorded)
ENGINE = "engine"  # the dask engine's record: cluster layout, whole-split rows, samples (absent: local)
# The code and its environment (keel.provenance.collect_provenance).
GIT_COMMIT = "git_commit"
GIT_DIRTY = "git_dirty"
GIT_CHANGED_FILES = "git_changed_files"
SOURCE_SHA256 = "source_sha256"
SOURCE_FILES = "source_files"
PYTHON_VERSION = "python_version"
PLATFORM = "platform"
PACKAGES = "packages"
LOCK_FILE = "lock_file"
LOCK_SHA256 = "lock_sha256"
OS_USER = "os_user"
COMMAND = "command"
# The training run that registered it.
RUN_NAME = "run_name"
RUN_ID = "run_id"
# A mitigated version (`run.py mitigate`): the version it was made from and the mitigation's facts.
MITIGATED_FROM = "mitigated_from"
MITIGATION = "mitigation"
# The registration's own state: {started_at, run_id} written first, {completed_at} written last.
REGISTRATION = "keel_registration"
STARTED_AT = "started_at"
COMPLETED_AT = "completed_at"

# What later lifecycle steps attach to the version (each a dict; a later record of a key wins).
EVALUATION = "evaluation"
APPROVAL = "approval"
DEPLOYMENT = "deployment"


class RegistrationState(TypedDict, total=False):
    started_at: str
    run_id: Optional[str]
    completed_at: str


class RegistrationMetadata(TypedDict):
    """The metadata of a registered model version: keys as the constants above name them."""

    model_family: str
    hyperparameters: dict
    primary_metric: str
    validation_metrics: Dict[str, float]
    test_metrics: Dict[str, float]
    metrics_threshold: float
    candidates_compared: dict
    model_sha256: str
    model_bytes: int
    data_fingerprint: str
    data_source: str
    rows: Dict[str, int]
    split_periods: NotRequired[Dict[str, List[Optional[str]]]]  # with data.time_column only
    spec_sha256: str
    seed: int
    screening: NotRequired[dict]  # absent on versions registered before screening
    engine: NotRequired[dict]
    target: NotRequired[Dict[str, Optional[str]]]  # absent on versions registered before it was recorded
    git_commit: str
    git_dirty: NotRequired[bool]  # not outside a git checkout
    git_changed_files: NotRequired[List[str]]
    source_sha256: str
    source_files: int
    python_version: str
    platform: str
    packages: Dict[str, str]
    lock_file: str
    lock_sha256: str
    os_user: str
    command: str
    run_name: NotRequired[str]  # written by the register steps, not by `keel.registry.registration_metadata`
    run_id: NotRequired[str]
    mitigated_from: NotRequired[int]
    mitigation: NotRequired[dict]
    keel_registration: NotRequired[RegistrationState]  # written by `keel.registry.register_model_version`


def registration_complete(metadata: dict) -> bool:
    """Whether every write of the version's registration happened: its completion mark is the last one.
    A version registered before keel marked registrations has no state at all; it is complete when it
    holds its run id, which its single metadata write wrote last (one killed midway lacks it)."""
    state = metadata.get(REGISTRATION)
    if isinstance(state, dict):
        return bool(state.get(COMPLETED_AT))
    return state is None and metadata.get(RUN_ID) is not None


class InterruptedRegistration(LookupError):
    """The version exists in the registry but its registration never completed: nothing may use it."""


def interrupted_message(model: str, version: int, created: Optional[datetime], metadata: dict) -> str:
    """What every command says of an interrupted version; `created`: when the registry made it."""
    state = metadata.get(REGISTRATION) if isinstance(metadata.get(REGISTRATION), dict) else {}
    started = state.get(STARTED_AT) or (as_utc(created).isoformat() if created else "at an unknown time")
    return (f"{model} v{version} is an interrupted registration (started {started}, never completed); "
            "nothing uses it. Train again: python run.py train")

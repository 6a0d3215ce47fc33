"""When a registration counts as complete, what the registry-trail cross-check makes of one that is not,
and that every registration key has one spelling (keel/registration.py)."""

from datetime import datetime

import pytest

from keel import registration
from keel.governance.audit import interrupted_registrations, missing_from_trail
from keel.registration import (COMPLETED_AT, REGISTRATION, RUN_ID, STARTED_AT, RegistrationMetadata,
                               interrupted_message, registration_complete)


@pytest.mark.parametrize("metadata, complete", [
    ({}, False),  # killed between creating the version and its first metadata
    ({REGISTRATION: {STARTED_AT: "t", RUN_ID: "r"}}, False),  # killed after the start
    ({REGISTRATION: {STARTED_AT: "t"}, "model_family": "x", RUN_ID: "r"}, False),  # all but the mark
    ({REGISTRATION: {STARTED_AT: "t", COMPLETED_AT: "u"}, RUN_ID: "r"}, True),
    ({"model_family": "x", RUN_ID: "r"}, True),  # registered before keel marked registrations: it wrote run_id last
    ({"model_family": "x"}, False),  # ... and killed before its run id
])
def test_a_registration_is_complete_only_once_marked(metadata, complete):
    assert registration_complete(metadata) is complete


def test_the_message_names_the_version_and_when_it_started():
    text = interrupted_message("credit_risk", 7, datetime(2026, 3, 1, 9, 0), {})
    assert text.startswith("credit_risk v7 is an interrupted registration (started 2026-03-01T09:00:00+00:00, "
                           "never completed)") and "python run.py train" in text
    assert "(started 2026-03-02T10:00:00+00:00," in interrupted_message(
        "credit_risk", 7, datetime(2026, 3, 1), {REGISTRATION: {STARTED_AT: "2026-03-02T10:00:00+00:00"}})


def test_each_key_is_spelled_once_and_is_a_key_of_the_typed_record():
    constants = {name: value for name, value in vars(registration).items() if name.isupper() and isinstance(value, str)}
    lifecycle = {registration.EVALUATION, registration.APPROVAL, registration.DEPLOYMENT}
    state = {registration.STARTED_AT, registration.COMPLETED_AT}
    assert set(constants.values()) - lifecycle - state == set(RegistrationMetadata.__annotations__)
    assert len(set(constants.values())) == len(constants)


def _record(seq, event, version):
    return {"seq": seq, "time": f"2026-03-01T09:0{seq}:00+00:00", "event": event, "version": version, "details": {}}


def test_the_cross_check_tells_an_interrupted_registration_from_a_deleted_record():
    records = [_record(1, "registration_started", 1), _record(2, "training_run_registered", 1),
               _record(3, "registration_started", 2),
               _record(4, "registration_started", 3), _record(5, "training_run_registered", 3)]
    versions = [{"number": 1, "metadata": {}, "complete": True}, {"number": 2, "metadata": {}, "complete": False},
                {"number": 3, "metadata": {}, "complete": False}, {"number": 4, "metadata": {}, "complete": False},
                {"number": 5, "metadata": {}, "complete": True}]
    assert missing_from_trail(records, versions) == [
        "v5: registered in the registry, no training_run_registered record in the trail"]  # still tampering
    v2, v3, v4 = interrupted_registrations(records, versions)
    assert v2.startswith("v2: registration interrupted") and "registration_started at 2026-03-01T09:03" in v2
    assert "0000000003.json" in v2
    assert "the trail records it registered (0000000005.json)" in v3
    assert "killed before its registration_started record" in v4


def test_version_0_is_named_when_it_is_not_found():
    """helper-50: `docs`/`lineage --model-version 0` said there was no version at all, while v1 existed."""
    from keel.registry import _no_version

    assert "there is no version 0 of model 'hiring'" in str(_no_version("hiring", 0))
    assert "there is no version of model 'hiring'" in str(_no_version("hiring", None))


def test_a_stored_model_that_cannot_be_loaded_is_one_clear_error(monkeypatch):
    """helper-56/57: a model artifact changed or deleted in the artifact store gave `explain` and `deploy`
    a raw traceback (ZenML's content-hash RuntimeError, FileNotFoundError)."""
    import keel.registry as registry
    from keel.artifacts import Artifact

    class Changed:
        def load(self):
            raise RuntimeError("The artifact at '/store/model' does not match its recorded content hash.")

    monkeypatch.setattr(registry, "version_artifacts", lambda name, version, names: {Artifact.MODEL: Changed()})
    with pytest.raises(registry.ModelUnavailable) as raised:
        registry.load_version_model("claims", 2)
    assert str(raised.value).startswith("claims v2's stored model cannot be loaded (RuntimeError: The artifact at")
    assert isinstance(raised.value, LookupError)  # callers that refuse an unusable version catch it as such

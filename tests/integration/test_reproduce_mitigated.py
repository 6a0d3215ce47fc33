"""`reproduce` of a mitigated version on a real ZenML store: it rebuilds the base version, refits the
mitigation on the rebuilt model and splits and proves the mitigated model identical (helper-54: it
retrained the base model only, then blamed "non-determinism in training" for the mitigation's own
difference). The mitigated version carries its base's screening record; version 0 is named."""

import pytest

from keel.spec import load_spec
from tests.integration.test_mitigation_version import cancer_spec  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def test_a_mitigated_version_reproduces_identical_through_its_base(cancer_spec, tmp_path,  # noqa: F811
                                                                    monkeypatch, capsys):
    from keel.cli.mitigate import mitigate
    from keel.cli.reproduce import reproduce
    from keel.lifecycle.training import train_version
    from keel.registry import get_model_version_metadata

    monkeypatch.chdir(tmp_path)
    spec = load_spec(cancer_spec)
    name = spec.problem.name
    trained = train_version(spec)
    assert trained.error is None, trained.error
    base = trained.version
    assert mitigate(spec, base) == 0
    printed = capsys.readouterr().out
    assert "reasons:        principal reasons of" in printed and f"base model v{base}'s contributions" in printed
    version = base + 1

    # The mitigated version records every data fact of its base, screening included.
    recorded, base_recorded = get_model_version_metadata(name, version), get_model_version_metadata(name, base)
    for key in ("data_fingerprint", "data_source", "screening"):
        assert key in base_recorded and recorded[key] == base_recorded[key], key
    assert recorded["mitigation"]["principal_reasons"]["available"] is True

    code = reproduce(spec, version)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"v{version} is v{base} mitigated by threshold_optimizer" in out
    assert f"reproduced: identical model SHA-256 {recorded['model_sha256']}" in out
    assert "non-determinism" not in out and recorded["model_sha256"] != base_recorded["model_sha256"]
    assert f"v{base} data" in out and "mitigation spec" in out  # the base's checks and the mitigation's

    assert reproduce(spec, 0) == 1
    assert f"there is no version 0 of model '{name}'" in capsys.readouterr().err

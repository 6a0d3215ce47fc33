"""`reproduce` of a mitigated version, in process (helper-54): a mitigation of a dask-trained version
is refused with what to reproduce instead (exit 5, never "non-determinism in training"), a base that
cannot be read fails a check, and a refitted mitigation's difference names its own cause."""

from types import SimpleNamespace

from keel.governance.reproduce import FAIL, OK, WARN, Check, Reproduction, mitigation_cause, reproduce

MITIGATED = {"mitigated_from": 1, "model_sha256": "ab" * 32, "data_fingerprint": "f" * 64,
             "mitigation": {"method": "threshold_optimizer", "constraint": "demographic_parity",
                            "attribute": "gender", "fitted_on": "validation split"}}
CONTEXT = dict(git_now={}, diff_names=lambda commit: [], lock_sha256="l" * 64, packages={})


def test_a_mitigation_of_a_dask_version_is_refused_naming_what_to_reproduce():
    base = {"engine": {"layout": {"workers": 2}}, "data_fingerprint": "f" * 64}
    result = reproduce(MITIGATED, {}, base=(base, {}), **CONTEXT)
    assert not result.retrained and not result.identical and not result.differences
    assert result.refused.startswith("a mitigation of v1, which was trained on the dask engine: reproduce v1")
    assert "threshold_optimizer (demographic_parity on gender)" in result.refused


def test_a_mitigated_version_whose_base_cannot_be_read_fails_a_check():
    result = reproduce(MITIGATED, {}, base=(None, None), **CONTEXT)
    assert [(c.name, c.status) for c in result.checks] == [("v1", FAIL)] and not result.identical


def test_a_refitted_mitigations_difference_names_its_own_cause():
    clean, mitigation = Reproduction(retrained=True), Reproduction()
    mitigation.checks.append(Check("code", OK, "same"))
    cause = mitigation_cause(clean, mitigation, 1, "threshold_optimizer")
    assert "v1 reproduced identical" in cause and "not training" in cause
    assert "non-determinism in training" not in cause
    differing = Reproduction(retrained=True, differences=[{"what": "model_sha256"}])
    assert "the base v1 did not reproduce identically" in mitigation_cause(differing, mitigation, 1, "x")
    mitigation.checks.append(Check("spec", WARN, "the spec changed"))
    assert mitigation_cause(clean, mitigation, 1, "x") == "spec: the spec changed"


def test_the_cli_exits_5_on_a_refusal_and_names_a_version_0(monkeypatch, capsys):
    from keel.cli import reproduce as cli
    from keel.lifecycle import reproduction

    spec = SimpleNamespace(problem=SimpleNamespace(name="patients"))
    refused = Reproduction(refused="a mitigation of v1, which was trained on the dask engine: reproduce v1")
    monkeypatch.setattr(reproduction, "reproduction_target",
                        lambda spec, version: reproduction.ReproductionTarget(2, MITIGATED, model="patients"))
    monkeypatch.setattr(reproduction, "reproduce_version",
                        lambda target: reproduction.ReproductionResult(refused))
    assert cli.reproduce(spec, 2) == cli.REFUSED == 5
    out, err = capsys.readouterr()
    assert "v2 is v1 mitigated by threshold_optimizer" in out
    assert "keel: v2 is a mitigation of v1, which was trained on the dask engine" in err
    monkeypatch.undo()
    target = reproduction.reproduction_target(spec, 0)
    assert target.error == "keel: there is no version 0 of model 'patients': versions are numbered from 1"
